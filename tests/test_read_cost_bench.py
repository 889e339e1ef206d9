"""benchmarks/read_cost.py in smoke mode: both sides measured, ratios present (never timings)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.read_cost import measure
from codeindex import Index

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_read_cost_measures_both_sides(tmp_path: Path) -> None:
    first = tmp_path / "a"
    for i in range(3):
        (first / "pkg").mkdir(parents=True, exist_ok=True)
        (first / "pkg" / f"m{i}.py").write_text("".join(f"def f{i}_{k}(x):\n    return x + {k}\n\n" for k in range(80)))
    second = tmp_path / "b"
    shutil.copytree(first, second)
    for root in (first, second):
        Index(root).rebuild(scheduler="sync", embedder="hashing")
    out = measure({"before": (str(REPO), first), "after": (str(REPO), second)}, repeat=1)
    assert out["files_found_by_walk"] == {"before": 3, "after": 3}
    assert set(out["after_over_before"]) == {"walk", "noop", "edit"}
    assert all(v > 0 for v in out["after_over_before"].values())
    assert (first / out["edit_file"]).read_text() == (second / out["edit_file"]).read_text()  # put back
