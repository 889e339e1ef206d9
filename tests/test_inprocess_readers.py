"""A search in one thread while another thread of the same process commits (what `codeindex serve` does).

DuckDB refuses a second connection to a file with other settings in the same process ("different
configuration"); that refusal is as transient as another process's lock and must be retried, never
reported as a damaged index.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from crash_helpers import check_invariants, make_tree

from codeindex import Index


def test_a_search_during_an_in_process_commit_waits_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path / "tree", n_generated=4)
    index = Index(root)
    index.rebuild()
    before = [h.path for h in index.search("haversine distance", k=3, mode="lexical")]
    marker = tmp_path / "paused"
    # the writer sleeps inside its commit transaction, holding the database with the writer's settings
    monkeypatch.setenv("CODEINDEX_PAUSE_AT", "before-db-commit:1.5")
    monkeypatch.setenv("CODEINDEX_PAUSE_MARKER", str(marker))
    (root / "gen" / "mod0.py").write_text("def compute_refund(order):\n    return order.total\n")
    writer = threading.Thread(target=lambda: index.update(paths=["gen/mod0.py"]))
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the writer never reached its commit"
            time.sleep(0.01)
        searcher = Index(root)  # another Index of this process: its own kept read connection
        hits = searcher.search("haversine distance", k=3, mode="lexical")
        assert [h.path for h in hits] == before
    finally:
        writer.join(timeout=60)
    assert [h.path for h in Index(root).search("compute_refund", k=1, mode="lexical")] == ["gen/mod0.py"]
    check_invariants(root)
