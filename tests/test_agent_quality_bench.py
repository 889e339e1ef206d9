"""The agent benchmark's questions and scoring, and the chunk-shape figures (pure parts, no index)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.agent_quality import Answer, load_questions, python_definitions, rank, resolve, score
from benchmarks.chunk_shape import shape


def test_the_question_set_is_big_enough_and_well_formed() -> None:
    data = load_questions()
    assert len(data["natural"]) >= 60 and len(data["identifiers"]) >= 20
    queries = [q["q"] for q in data["natural"] + data["identifiers"]]
    assert len(set(queries)) == len(queries), "no question twice"
    for q in data["natural"] + data["identifiers"]:
        assert q["a"] and all(":" in a and a.split(":", 1)[0].endswith(".py") for a in q["a"])
    assert all(" " in q["q"] for q in data["natural"]) and not any(" " in q["q"] for q in data["identifiers"])


def _codebase() -> Path | None:
    data = load_questions()
    for root in (os.environ.get("CODEINDEX_QUALITY_CORPUS"), os.environ.get("CODEINDEX_TEST_CORPUS")):
        if root and (Path(root) / data["codebase"]).is_dir():
            return Path(root) / data["codebase"]
    return None


@pytest.mark.skipif(_codebase() is None, reason="set CODEINDEX_QUALITY_CORPUS to a corpus holding the codebase")
def test_every_answer_is_a_definition_in_the_source() -> None:
    data = load_questions()
    root = _codebase()
    assert root is not None
    for q in data["natural"] + data["identifiers"]:
        assert len(resolve(root, q["a"])) == len(q["a"])


def test_definitions_of_a_python_file() -> None:
    source = ("class A:\n    @property\n    def x(self):\n        return 1\n\n"
              "    @t.overload\n    def get(self): ...\n    def get(self, y=None):\n        return y\n\n"
              "if True:\n    def f():\n        pass\n")
    defs = python_definitions(source)
    assert defs["A"] == [(1, 9)] and defs["A.x"] == [(2, 4)]
    assert defs["A.get"] == [(6, 7), (8, 9)] and defs["f"] == [(12, 13)]


def test_rank_and_score() -> None:
    answers = [Answer("a.py", 10, 20)]
    hits = [["b.py", 10, 20], ["a.py", 1, 9], ["a.py", 15, 30]]
    assert rank(answers, hits) == 3
    assert rank(answers, hits, strict=True) is None, "strict: the hit must hold the first line"
    assert rank(answers, [["a.py", 8, 12]], strict=True) == 1
    assert score([1, 3, None, 12]) == {"hit1": 0.25, "hit5": 0.5, "mrr10": (1 + 1 / 3) / 4}


def test_chunk_shape_figures() -> None:
    data = {"files": 2, "cpu_s": 1.0, "chunks": [["a.py", 1, 2, 10, "h1"], ["a.py", 3, 40, 200, "h2"],
                                                 ["b.py", 1, 3, 250, "h3"], ["b.py", 4, 9, 20, "h1"]]}
    fitting = [("a.py", 3, 30, "f"), ("a.py", 30, 45, "g")]
    figures = shape(data, fitting)
    assert figures["chunks"] == 4 and figures["chunks_per_file"] == 2
    assert figures["share_le3_lines"] == 0.5 and figures["share_le3_lines_light"] == 0.25
    assert figures["fit_but_split"] == 1 and figures["share_fit_split"] == 0.5
    assert figures["tokens_embedded"] == 10 + 200 + 250, "identical embedded texts count once"
    assert figures["share_le3_lines_whole_file"] == 0, "no file here is a single small chunk"
    data["chunks"].append(["c.py", 1, 1, 5, "h4"])
    assert shape(data, fitting)["share_le3_lines_whole_file"] == 1 / 5
