"""Stat-gated hashing, the racy window, and the whole detector (discover + scan + diff) vs ground truth."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeindex.changes.discovery import discover
from codeindex.changes.hash_child import can_fork
from codeindex.changes.merkle import build_tree, diff_trees, leaf_hash
from codeindex.changes.read import read_checked
from codeindex.changes.scan import (
    OVERLAP_BATCH,
    RACY_WINDOW_NS,
    OverlappedScan,
    SnapshotEntry,
    choose_threads,
    discover_and_scan,
    needs_hash,
    scan,
)
from codeindex.models import FileStat

STAT = FileStat(size=4, mtime_ns=10_000_000_000, inode=7, ctime_ns=10_000_000_000)


def text(path: str) -> str:
    return "text"


def snapshot_of(root: Path, previous: dict[str, SnapshotEntry], previous_time: int,
                ) -> tuple[dict[str, SnapshotEntry], int, list[str]]:
    """One detector pass, the way the engine runs it: clock first, then walk and hash (overlapped)."""
    started = time.time_ns()
    found, result = discover_and_scan(root, text, previous, previous_time, max_file_bytes=1 << 20)
    entries = {f.path: SnapshotEntry(f.stat, result.hashes[f.path])
               for f in found.files if f.path in result.hashes}
    return entries, started, result.rehashed


def test_needs_hash_rules() -> None:
    old_enough = STAT.mtime_ns + RACY_WINDOW_NS + 1
    assert needs_hash(STAT, None, old_enough)
    assert not needs_hash(STAT, SnapshotEntry(STAT, "h"), old_enough)
    m, c = STAT.mtime_ns, STAT.ctime_ns
    for changed in (FileStat(5, m, 7, c), FileStat(4, m + 1, 7, c),
                    FileStat(4, m, 8, c), FileStat(4, m, 7, c + 1)):
        assert needs_hash(changed, SnapshotEntry(STAT, "h"), old_enough)
    # Racy: modified within the window before the snapshot was taken, so an equal stat proves nothing.
    assert needs_hash(STAT, SnapshotEntry(STAT, "h"), STAT.mtime_ns + RACY_WINDOW_NS)
    assert needs_hash(STAT, SnapshotEntry(STAT, "h"), STAT.mtime_ns - 5)  # mtime in the future


def test_unchanged_file_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("aaaa")
    (f,) = discover(tmp_path, text, max_file_bytes=100).files
    # A stored hash that is deliberately wrong: if the gate trusts the stat, the wrong hash comes back.
    stored = {"a.py": SnapshotEntry(f.stat, "stored-hash")}
    later = f.stat.mtime_ns + RACY_WINDOW_NS + 1
    result = scan(tmp_path, [f], stored, later)
    assert result.hashes == {"a.py": "stored-hash"} and result.rehashed == []
    # The same stat within the racy window is read again.
    result = scan(tmp_path, [f], stored, f.stat.mtime_ns)
    assert result.hashes == {"a.py": leaf_hash(b"aaaa")} and result.rehashed == ["a.py"]


def test_same_size_edit_in_the_same_second_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text("aaaa")
    snap, taken, _ = snapshot_of(tmp_path, {}, 0)
    mtime = os.stat(path).st_mtime_ns
    path.write_text("bbbb")
    os.utime(path, ns=(mtime, mtime))  # coarse timestamps: the edit did not move mtime
    new, _, rehashed = snapshot_of(tmp_path, snap, taken)
    assert rehashed == ["a.py"]
    assert new["a.py"].hash == leaf_hash(b"bbbb")
    diff = diff_trees({p: e.hash for p, e in snap.items()}, {p: e.hash for p, e in new.items()})
    assert diff.modified == ["a.py"]


def test_unreadable_and_vanished_files(tmp_path: Path) -> None:
    (tmp_path / "gone.py").write_text("x")
    (tmp_path / "ok.py").write_text("y")
    files = discover(tmp_path, text, max_file_bytes=100).files
    (tmp_path / "gone.py").unlink()
    result = scan(tmp_path, files, {}, 0)
    assert result.unreadable == {"gone.py": "vanished"}
    assert result.hashes == {"ok.py": leaf_hash(b"y")}


def test_threaded_scan_matches_serial(tmp_path: Path) -> None:
    for i in range(150):
        (tmp_path / f"f{i}.txt").write_text(str(i) * (i + 1))
    files = discover(tmp_path, text, max_file_bytes=1 << 20).files
    assert scan(tmp_path, files, {}, 0, threads=3).hashes == scan(tmp_path, files, {}, 0, threads=1).hashes
    assert choose_threads(10, 10) == 1


# ----------------------------------------------------------------------------- property test

NAMES = ["a.py", "b.py", "d/c.py", "d/e/f.py", "g/h.py"]
CONTENTS = [b"", b"one", b"two", b"six", b"longer content\n"]  # same sizes on purpose
op = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(NAMES), st.sampled_from(CONTENTS)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES)),
    st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("chmod"), st.sampled_from(NAMES)),
    st.tuples(st.just("touch"), st.sampled_from(NAMES)),
)


class World:
    """A real directory plus the ground truth of its content. mtimes are set to distinct old times so
    the stat gate is exercised (recent files would all fall in the racy window and be re-read)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.truth: dict[str, bytes] = {}
        self.clock = time.time_ns() - 3600 * 10**9

    def _age(self, rel: str) -> None:
        self.clock += 10**9
        os.utime(self.root / rel, ns=(self.clock, self.clock))

    def apply(self, action: tuple[Any, ...]) -> None:
        kind, rel = action[0], action[1]
        path = self.root / rel
        if kind == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(action[2])
            self.truth[rel] = action[2]
            self._age(rel)
        elif rel not in self.truth:
            return
        elif kind == "delete":
            path.unlink()
            del self.truth[rel]
        elif kind == "rename" and action[2] != rel:
            (self.root / action[2]).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, self.root / action[2])
            self.truth[action[2]] = self.truth.pop(rel)
        elif kind == "chmod":
            path.chmod(0o600 if path.stat().st_mode & 0o044 else 0o644)
        elif kind == "touch":
            self._age(rel)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(op, max_size=6), min_size=1, max_size=4))
