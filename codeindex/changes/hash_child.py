"""A forked child process that hashes files while the parent keeps walking the tree.

Why a process: the walk is Python-bound and so is the per-file part of hashing, so a second *thread*
only trades the GIL back and forth (measured: no gain). A forked child has its own interpreter, so
on two cores the walk and the hashing really run at once.

How work is shared: the parent offers each batch of paths with a *non-blocking* write to a pipe.
When the pipe is full, the child is behind, and the parent keeps the batch to hash itself once the
walk is over. So the child takes what it can keep up with, the parent the rest, and both finish at
about the same time without any further coordination. The child sends all its results back in one
message when the pipe closes.

Safety: ``fork`` copies only the calling thread. A child could deadlock if it needed a lock that
another thread held at the fork; this child needs none: it runs ``os.read``/``os.write``, blake3 and
``marshal`` (the GIL is re-initialised by the fork and glibc's allocator has fork handlers) and leaves
with ``os._exit`` (no atexit handlers, no inherited stdio buffers flushed twice). The threads a
process here typically has are idle native pools (numpy's OpenBLAS, Arrow, DuckDB), which the child
never touches. Linux only (macOS system frameworks are not fork-safe); ``CODEINDEX_HASH_FORK=0``
turns it off. If the child fails in any way, the parent hashes the child's share itself: a failed
child costs time, never a wrong or missing hash.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import sys
import warnings
from collections.abc import Callable, Sequence

Job = tuple[str, str, int, int, int]
"""(path relative to the root, the path to open when it differs or "", size, device, inode from its stat)"""
Outcome = tuple[str, str | None, str | None]  # (path, hex digest or None, reason when unreadable)
HashOne = Callable[[str, int, int, int], tuple[str | None, str | None]]
"""(absolute path to open, size, device, inode) -> (digest, None) or (None, reason)"""

_HEADER = 4
# A pipe write of at most PIPE_BUF bytes is atomic: all of it or (pipe full) none of it.
_MAX_MESSAGE = getattr(select, "PIPE_BUF", 512)


def can_fork() -> bool:
    """True on Linux unless ``CODEINDEX_HASH_FORK=0`` (see the module docstring)."""
    if os.environ.get("CODEINDEX_HASH_FORK", "1") == "0":
        return False
    return sys.platform.startswith("linux") and hasattr(os, "fork")


class HashChild:
    """One forked child hashing what it is offered; see the module docstring."""

    def __init__(self, root: str, hash_one: HashOne) -> None:
        jobs_r, jobs_w = os.pipe()
        results_r, results_w = os.pipe()
        with warnings.catch_warnings():  # Python 3.12+ warns on any fork of a threaded process; see above
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                os.close(jobs_w)
                os.close(results_r)
                _serve(root, hash_one, jobs_r, results_w)
                code = 0
            finally:
                os._exit(code)
        os.close(jobs_r)
        os.close(results_w)
        os.set_blocking(jobs_w, False)
        self.pid = pid
        self._jobs = jobs_w
        self._results = results_r
        self.sent: list[Job] = []
        self._alive = True

    def offer(self, batch: Sequence[Job]) -> bool:
        """Hand ``batch`` to the child if its pipe has room now; False means the caller keeps it."""
        if not self._alive:
            return False
        payload = marshal.dumps(list(batch))
        message = len(payload).to_bytes(_HEADER, "little") + payload
        if len(message) > _MAX_MESSAGE:
            return False
        try:
            os.write(self._jobs, message)
        except BlockingIOError:
            return False
        except OSError:  # the child is gone: its share comes back through collect()
            self._alive = False
            return False
        self.sent.extend(batch)
        return True

    def collect(self) -> list[Outcome] | None:
        """Close the job pipe, wait for the child, and return its outcomes (None if it failed)."""
        os.close(self._jobs)
        chunks = []
        try:
            while data := os.read(self._results, 1 << 20):
                chunks.append(data)
        finally:
            os.close(self._results)
            _, status = os.waitpid(self.pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        try:
            outcomes = marshal.loads(b"".join(chunks))
        except (EOFError, ValueError, TypeError):
            return None
        if not isinstance(outcomes, list) or len(outcomes) != len(self.sent):
            return None
        return [(job[0], digest, reason) for job, (digest, reason) in zip(self.sent, outcomes, strict=True)]

    def abandon(self) -> None:
        """Stop the child without its results (the walk failed)."""
        for fd in (self._jobs, self._results):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _serve(root: str, hash_one: HashOne, jobs_fd: int, results_fd: int) -> None:
    outcomes: list[tuple[str | None, str | None]] = []  # in the order sent; the parent knows the paths
    with os.fdopen(jobs_fd, "rb") as jobs:
        while header := jobs.read(_HEADER):
            batch = marshal.loads(jobs.read(int.from_bytes(header, "little")))
            outcomes.extend(hash_one(f"{root}/{fs or rel}", size, device, inode)
                            for rel, fs, size, device, inode in batch)
    data = memoryview(marshal.dumps(outcomes))
    while data:
        written = os.write(results_fd, data)
        data = data[written:]
    os.close(results_fd)
