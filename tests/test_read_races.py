"""Files that change between the scan and the pipeline's read: what is indexed is what was read, under
the hash of what was read, and the next run sets the rest right. Each race is staged at the run's
``before-pipeline`` point (after the scan hashed the tree, before any file is read for parsing)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from codeindex.config import load_config
from tests.index_oracle import at_point, check_index, checkout, make_tree, restore, truncate_all


def _rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _tree(tmp_path: Path, n: int = 30) -> Path:
    import random

    root = tmp_path / "tree"
    root.mkdir()
    make_tree(root, n, random.Random(n))
    return root


def test_a_checkout_during_a_rebuild_is_undone_by_the_next_update(tmp_path: Path) -> None:
    """``git checkout other`` while the rebuild reads, ``git checkout main`` after: the next update must
    not keep the other branch's text (it did: every file, and every later update was a no-op)."""
    import random

    root = _tree(tmp_path)
    saved: dict[Path, bytes] = {}
    with at_point("before-pipeline", lambda: saved.update(checkout(root, random.Random(1), "other"))):
        Index(root).rebuild(scheduler="sync", embedder="hashing")
    restore(saved)
    report = Index(root).update(scheduler="sync")
    assert report.files_modified == len(saved)  # what was parsed is known to differ from what is there now
    assert check_index(root) == []
    assert not _rows(root, "SELECT path FROM chunks WHERE text LIKE '%f_other_%'")


def test_a_file_truncated_while_it_is_read_is_indexed_whole_after_the_next_update(tmp_path: Path) -> None:
    """A writer caught mid-write (a file cut short, down to nothing): the short read is indexed as what it
    is, never under the whole file's hash, so restoring the file re-indexes it."""
    import random

    root = _tree(tmp_path)
    (root / "empty_for_a_moment.py").write_text("def f():\n    return 576\n" * 20)
    saved: dict[Path, bytes] = {}

    def cut() -> None:
        saved.update(truncate_all(root, random.Random(2)))
        (root / "empty_for_a_moment.py").write_bytes(b"")

    with at_point("before-pipeline", cut):
        Index(root).rebuild(scheduler="sync", embedder="hashing")
    restore(saved)
    Index(root).update(scheduler="sync")
    assert check_index(root) == []
    (n_chunks,) = _rows(root, "SELECT n_chunks FROM files WHERE path = 'empty_for_a_moment.py'")[0]
    assert n_chunks > 0


def test_a_file_swapped_for_a_symlink_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    root = _tree(tmp_path, 5)
    outside = tmp_path / "outside.py"
    outside.write_text("LEAKED = 'zanzibar-outside-the-root'\n")
    victim = sorted(root.rglob("*.py"))[0]

    def swap() -> None:
        victim.unlink()
        victim.symlink_to(outside)

    with at_point("before-pipeline", swap):
        report = Index(root).rebuild(scheduler="sync", embedder="hashing")
    assert not _rows(root, "SELECT path FROM chunks WHERE text LIKE '%zanzibar%'")
    assert report.skipped.get("changed-type") == 1
    Index(root).update(scheduler="sync")
    assert not _rows(root, "SELECT path FROM chunks WHERE text LIKE '%zanzibar%'")
    assert check_index(root) == []


@pytest.mark.timeout(120)
def test_a_file_swapped_for_a_fifo_does_not_hang_the_run(tmp_path: Path) -> None:
    root = _tree(tmp_path, 5)
    victim = sorted(root.rglob("*.py"))[0]

    def swap() -> None:
        victim.unlink()
        os.mkfifo(victim)  # nobody ever writes: a blocking open waits forever

    with at_point("before-pipeline", swap):
        report = Index(root).rebuild(scheduler="sync", embedder="hashing")
    assert report.skipped.get("not-regular") == 1
    Index(root).update(scheduler="sync")
    assert check_index(root) == []


def test_a_file_grown_past_the_size_cap_mid_run_is_not_read(tmp_path: Path) -> None:
    root = _tree(tmp_path, 5)
    victim = sorted(root.rglob("*.py"))[0]
    config = load_config(root, {"discovery.max_file_bytes": 64 * 1024})

    def grow() -> None:
        with open(victim, "a") as fh:
            fh.write("def grown():\n    return 17\n" * 10_000)  # ~270 KB: thousands of chunks if read

    with at_point("before-pipeline", grow):
        report = Index(root, config=config).rebuild(scheduler="sync", embedder="hashing")
    assert report.skipped.get("too-large") == 1
    rel = victim.relative_to(root).as_posix()
    assert not _rows(root, f"SELECT 1 FROM chunks WHERE path = '{rel}'")
    assert check_index(root, max_file_bytes=64 * 1024) == []


@pytest.mark.slow
def test_random_mutations_during_runs_leave_an_index_that_agrees_with_the_disk(tmp_path: Path) -> None:
    """The oracle campaign on a small tree: every kind of race once (``tests/index_oracle.py``)."""
    from tests.index_oracle import campaign

    messages: list[str] = []
    assert campaign(tmp_path, n_files=40, runs=5, seed=7, log=messages.append) == 0, "\n".join(messages)
