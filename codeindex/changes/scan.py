"""Stat-gated hashing: read only the files whose stat changed since the stored snapshot.

A file whose ``(size, mtime_ns, inode, ctime_ns)`` equals the snapshot's keeps its stored hash. The
exception is git's "racy" case: a file written in the same timestamp tick as the snapshot was taken
can change again without its stat changing, so a file whose mtime is not clearly older than the
snapshot (``mtime >= snapshot_time - RACY_WINDOW_NS``) is re-hashed. ``snapshot_time_ns`` must be
the wall clock read *before* the walk that produced the stored stats (see ``discover``).
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

import blake3

from codeindex.changes.discovery import Discovery, discover
from codeindex.changes.hash_child import HashChild, Job, can_fork
from codeindex.changes.read import ReadSkip, read_checked
from codeindex.config import BY_NAME
from codeindex.models import FileStat, SourceFile
from codeindex.store.layout import INDEX_DIR_NAME

# Coarsest common mtime granularity: FAT has 2 s, HFS+/ext3 1 s; ext4/xfs/btrfs take timestamps from
# a coarse kernel clock that lags the wall clock by a few ms. 2 s covers all of them; the cost is
# re-hashing files edited in the 2 s before a snapshot once more on the next update.
RACY_WINDOW_NS = 2_000_000_000
# Above this size blake3 hashes a file on several threads.
PARALLEL_HASH_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_BYTES: int = BY_NAME["discovery.max_file_bytes"].default
"""The size cap when a caller names none."""
# Threads pay only when there is enough to read for I/O waits or blake3's GIL-free hashing to overlap.
# Measured on 2 shared cores, warm cache, 20.8k files / 185 MB: 2 threads took 0.61 s against 0.48 s
# for one (benchmarks/hash_bound.py), so small machines stay serial; cold caches on bigger machines are
# where overlapping reads can win, hence the high bar.
PARALLEL_MIN_BYTES = 256 * 1024 * 1024
PARALLEL_MIN_FILES = 256
PARALLEL_MIN_CORES = 4
# Files that must need hashing before ``OverlappedScan`` forks its hashing child; fewer are hashed
# here at the end (a one-file edit never forks).
OVERLAP_BATCH = 64
# Files per message to the hashing child: a message must fit in one atomic pipe write (PIPE_BUF).
CHILD_BATCH = 16


class StoredFile(Protocol):
    """What the stat gate reads of a stored file: its stat and content hash (``SnapshotEntry`` or
    the engine's fuller row)."""

    @property
    def stat(self) -> FileStat: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    """What the stored snapshot knows about one file."""

    stat: FileStat
    hash: str


@dataclass
class ScanResult:
    """Content hashes of every readable file, which ones were read now, and which could not be read."""

    hashes: dict[str, str] = field(default_factory=dict)
    rehashed: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)


UNTRUSTED_INODE = -1
"""The inode of a stored stat no file has: the stat gate never trusts its hash."""


def untrusted(stat: FileStat) -> FileStat:
    """``stat`` as stored for a file whose stored hash must not be trusted next run: the file was parsed
    from bytes that differ from those the scan hashed, so it changed during the run; the next scan
    hashes it again (and re-parses it unless it now has the bytes that were parsed)."""
    return FileStat(stat.size, stat.mtime_ns, UNTRUSTED_INODE, stat.ctime_ns)


def needs_hash(current: FileStat, stored: StoredFile | None, snapshot_time_ns: int) -> bool:
    """True when the stored hash cannot be trusted for a file with stat ``current``."""
    if stored is None or stored.stat != current:
        return True
    return current.mtime_ns >= snapshot_time_ns - RACY_WINDOW_NS


