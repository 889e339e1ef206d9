"""The file watcher: root-relative batches, what it drops, and the root moving away and back."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from codeindex.live.watcher import ChangeBatch, TreeWatcher

DEADLINE_S = 30.0


def test_paths_are_made_relative_and_noise_is_dropped(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    watcher = TreeWatcher(root, root / ".codeindex", quiet_ms=50, max_delay_ms=1000)
    paths, full = watcher.relative([str(root / "src" / "a.py"), str(root / ".codeindex" / "meta.duckdb"),
                                    str(root / ".git" / "index"), str(root / "sub" / ".gitignore"), str(root),
                                    str(tmp_path / "elsewhere.py")])
    assert (paths, full) == ({"src/a.py", "sub/.gitignore"}, False)
    assert watcher.relative([str(root / ".git" / "info" / "exclude")]) == (set(), True)
    outside = TreeWatcher(root, tmp_path / "index", quiet_ms=50, max_delay_ms=1000)
    assert outside.relative([str(tmp_path / "index" / "meta.duckdb"), str(root / "x.py")]) == ({"x.py"}, False)


def _next(batches: queue.Queue[ChangeBatch], want: str) -> ChangeBatch:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            batch = batches.get(timeout=0.2)
        except queue.Empty:
            continue
        if (want == "gone" and batch.gone) or (want == "full" and batch.full) or (want == "paths" and batch.paths):
            return batch
    raise AssertionError(f"no {want} batch")


def test_a_real_watcher_reports_edits_and_the_root_moving(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / ".git").mkdir()
    batches: queue.Queue[ChangeBatch] = queue.Queue()
    stop = threading.Event()
    watcher = TreeWatcher(root, root / ".codeindex", quiet_ms=50, max_delay_ms=1000)
    thread = threading.Thread(target=watcher.run, args=(batches.put, stop), daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # the watch is set up
        (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # dropped: inside a VCS directory
        for i in range(50):
            (root / "src" / f"m{i}.py").write_text("x = 1\n")
        seen: set[str] = set()
        while len(seen) < 50:
            seen |= _next(batches, "paths").paths
        assert seen == {f"src/m{i}.py" for i in range(50)}

        root.rename(tmp_path / "moved")
        _next(batches, "gone")
        (tmp_path / "moved").rename(root)
        _next(batches, "full")  # back: what changed meanwhile is unknown, so a full pass
        (root / "src" / "after.py").write_text("y = 2\n")
        assert "src/after.py" in _next(batches, "paths").paths
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
