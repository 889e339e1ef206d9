"""Compaction of only the small delta segments: many one-file edits never rewrite the big segments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from crash_helpers import check_invariants, make_tree, read_state

from codeindex import Index
from codeindex.config import load_config
from codeindex.store import db as dbm
from codeindex.store.compaction import compact, compaction_reason


def _segments(root: Path) -> list[tuple[int, str, int]]:
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        return con.execute("SELECT segment, file, n_vectors FROM segments ORDER BY segment").fetchall()


def _tombstoned_segments(root: Path) -> set[int]:
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT DISTINCT segment FROM tombstones").fetchall()}


@pytest.mark.slow
def test_small_only_compaction_merges_the_deltas_and_leaves_the_big_segments(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree", n_generated=8)  # segments of 16 vectors: "small" is under 4
    index = Index(root)
    index.rebuild()
    big = {(n, f) for n, f, size in _segments(root) if size >= 4}
    assert len(big) >= 2
    config = load_config(root).with_overrides({"store.compact_segments": 3})
    for i in range(4):  # one edit each: one small delta segment each, and tombstones in the big ones
        mod = root / "gen" / f"mod{i}.py"
        mod.write_text(mod.read_text().replace("Sum item prices", f"Sum the prices (edit {i})"))
        index.update(paths=[f"gen/mod{i}.py"])
    small = [(n, f) for n, f, size in _segments(root) if size < 4]
    assert len(small) >= 4 and _reason(root, config) == "small-segments"
    big_tombstones = _tombstoned_segments(root) & {n for n, _ in big}
    assert big_tombstones, "the edits must have retired vectors of the big segments"
    before = read_state(root)

    result = compact(root / ".codeindex", config, small_only=True)
    after = _segments(root)
    assert result["segments_before"] == len(small) and result["segments_after"] == 1
    assert big <= {(n, f) for n, f, _ in after}, "a big segment was rewritten"
    assert len(after) == len(big) + 1
    assert _tombstoned_segments(root) & {n for n, _ in big} == big_tombstones  # theirs are kept
    assert {p.name for p in (root / ".codeindex").glob("seg-*")} == {f for _, f, _ in after}, "orphans left"
    assert _reason(root, config) is None
    assert read_state(root) == before
    check_invariants(root)

    compact(root / ".codeindex", config)  # a full compaction afterwards still agrees
    assert read_state(root) == before
    check_invariants(root)


def _reason(root: Path, config: Any) -> str | None:
    with dbm.open_db(root / ".codeindex" / "meta.duckdb", read_only=True) as con:
        return compaction_reason(con, config)
