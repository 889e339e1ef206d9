"""Result grouping: one hit per definition (or file), other pieces' lines attached; checked on real results."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from codeindex.chunking.source import module_path
from codeindex.search.grouping import group_results
from codeindex.store.symbols import SymbolRow

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    chunk_id: int
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str = "function"


DEFS = [SymbolRow("a.py", "confirm", "confirm", "function", 10, 80),
        SymbolRow("a.py", "prompt", "prompt", "function", 90, 95),
        SymbolRow("a.py", "Editor", "Editor", "class", 100, 200),
        SymbolRow("a.py", "edit", "Editor.edit", "method", 150, 200),
        SymbolRow("b.py", "confirm", "confirm", "function", 1, 5)]


def test_pieces_of_one_definition_become_one_result() -> None:
    rows = [Row(1, "a.py", 30, 55, "a.confirm"), Row(2, "a.py", 90, 95, "a.prompt"),
            Row(3, "a.py", 10, 29, "a.confirm"), Row(4, "b.py", 1, 5, "b.confirm"),
            Row(5, "a.py", 56, 80, "a.confirm"), Row(6, "a.py", 1, 8, "a", "module")]
    groups = group_results(rows, DEFS, "definition", 10)
    assert [g.row.chunk_id for g in groups] == [1, 2, 4, 6]
    assert groups[0].others == [(10, 29), (56, 80)] and groups[0].definition == DEFS[0]
    assert groups[2].definition == DEFS[4], "same name, other file: another definition"
    assert groups[3].definition is None and groups[3].others == []


def test_a_class_piece_and_a_method_piece_are_different_definitions() -> None:
    rows = [Row(1, "a.py", 100, 149, "a.Editor", "class"), Row(2, "a.py", 150, 175, "a.Editor.edit", "method"),
            Row(3, "a.py", 176, 200, "a.Editor.edit", "method")]
    groups = group_results(rows, DEFS, "definition", 10)
    assert [(g.row.chunk_id, g.others) for g in groups] == [(1, []), (2, [(176, 200)])]


def test_group_by_file_and_no_grouping_and_k() -> None:
    rows = [Row(1, "a.py", 30, 55, "a.confirm"), Row(2, "b.py", 1, 5, "b.confirm"), Row(3, "a.py", 90, 95, "a.prompt")]
    assert [(g.row.chunk_id, g.others) for g in group_results(rows, DEFS, "file", 10)] == [(1, [(90, 95)]), (2, [])]
    assert [g.row.chunk_id for g in group_results(rows, DEFS, "none", 2)] == [1, 2]
    first = group_results(rows, DEFS, "file", 1)
    assert [(g.row.chunk_id, g.others) for g in first] == [(1, [(90, 95)])], "later pieces still attach"


def test_a_comment_piece_groups_with_the_definition_after_it() -> None:
    rows = [Row(1, "b.py", 90, 99, "b.later"), Row(2, "b.py", 100, 120, "b.later")]
    defs = [SymbolRow("b.py", "later", "later", "function", 100, 120)]
    groups = group_results(rows, defs, "definition", 10)
    assert [(g.row.chunk_id, g.others) for g in groups] == [(1, [(100, 120)])]


def test_search_groups_by_default(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    body = "\n".join(f"    total_{i} = compute_weight(value, {i}) + offset_{i}" for i in range(120))
    (root / "big.py").write_text(f"def weigh_parcels(value):\n    \"\"\"Weigh the parcels.\"\"\"\n{body}\n"
                                 "    return total_1\n")
    index = Index(root)
    index.rebuild(embedder="hashing", scheduler="sync")
    flat = index.search("compute_weight offset value", k=50, mode="lexical", group="none")
    assert len({r.symbol for r in flat}) == 1 and len(flat) > 2, "the only function is split in pieces"
    grouped = index.search("compute_weight offset value", k=10, mode="lexical")
    assert len(grouped) == 1 and grouped[0].definition == "weigh_parcels"
    assert grouped[0].definition_lines == [1, 123]
    assert len(grouped[0].other_ranges) == len(flat) - 1
    by_file = index.search("compute_weight offset value", k=10, mode="lexical", group="file")
    assert len(by_file) == 1


# ------------------------------------------------------------------ real results

def _real_tree() -> Path | None:
    corpus = os.environ.get("CODEINDEX_TEST_CORPUS")
    if not corpus or not (Path(corpus) / "python").is_dir():
        return None
    return Path(corpus) / "python"


@pytest.mark.slow
@pytest.mark.skipif(_real_tree() is None, reason="set CODEINDEX_TEST_CORPUS to a corpus with a python/ folder")
def test_no_top_ten_holds_two_pieces_of_one_definition(tmp_path: Path) -> None:
    """Both benchmarks' queries (the docstring summaries and the hand-written questions and identifiers)
    over real code: no top 10 holds two results named after the same definition of a file."""
    from benchmarks.search_quality import find_targets, select

    source = _real_tree()
    assert source is not None
    root = tmp_path / "python"
    shutil.copytree(source, root)
    questions = json.loads((ROOT / "benchmarks" / "questions" / "werkzeug.json").read_text())
    queries = [t.query for t in select(find_targets(root), 150)]
    queries += [q["q"] for q in questions["natural"] + questions["identifiers"]]
    index = Index(root)
    index.rebuild(embedder="hashing", scheduler="sync")
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        defined = con.execute("SELECT path, qualified, count(*) FROM symbols GROUP BY ALL").fetchall()
    twice = {(p, q) for p, q, n in defined if n > 1}  # a name defined twice in a file (overloads, if/else)
    checked = 0
    for query in queries:
        for mode in ("hybrid", "vector", "lexical"):
            seen: set[tuple[str, str]] = set()
            for r in index.search(query, k=10, mode=mode):
                if r.symbol == module_path(r.path):
                    continue  # module-level code belongs to no definition
                key = (r.path, r.symbol)
                name = r.symbol[len(module_path(r.path)) + 1:]
                assert key not in seen or (r.path, name) in twice, f"{query!r} ({mode}): {key} twice"
                seen.add(key)
                checked += 1
    assert checked > 1000
