"""Searches never fail because a writer is finishing: a segment that vanished between reading the
committed state and loading it means a newer state exists, so the search reads it and tries again."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from codeindex import Index
from codeindex.errors import CorruptIndexError
from codeindex.search import searcher as searcher_module
from tests.crash_helpers import _generated_module, make_tree
from tests.helpers import run_cli

CYCLES = 20
QUERY = "compute total price"


@pytest.mark.slow
def test_a_segment_replaced_between_state_and_load_is_retried_on_the_new_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path / "tree")
    assert run_cli("-q", "rebuild", str(root)).returncode == 0
    real = searcher_module.load_segment
    seen: list[str] = []

    def load_after_a_rebuild(index_dir: Path, rec):  # the writer finishes exactly in the reader's window
        if not seen:
            seen.append("rebuild")
            assert run_cli("-q", "rebuild", str(root)).returncode == 0
        try:
            return real(index_dir, rec)
        except FileNotFoundError:
            seen.append(rec.file)
            raise

    monkeypatch.setattr(searcher_module, "load_segment", load_after_a_rebuild)
    index = Index(root)
    hits = index.search(QUERY, k=5, mode="vector")
    assert len(seen) > 1, "the old segment was never missing: the test did not exercise the retry"
    monkeypatch.setattr(searcher_module, "load_segment", real)
    assert [(h.path, h.start_line) for h in hits] == \
        [(h.path, h.start_line) for h in Index(root).search(QUERY, k=5, mode="vector")]


def test_a_missing_segment_the_state_still_lists_is_damage_not_a_retry_loop(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    next((root / ".codeindex").glob("seg-*.faiss")).unlink()
    with pytest.raises(CorruptIndexError, match="missing"):
        Index(root).search(QUERY, k=5, mode="vector")


@pytest.mark.slow
def test_searches_during_rebuilds_and_updates_never_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "tree")
    assert run_cli("-q", "rebuild", str(root)).returncode == 0
    done = threading.Event()
    writer_errors: list[str] = []

    def writer() -> None:
        try:
            for i in range(CYCLES):
                if i % 2 == 0:
                    proc = run_cli("-q", "rebuild", str(root))
                else:  # an edit and a new file: a delta segment, tombstones, maybe a compaction
                    (root / "gen" / f"w{i}.py").write_text(_generated_module(200 + i))
                    mod = root / "gen" / "mod3.py"
                    mod.write_text(mod.read_text() + f"\n# edit {i}\n")
                    proc = run_cli("-q", "update", str(root))
                if proc.returncode:
                    writer_errors.append(proc.stderr)
        finally:
            done.set()

    cli_counts = {"ok": 0, "failed": 0}
    cli_errors: list[str] = []

    def cli_reader() -> None:  # one process per search: the widest window between state and segments
        while not done.is_set():
            proc = run_cli("search", QUERY, "--root", str(root), "--mode", "vector", "-k", "5")
            cli_counts["ok" if proc.returncode == 0 else "failed"] += 1
            if proc.returncode:
                cli_errors.append(proc.stderr)

    threads = [threading.Thread(target=writer), threading.Thread(target=cli_reader)]
    for t in threads:
        t.start()
    kept = Index(root)
    ok = failed = 0
    errors: list[str] = []
    answers: set[tuple[tuple[str, int], ...]] = set()
    try:
        while not done.is_set():
            for index in (kept, Index(root)):
                for mode in ("vector", "hybrid", "lexical"):
                    try:
                        hits = index.search(QUERY, k=5, mode=mode)
                    except Exception as exc:  # counted, never raised: the test reports them all
                        failed += 1
                        errors.append(f"{type(exc).__name__}: {exc}")
                    else:
                        ok += 1
                        answers.add(tuple((h.path, h.start_line) for h in hits))
    finally:
        for t in threads:
            t.join()
        kept.close()
    with capsys.disabled():
        print(f"\n{CYCLES} rebuild/update cycles: {ok + failed} in-process searches, {failed} failed; "
              f"{sum(cli_counts.values())} CLI searches, {cli_counts['failed']} failed; "
              f"{len(answers)} distinct answers seen")
    assert not writer_errors, writer_errors[:3]
    assert failed == 0 and cli_counts["failed"] == 0, (errors + cli_errors)[:5]
    assert ok > CYCLES and cli_counts["ok"] > 0
    assert len(answers) > 1, "the searches never saw the index change: they did not overlap the writes"
