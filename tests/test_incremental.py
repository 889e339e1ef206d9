"""What an update re-does, read from the runs table and the chunks themselves (not inferred)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from codeindex.errors import ModelMismatchError
from tests.helpers import last_run


def _db(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True)


def _chunk_texts(root: Path) -> set[str]:
    con = _db(root)
    try:
        return {r[0] for r in con.execute("SELECT embed_head || text FROM chunks").fetchall()}
    finally:
        con.close()


def _forty_functions(edit: int | None = None) -> str:
    parts = []
    for i in range(40):
        body = f"    return {i} * x + {i}" if i != edit else "    y = x * x\n    return y - 1"
        parts.append(f"def function_{i}(x):\n    \"\"\"Function number {i}: {'word ' * (i % 5)}\"\"\"\n{body}\n")
    return "\n\n".join(parts)


def test_editing_one_function_reembeds_exactly_the_changed_chunks(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "forty.py").write_text(_forty_functions())
    index = Index(root)
    index.rebuild(scheduler="sync", embedder="hashing")
    before = _chunk_texts(root)
    (root / "forty.py").write_text(_forty_functions(edit=17))
    report = index.update(scheduler="sync")
    after = _chunk_texts(root)
    changed = after - before
    assert 1 <= len(changed) < len(after), "the edit must change some, not all, chunks"
    run = last_run(root / ".codeindex")
    assert run["chunks_embedded"] == len(changed) == report.chunks_embedded
    assert run["chunks_reused"] == len(after) - len(changed)


def test_renaming_a_directory_of_500_files_reembeds_nothing(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "pkg" / "old_name").mkdir(parents=True)
    for i in range(500):
        (root / "pkg" / "old_name" / f"mod_{i:03d}.py").write_text(
            f"def compute_{i}(value):\n    \"\"\"Compute thing {i}.\"\"\"\n    return value * {i} + {i % 7}\n")
    index = Index(root)
    index.rebuild(scheduler="sync", embedder="hashing")
    (root / "pkg" / "old_name").rename(root / "pkg" / "new_name")
    report = index.update()
    run = last_run(root / ".codeindex")
    assert run["files_moved"] == 500 and run["files_added"] == 0 and run["files_deleted"] == 0
    assert run["chunks_embedded"] == 0
    assert report.chunks_total == 500
    hits = index.search("compute_123", k=5)
    assert hits and hits[0].path == "pkg/new_name/mod_123.py"
    assert hits[0].symbol == "pkg.new_name.mod_123.compute_123"
    for mode in ("hybrid", "vector", "lexical"):
        assert not any("old_name" in h.path for h in index.search("compute value", k=50, mode=mode))


@pytest.mark.slow
def test_switching_the_model_reembeds_everything_and_reparses_nothing(scenario) -> None:
    root = scenario("e2e_repo")
    index = Index(root)
    first = index.rebuild(scheduler="sync", embedder="hashing")
    report = index.update(scheduler="sync", embedder="onnx")
    assert report.embedder == "onnx" and report.files_reparsed == 0 and report.files_modified == 0
    assert report.chunks_embedded == report.chunks_total - report.chunks_reused
    assert report.stages["parse_s"] == 0, "no file may be parsed again"
    assert any("embedding model changed" in w for w in report.warnings)
    con = _db(root)
    try:
        assert con.execute("SELECT count(*) FROM chunks").fetchall()[0][0] == first.chunks_total
        assert con.execute("SELECT count(DISTINCT segment) FROM vectors").fetchall()[0][0] >= 1
        assert con.execute("SELECT count(*) FROM segments WHERE segment IN "
                           "(SELECT segment FROM vectors)").fetchall()[0][0] == \
            con.execute("SELECT count(*) FROM segments").fetchall()[0][0]
    finally:
        con.close()
    assert index.status()["embedder"] == "onnx"
    # a plain update keeps the recorded model; searching with another one is an error that says what to do
    assert index.update(scheduler="sync").chunks_embedded == 0
    with pytest.raises(ModelMismatchError, match="built with onnx"):
        index.search("distance", embedder="hashing")
    hits = index.search("great-circle distance between two points", k=3)
    assert any(h.path == "geo/distance.py" for h in hits)


def test_same_size_edit_within_the_same_second_is_detected(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    target = root / "a.py"
    target.write_text("def alpha():\n    return 1\n")
    index = Index(root)
    index.rebuild(scheduler="sync", embedder="hashing")
    st = target.stat()
    target.write_text("def alpha():\n    return 2\n")  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime, as on a coarse clock
    report = index.update(scheduler="sync")
    assert report.files_modified == 1
    assert index.search("alpha", k=1, mode="lexical")[0].text.endswith("return 2")


def test_noop_update_imports_no_model_runtime(scenario) -> None:
    root = scenario("e2e_repo")
    Index(root).rebuild(scheduler="sync", embedder="onnx")
    code = ("import sys; from codeindex.cli import main; rc = main(['-q', 'update', sys.argv[1]]); "
            "heavy = [m for m in ('torch', 'onnxruntime', 'faiss', 'distributed', 'sentence_transformers', "
            "'transformers', 'pyarrow', 'numpy') if m in sys.modules]; print(rc, heavy)")
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 []", out.stdout + out.stderr