def hash_file(path: str, size_hint: int = 0, device: int = 0, inode: int = 0, *,
              max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """blake3 hex of a file's content, read through ``read.read_checked`` (no symlink followed, no
    blocking open, the same file discovery saw, at most ``max_bytes``). Large files are hashed on
    several threads. (Not memory-mapped: a file truncated while mapped kills the process with SIGBUS.)
    """
    data = read_checked(path, size_hint, device, inode, max_bytes)
    if len(data) >= PARALLEL_HASH_BYTES:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
    return blake3.blake3(data).hexdigest()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "vanished"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return exc.strerror or type(exc).__name__


def _hash_one(path: str, size: int, device: int, inode: int, max_bytes: int) -> tuple[str | None, str | None]:
    """(digest, None) or (None, the reason the file was not read)."""
    try:
        return hash_file(path, size, device, inode, max_bytes=max_bytes), None
    except ReadSkip as skip:
        return None, skip.reason
    except OSError as exc:
        return None, _reason(exc)


def _job(f: SourceFile) -> Job:
    return (f.path, f.fs_path or "", f.stat.size, f.device, f.stat.inode)


def _hash_jobs(root: str, jobs: Sequence[Job], max_bytes: int) -> list[tuple[str | None, str | None]]:
    return [_hash_one(f"{root}/{fs or rel}", size, dev, ino, max_bytes) for rel, fs, size, dev, ino in jobs]


def choose_threads(n_files: int, total_bytes: int) -> int:
    """The thread count for reading ``n_files`` totalling ``total_bytes``: 1 unless the work is big."""
    cores = os.cpu_count() or 1
    if cores < PARALLEL_MIN_CORES or n_files < PARALLEL_MIN_FILES or total_bytes < PARALLEL_MIN_BYTES:
        return 1
    return min(4, cores // 2)


def scan(root: Path, files: Sequence[SourceFile], snapshot: Mapping[str, StoredFile],
         snapshot_time_ns: int, *, threads: int | None = None, max_file_bytes: int = DEFAULT_MAX_BYTES) -> ScanResult:
    """Hash what changed, reuse the rest. ``threads=None`` applies ``choose_threads``."""
    result = ScanResult()
    todo: list[SourceFile] = []
    for f in files:
        stored = snapshot.get(f.path)
        if needs_hash(f.stat, stored, snapshot_time_ns):
            todo.append(f)
        else:
            assert stored is not None
            result.hashes[f.path] = stored.hash
    if not todo:
        return result

    root_str = os.fspath(root)
    n_threads = threads if threads is not None else choose_threads(len(todo), sum(f.stat.size for f in todo))
    jobs = [_job(f) for f in todo]
    hash_jobs = functools.partial(_hash_jobs, root_str, max_bytes=max_file_bytes)
    if n_threads <= 1:
        outcomes = hash_jobs(jobs)
    else:
        # Contiguous slices, one task per slice of ~64 files: a future per file costs more than a small read.
        step = 64
        slices = [jobs[i : i + step] for i in range(0, len(jobs), step)]
        with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="codeindex-hash") as pool:
            outcomes = [outcome for part in pool.map(hash_jobs, slices) for outcome in part]
    for f, (digest, reason) in zip(todo, outcomes, strict=True):
        if digest is None:
            result.unreadable[f.path] = reason or "unreadable"
        else:
            result.hashes[f.path] = digest
            result.rehashed.append(f.path)
    return result


class OverlappedScan:
    """Stat-gate and hash the files ``discover`` reports while the walk is still going on.

    Where forking is safe (``hash_child.can_fork``), a child process hashes the batches it keeps up
    with while this process walks; this process hashes the rest after the walk. On two cores a first
    full hash then costs about half the sum of walking and hashing instead of the sum
    (``benchmarks/hash_bound.py`` times both side by side). The child starts only once
    ``OVERLAP_BATCH`` files need hashing, so a no-change or one-file update never forks. Elsewhere
    everything is hashed here, after the walk.

    Use as a context manager: leaving it early (the walk failed) stops the child.
    """

    def __init__(self, root: Path, snapshot: Mapping[str, StoredFile], snapshot_time_ns: int, *,
                 fork: bool | None = None, max_file_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._root = os.fspath(root)
        self._max_bytes = max_file_bytes
        self._snapshot = snapshot
        self._snapshot_time_ns = snapshot_time_ns
        self._fork = can_fork() if fork is None else fork
        self._result = ScanResult()
        self._pending: list[Job] = []
        self._kept: list[Job] = []
        self._child: HashChild | None = None
        self.forked = False
        """Whether a hashing child was started (for tests and benchmarks)."""

    def feed(self, files: Sequence[SourceFile]) -> None:
        """Take one directory's worth of discovered files (the ``discover(on_files=...)`` callback)."""
        hashes, snapshot, since = self._result.hashes, self._snapshot, self._snapshot_time_ns
        pending = self._pending
        if not snapshot:  # a first full hash: every file is read
            pending.extend([_job(f) for f in files])
        else:
            for f in files:
                stored = snapshot.get(f.path)
                if needs_hash(f.stat, stored, since):
                    pending.append(_job(f))
                else:
                    assert stored is not None
                    hashes[f.path] = stored.hash
        if len(pending) < OVERLAP_BATCH or not self._fork:
            return
        if self._child is None:
            self._child = HashChild(self._root, functools.partial(_hash_one, max_bytes=self._max_bytes))
            self.forked = True
        for i in range(0, len(pending), CHILD_BATCH):
            batch = pending[i : i + CHILD_BATCH]
            if not self._child.offer(batch):
                self._kept.extend(batch)
        self._pending = []

    def finish(self) -> ScanResult:
        """Hash what this process kept, collect the child's share, and return the result
        (``rehashed`` sorted)."""
        mine = self._kept + self._pending
        self._kept, self._pending = [], []
        outcomes = [(job[0], *outcome)
                    for job, outcome in zip(mine, _hash_jobs(self._root, mine, self._max_bytes), strict=True)]
        if self._child is not None:
            child, self._child = self._child, None
            theirs = child.collect()
            if theirs is None:  # the child failed: hash its share here
                sent = child.sent
                theirs = [(job[0], *outcome)
                          for job, outcome in zip(sent, _hash_jobs(self._root, sent, self._max_bytes), strict=True)]
            outcomes.extend(theirs)
        result = self._result
        for rel, digest, reason in outcomes:
            if digest is None:
                result.unreadable[rel] = reason or "unreadable"
            else:
                result.hashes[rel] = digest
                result.rehashed.append(rel)
        result.rehashed.sort()
        return result

    def __enter__(self) -> OverlappedScan:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._child is not None:
            self._child.abandon()
            self._child = None


def discover_and_scan(root: Path, language_of: Callable[[str], str | None], snapshot: Mapping[str, StoredFile],
                      snapshot_time_ns: int, *, max_file_bytes: int,
                      exclude: Collection[str] = (INDEX_DIR_NAME,),
                      within: Collection[str] | None = None) -> tuple[Discovery, ScanResult]:
    """``discover`` then ``scan``, with the hashing overlapped with the walk (see ``OverlappedScan``).
    ``within`` restricts both to those paths (see ``discover``)."""
    with OverlappedScan(root, snapshot, snapshot_time_ns, max_file_bytes=max_file_bytes) as overlapped:
        found = discover(root, language_of, max_file_bytes=max_file_bytes, exclude=exclude,
                         on_files=overlapped.feed, within=within)
        return found, overlapped.finish()
