"""How close change detection gets to the floor set by the filesystem.

Side by side, in one run, on one corpus (warm page cache: every timing is repeated, the first
repetition warms it):

  (a) bare walk: os.scandir + one stat per file, nothing else: the floor for "did anything change"
  (b) detect, nothing changed: discover + scan against the stored snapshot + diff + Merkle tree update
  (c) detect, one file edited (simulated by a stale stat in the stored snapshot: the corpus is not touched)
  (d) first full hash: discover + scan with no snapshot, as the engine runs it (a forked child hashes
      while the walk goes on, see ``scan.OverlappedScan``); (d1) walk, then hash, in one process
  (e) bare read + blake3 loop over the same files: the floor for (d). Two loops are timed, Python's
      ``open().read()`` (e1) and ``os.open``/``os.read`` (e2, what the engine uses); (e) is the faster
      of the two in each round, so the ratio is never flattered by a slow bound
  (f) stat-only over the known paths, no scandir: what skipping scandir in unchanged directories
      (directory mtime gates) could at best reach

Targets: (b)/(a) and (c)/(a) <= 3, (d)/(e) <= 1.5.

    python -m benchmarks.hash_bound --corpus /work/corpora/large
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import blake3

from codeindex.changes.discovery import discover
from codeindex.changes.merkle import build_tree, diff_trees, update_tree
from codeindex.changes.scan import SnapshotEntry, discover_and_scan, scan
from codeindex.models import FileStat

MAX_FILE_BYTES = 1 << 20


def _language_of(path: str) -> str | None:
    return "text"


def _timed_rounds(jobs: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float]]:
    """Run every job once per round, rounds interleaved, so load from other processes hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeat):
        for name, fn in jobs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def bare_walk(root: str) -> int:
    count = 0
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    entry.stat(follow_symlinks=False)
                    count += 1
    return count


def detect(root: Path, snapshot: dict[str, SnapshotEntry], snapshot_time: int,
           old_leaves: dict[str, str], old_nodes: dict[str, str]) -> Any:
    _found, result = discover_and_scan(root, _language_of, snapshot, snapshot_time, max_file_bytes=MAX_FILE_BYTES)
    diff = diff_trees(old_leaves, result.hashes)
    update_tree(old_nodes, result.hashes, diff.changed_paths())  # the nodes the engine stores
    return diff, result


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    root: Path = args.corpus.resolve()
    root_str = str(root)
    repeat: int = args.repeat

    # Build the stored snapshot once (this is also the warm-up of the page cache).
    found = discover(root, _language_of, max_file_bytes=MAX_FILE_BYTES)
    files = found.files
    first = scan(root, files, {}, 0)
    snapshot = {f.path: SnapshotEntry(f.stat, first.hashes[f.path]) for f in files}
    snapshot_time = time.time_ns()
    newest = max(f.stat.mtime_ns for f in files)
    if newest >= snapshot_time - 2_000_000_000:
        raise SystemExit("corpus has files modified in the last 2 s; they would always be re-hashed")
    leaves = dict(first.hashes)
    nodes = build_tree(leaves)
    edited_path = files[len(files) // 2].path
    edited = dict(snapshot)
    old = edited[edited_path]
    edited[edited_path] = SnapshotEntry(replace(old.stat, mtime_ns=old.stat.mtime_ns - 1), old.hash)
    paths = [f"{root_str}/{f.path}" for f in files]
    sizes = [f.stat.size for f in files]
    total_bytes = sum(f.stat.size for f in files)

    # Sanity: the detector sees nothing, then exactly the one edit (as re-hashed, content equal).
    diff, res = detect(root, snapshot, snapshot_time, leaves, nodes)
    assert diff.is_empty() and res.rehashed == [], (diff, res.rehashed[:5])
    diff, res = detect(root, edited, snapshot_time, leaves, nodes)
    assert res.rehashed == [edited_path], res.rehashed[:5]

    def bare_hash_open() -> None:
        for p in paths:
            with open(p, "rb") as fh:
                blake3.blake3(fh.read()).hexdigest()

    flags = os.O_RDONLY | os.O_CLOEXEC

    def bare_hash_osread() -> None:
        for p, size in zip(paths, sizes, strict=True):
            fd = os.open(p, flags)
            try:
                data = os.read(fd, size + 1)
            finally:
                os.close(fd)
            blake3.blake3(data).hexdigest()

    def stat_only() -> None:
        for p in paths:
            st = os.stat(p)
            FileStat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def full_hash_serial() -> object:
        return scan(root, discover(root, _language_of, max_file_bytes=MAX_FILE_BYTES).files, {}, 0, threads=1)

    def full_hash_overlapped() -> object:
        return discover_and_scan(root, _language_of, {}, 0, max_file_bytes=MAX_FILE_BYTES)

    jobs: dict[str, Callable[[], object]] = {
        "a_bare_walk": lambda: bare_walk(root_str),
        "b_detect_unchanged": lambda: detect(root, snapshot, snapshot_time, leaves, nodes),
        "c_detect_one_edit": lambda: detect(root, edited, snapshot_time, leaves, nodes),
        "d_first_full_hash": full_hash_overlapped,
        "d1_first_full_hash_walk_then_hash": full_hash_serial,
        "e1_bare_open_read_blake3": bare_hash_open,
        "e2_bare_os_read_blake3": bare_hash_osread,
        "f_stat_only_no_scandir": stat_only,
        "discover_only": lambda: discover(root, _language_of, max_file_bytes=MAX_FILE_BYTES),
        "build_tree_only": lambda: build_tree(leaves),
        "diff_only_unchanged_with_nodes": lambda: diff_trees(leaves, leaves, nodes, dict(nodes)),
        "diff_only_unchanged_no_nodes": lambda: diff_trees(leaves, dict(leaves)),
    }
    timings = _timed_rounds(jobs, repeat)
    # (e): the faster bare loop, per statistic
    timings["e_bare_read_blake3"] = (min(timings["e1_bare_open_read_blake3"][0], timings["e2_bare_os_read_blake3"][0]),
                                     min(timings["e1_bare_open_read_blake3"][1], timings["e2_bare_os_read_blake3"][1]))
    print(f"corpus {root}: {len(files)} files, {total_bytes / 1e6:.1f} MB, warm page cache, "
          f"{repeat} repetitions, {os.cpu_count()} cores")
    print(f"{'timing':34} {'min s':>8} {'median s':>9}")
    for name, (best, median) in timings.items():
        print(f"{name:34} {best:8.3f} {median:9.3f}")
    figures: dict[str, float] = {"files": float(len(files)), "bytes": float(total_bytes)}
    for name, (best, median) in timings.items():
        figures[f"{name}_min_s"] = best
        figures[f"{name}_median_s"] = median
    pairs = {"b/a": ("b_detect_unchanged", "a_bare_walk"), "c/a": ("c_detect_one_edit", "a_bare_walk"),
             "d/e": ("d_first_full_hash", "e_bare_read_blake3"),
             "d1/e": ("d1_first_full_hash_walk_then_hash", "e_bare_read_blake3"),
             "d/e1": ("d_first_full_hash", "e1_bare_open_read_blake3"),
             "f/a": ("f_stat_only_no_scandir", "a_bare_walk")}
    for label, which in (("min", 0), ("median", 1)):
        ratios = {k: timings[num][which] / timings[den][which] for k, (num, den) in pairs.items()}
        print(f"ratios of {label}s: " + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))
        figures.update({f"ratio_{k.replace('/', '_over_')}_{label}": v for k, v in ratios.items()})
    return figures


if __name__ == "__main__":
    main()
