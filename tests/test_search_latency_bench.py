"""``benchmarks.search_latency`` on a small tree: every figure is produced and the corpus is restored.

Never a timing assertion: only that the measurements exist and are consistent (p95 >= p50).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.search_latency import MODES, main
from tests.crash_helpers import make_tree


@pytest.mark.slow
def test_search_latency_benchmark_reports_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "tree", n_generated=4)
    before = {p: p.read_bytes() for p in root.rglob("*.py")}
    figures = main(["--corpus", str(root), "--index-dir", str(tmp_path / "index"), "--chunks", "50",
                    "--queries", "4", "--cold-runs", "1", "--updates", "1"])
    assert figures["chunks"] > 0 and figures["embedder"] == "hashing"
    for key in ("warm", "warm_per_query_open", "warm_after_updates"):
        for mode in MODES:
            p50, p95 = figures[key][mode]["p50_ms"], figures[key][mode]["p95_ms"]
            assert 0 < p50 <= p95, (key, mode)
    cold = figures["cold"]
    assert set(cold) == {"wall_s", "interpreter_s", "imports_s", "faiss_import_s", "read_meta_s",
                         "embedder_load_s", "first_search_s"}
    assert all(value > 0 for value in cold.values())
    assert {p: p.read_bytes() for p in root.rglob("*.py")} == before  # the benchmark's edits are reverted
    out = capsys.readouterr().out
    assert "kept conn p50" in out and "cold `codeindex search` process" in out
