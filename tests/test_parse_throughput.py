"""The parse throughput benchmark measures the pipeline's parse task (never timings)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import parse_throughput as pt
from codeindex.engine import tasks
from tests.conftest import SCENARIOS


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The language samples, a file no parser claims a language for, and a binary file."""
    root = tmp_path / "corpus"
    shutil.copytree(SCENARIOS / "languages", root)
    (root / "notes.unknownext").write_text("plain words\n" * 5)
    (root / "blob.py").write_bytes(b"\0\1\2" * 50)
    return root


def test_benchmark_runs_the_parse_task_over_every_file(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = tasks.parse_batch

    def counting(items: Any, ctx: Any) -> Any:
        calls.append(len(items))
        return real(items, ctx)

    monkeypatch.setattr(tasks, "parse_batch", counting)
    n_files = sum(1 for p in corpus.rglob("*") if p.is_file())
    figures = pt.main(["--corpus", str(corpus), "--max-tokens", "64"])

    assert figures["files"] == n_files  # unknown extensions are text; nothing is dropped silently
    assert sum(calls) == n_files  # every file went through tasks.parse_batch
    assert figures["skipped"] == 1  # the binary file, as the task records it
    assert figures["chunks"] > n_files
    assert figures["within_budget"] >= 0.99
    assert figures["p50_tokens"] <= figures["max_tokens"] <= 64
    assert 0 < figures["postings_share"] < 1
    assert figures["chunk_files_per_cpu_s"] > figures["files_per_cpu_s"] > 0


@pytest.mark.slow
def test_hf_counter_run_gives_the_same_chunks(corpus: Path) -> None:
    figures = pt.main(["--corpus", str(corpus), "--counter", "both"])
    assert figures["counter"] == "fast"
    assert figures["same_chunks"] is True
    assert figures["chunks"] == figures["hf_chunks"]