def test_detector_matches_ground_truth(rounds: list[list[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp))
        snap, taken, _ = snapshot_of(world.root, {}, 0)
        for actions in rounds:
            before = dict(world.truth)
            for action in actions:
                world.apply(action)
            new, new_taken, rehashed = snapshot_of(world.root, snap, taken)
            truth_hashes = {p: leaf_hash(c) for p, c in world.truth.items()}
            assert {p: e.hash for p, e in new.items()} == truth_hashes

            old_leaves = {p: e.hash for p, e in snap.items()}
            diff = diff_trees(old_leaves, truth_hashes, build_tree(old_leaves), build_tree(truth_hashes))
            changed = {p for p, c in world.truth.items() if before.get(p) != c}
            assert set(diff.added) | set(diff.modified) | {n for _, n in diff.moved} == changed
            assert set(diff.deleted) | {o for o, _ in diff.moved} == set(before) - set(world.truth)
            assert all(before[o] == world.truth[n] for o, n in diff.moved)
            assert set(rehashed) >= changed  # never trust a stat for changed content
            snap, taken = new, new_taken


def _nested_small_files(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"d{i % 7}" / f"e{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.py").write_text(f"content {i}\n" * (i % 5 + 1))


_FORK_SCRIPT = """
import os, sys
from pathlib import Path
from codeindex.changes import scan as scan_mod
from codeindex.changes.discovery import discover
from codeindex.changes.hash_child import can_fork
from codeindex.changes.scan import OverlappedScan, discover_and_scan, scan

root = Path(sys.argv[1])
mode = sys.argv[2]
text = lambda p: "text"
serial = scan(root, discover(root, text, max_file_bytes=1 << 20).files, {}, 0, threads=1)
if mode == "child-dies":
    parent, real = os.getpid(), scan_mod._hash_one
    def dying(*args, **kwargs):
        if os.getpid() != parent:
            os._exit(3)
        return real(*args, **kwargs)
    scan_mod._hash_one = dying
with OverlappedScan(root, {}, 0) as ov:
    found = discover(root, text, max_file_bytes=1 << 20, on_files=ov.feed)
    result = ov.finish()
    forked = ov.forked
assert forked, "no child was forked"
assert result.hashes == serial.hashes, "hashes differ"
assert result.rehashed == serial.rehashed, "rehashed differs"
assert result.unreadable == serial.unreadable, (result.unreadable, serial.unreadable)
print("OK", len(result.hashes), len(serial.unreadable))
"""


def _run_fork_script(root: Path, mode: str) -> str:
    # A fresh process: forking the pytest process itself (many threads, many open files) is avoidable.
    proc = subprocess.run([sys.executable, "-c", _FORK_SCRIPT, str(root), mode], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the hashing child is forked on Linux only")
def test_forked_hashing_child_gives_the_serial_result(tmp_path: Path) -> None:
    _nested_small_files(tmp_path, 6 * OVERLAP_BATCH + 5)
    (tmp_path / "locked.py").write_text("x")
    os.chmod(tmp_path / "locked.py", 0)
    out = _run_fork_script(tmp_path, "normal")
    assert out.startswith(f"OK {6 * OVERLAP_BATCH + 5 + (0 if os.geteuid() != 0 else 1)} ")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the hashing child is forked on Linux only")
def test_a_failed_hashing_child_costs_time_not_hashes(tmp_path: Path) -> None:
    _nested_small_files(tmp_path, 6 * OVERLAP_BATCH)
    assert _run_fork_script(tmp_path, "child-dies").startswith(f"OK {6 * OVERLAP_BATCH} ")


def test_overlapped_scan_never_forks_for_small_updates(tmp_path: Path) -> None:
    _nested_small_files(tmp_path, 2 * OVERLAP_BATCH)
    snap, taken, _ = snapshot_of(tmp_path, {}, 0)
    later = taken + RACY_WINDOW_NS + 1
    (tmp_path / "d0" / "e0" / "f0.py").write_text("edited, another size")
    with OverlappedScan(tmp_path, snap, later, fork=True) as ov:
        discover(tmp_path, text, max_file_bytes=1 << 20, on_files=ov.feed)
        result = ov.finish()
        assert not ov.forked
    assert result.rehashed == ["d0/e0/f0.py"]
    assert result.hashes["d0/e0/f0.py"] == leaf_hash(b"edited, another size")


def test_without_fork_everything_is_hashed_here(tmp_path: Path) -> None:
    _nested_small_files(tmp_path, 3 * OVERLAP_BATCH)
    found = discover(tmp_path, text, max_file_bytes=1 << 20)
    with OverlappedScan(tmp_path, {}, 0, fork=False) as ov:
        discover(tmp_path, text, max_file_bytes=1 << 20, on_files=ov.feed)
        result = ov.finish()
        assert not ov.forked
    assert result.hashes == scan(tmp_path, found.files, {}, 0, threads=1).hashes


def test_can_fork_is_switched_off_by_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("CODEINDEX_HASH_FORK", "0")
    assert not can_fork()
    monkeypatch.setenv("CODEINDEX_HASH_FORK", "1")
    assert can_fork() == sys.platform.startswith("linux")


def test_read_file_reads_past_a_stale_size(tmp_path: Path) -> None:
    p = tmp_path / "grew.txt"
    p.write_bytes(b"x" * 5000)
    cap = 1 << 20
    assert read_checked(str(p), 10, 0, 0, cap) == b"x" * 5000  # grew since its stat
    assert read_checked(str(p), 9000, 0, 0, cap) == b"x" * 5000  # shrank since its stat
    assert read_checked(str(p), 5000, 0, 0, cap) == b"x" * 5000
    (tmp_path / "empty").write_bytes(b"")
    assert read_checked(str(tmp_path / "empty"), 0, 0, 0, cap) == b""
