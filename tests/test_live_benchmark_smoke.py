"""``python -m benchmarks --scenarios live`` in smoke mode: every figure is produced (never a timing check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import main

E2E = Path(__file__).parent / "scenarios" / "e2e_repo"


@pytest.mark.slow
def test_live_scenario_smoke(tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    rc = main(["--smoke", "--corpus", str(E2E), "--json", str(out), "--scenarios", "live",
               "--workdir", str(tmp_path / "work")])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["errors"] == {}
    live = data["results"]["live"]
    assert live["edits"] == 3 and live["warm_search_queries"] == 30 and live["cold_cli_searches"] == 3
    for name in ("edit_to_searchable_p50_s", "edit_to_searchable_p95_s", "warm_search_p50_ms", "warm_search_p95_ms",
                 "cold_cli_search_p50_s", "cold_cli_update_s", "rss_mb", "idle_window_s"):
        assert live[name] > 0, name
    assert live["idle_cpu_percent"] >= 0
    assert live["server_updates"] >= 1 + live["edits"]  # the catch-up pass, then one update per edit at least
