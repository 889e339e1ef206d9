"""One writer at a time: an advisory ``flock`` on ``.codeindex/lock`` holding the writer's pid and host.

``flock`` is released by the kernel when the holder dies (even by SIGKILL), so a lock file left by a
dead writer is detected as stale and taken over, with a warning naming the dead pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from codeindex.errors import LockedError
from codeindex.store.layout import PRIVATE_FILE_MODE, ensure_private_dir, make_private_file

log = logging.getLogger("codeindex.lock")


def _read_holder(path: Path) -> dict[str, object]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def writer_lock(index_dir: Path, *, wait: bool = False, timeout_s: float = 3600.0) -> Iterator[list[str]]:
    """Hold the writer lock for the duration of the block; yields a list of warnings (e.g. stale takeover)."""
    ensure_private_dir(index_dir)
    path = index_dir / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
    if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE_MODE:
        make_private_file(fd)
    warnings: list[str] = []
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(path)
                if not wait or time.monotonic() > deadline:
                    raise LockedError(f"index {index_dir} is locked by pid {holder.get('pid', '?')} on "
                                      f"{holder.get('host', '?')}") from None
                time.sleep(0.1)
        previous = _read_holder(path)
        if previous.get("pid"):
            message = (f"previous writer pid {previous.get('pid')} on {previous.get('host')} died without "
                       "finishing; taking over the stale lock")
            warnings.append(message)
            log.warning(message)
            from codeindex.store.recovery import remove_dead_writer_leftovers  # duckdb: only on this path

            removed = remove_dead_writer_leftovers(index_dir)
            if removed:
                log.info("removed what pid %s left behind: %s", previous.get("pid"), ", ".join(removed))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.time()}).encode(), 0)
        try:
            yield warnings
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
