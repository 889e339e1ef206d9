"""One writer at a time, readers never blocked for long, and HNSW tombstones never surface.

The writer is held mid-run with ``CODEINDEX_PAUSE_AT=point:seconds`` (codeindex/crashpoints.py) so
the second process provably meets a running writer; no timing assumption beyond "the pause is long
enough for the other process to start".
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from codeindex import Index
from codeindex.errors import ExitCode
from tests.crash_helpers import apply_edits, check_invariants, make_tree, read_state
from tests.helpers import cli_cmd, run_cli


def _start_paused(root: Path, kind: str, pause: str) -> subprocess.Popen[str]:
    return subprocess.Popen(cli_cmd(kind, str(root)), env={**os.environ, "CODEINDEX_PAUSE_AT": pause},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_lock_holder(root: Path, pid: int, timeout: float = 60) -> None:
    lock = root / ".codeindex" / "lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.exists() and f'"pid": {pid}' in lock.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("the first writer never took the lock")


@pytest.fixture
def edited_tree(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "tree", n_generated=4)
    Index(root).rebuild()
    apply_edits(root)
    return root


@pytest.mark.slow
def test_second_writer_fails_with_locked_and_the_holder_pid(edited_tree: Path) -> None:
    first = _start_paused(edited_tree, "update", "after-pipeline:8")
    try:
        _wait_for_lock_holder(edited_tree, first.pid)
        second = run_cli("update", str(edited_tree))
        assert second.returncode == ExitCode.LOCKED == 4
        assert f"locked by pid {first.pid}" in second.stderr
    finally:
        out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
    check_invariants(edited_tree)


def test_second_writer_with_wait_runs_after_the_first(edited_tree: Path) -> None:
    first = _start_paused(edited_tree, "update", "after-pipeline:4")
    try:
        _wait_for_lock_holder(edited_tree, first.pid)
        (edited_tree / "gen" / "late.py").write_text("def written_while_locked() -> int:\n    return 1\n")
        second = run_cli("update", str(edited_tree), "--wait")
    finally:
        out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
    assert second.returncode == 0, second.stderr
    check_invariants(edited_tree)
    paths = {c[0] for c in read_state(edited_tree).chunks}
    assert "gen/late.py" in paths  # the waiting writer saw the tree as it was when it ran


@pytest.mark.parametrize("pause", ["after-pipeline:5", "before-db-commit:3"])
def test_search_works_while_an_update_runs(edited_tree: Path, pause: str) -> None:
    """During the pipeline the database is closed; during the commit readers retry until it is free."""
    before = {(h.path, h.start_line) for h in Index(edited_tree).search("haversine distance", k=5, mode="lexical")}
    writer = _start_paused(edited_tree, "update", pause)
    answered = 0
    try:
        _wait_for_lock_holder(edited_tree, writer.pid)
        time.sleep(0.5)  # well inside the pause
        searcher = Index(edited_tree)
        while writer.poll() is None and answered < 6:
            hits = searcher.search("haversine distance", k=5, mode="lexical")
            assert {(h.path, h.start_line) for h in hits} == before  # the edits do not touch geo/
            answered += 1
        cold = run_cli("search", "haversine distance", "--root", str(edited_tree), "--mode", "hybrid", "--json")
        assert cold.returncode == 0, cold.stderr
    finally:
        out, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0, out
    assert answered >= 1
    check_invariants(edited_tree)


def test_tombstoned_vector_in_hnsw_segment_never_returned(tmp_path: Path) -> None:
    """Delete a chunk whose vector lives in an HNSW segment (no ``remove_ids``): it must not surface,
    even for a query equal to its own text, in vector and hybrid modes."""
    root = make_tree(tmp_path / "tree", n_generated=6)
    Index(root).rebuild()
    status = Index(root).status()
    assert {s["type"] for s in status["segments"]} == {"hnsw"}  # ann_min_vectors = 8 in the tree config
    victim = root / "gen" / "mod4.py"
    text = victim.read_text()
    needle = "class Inventory4"
    victim.unlink()
    Index(root).update()
    status = Index(root).status()
    assert status["dead_vectors"] > 0 and "hnsw" in {s["type"] for s in status["segments"]}
    for mode in ("vector", "hybrid"):
        for query in (text, needle, "stock levels for warehouse 4"):
            hits = Index(root).search(query, k=50, mode=mode)
            assert hits and all(h.path != "gen/mod4.py" for h in hits)
    # the vector is still physically in the HNSW file: the join with chunks is what drops it
    import faiss

    with __import__("duckdb").connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        dead = {r[0] for r in con.execute("SELECT vec_id FROM tombstones").fetchall()}
        files = [r[0] for r in con.execute("SELECT file FROM segments WHERE index_type = 'hnsw'").fetchall()]
    stored: set[int] = set()
    for file in files:
        stored |= set(faiss.vector_to_array(faiss.read_index(str(root / ".codeindex" / file)).id_map)
                      .astype(np.int64).tolist())
    assert dead & stored
