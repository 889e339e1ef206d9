"""One writer at a time: an advisory ``flock`` on ``.codeindex/lock`` holding the writer's pid and host.

``flock`` is released by the kernel when the holder dies (even by SIGKILL), so a lock file left by a
dead writer is detected as stale and taken over, with a warning naming the dead pid.

A lock lives in its file's inode: if the file is deleted (or replaced) while a writer holds it, a
second writer can create a new one and take "the" lock too. Every commit therefore first calls
``ensure_still_held``, which fails the run (nothing committed) when the path no longer names the
inode this process locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from codeindex.errors import EnvironmentProblem, LockedError, environment_problem

log = logging.getLogger("codeindex.lock")

_held: dict[str, int] = {}
"""index folder -> the descriptor of the lock this process holds on it."""


def _read_holder(path: Path) -> dict[str, object]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def writer_lock(index_dir: Path, *, wait: bool = False, timeout_s: float = 3600.0) -> Iterator[list[str]]:
    """Hold the writer lock for the duration of the block; yields a list of warnings (e.g. stale takeover)."""
    path = index_dir / "lock"
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise environment_problem(exc, exc.filename or path, "create the writer lock") from exc
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
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "since": time.time()}).encode(), 0)
        except OSError as exc:
            raise environment_problem(exc, path, "write the writer lock") from exc
        key = os.path.abspath(index_dir)
        _held[key] = fd
        try:
            yield warnings
        finally:
            _held.pop(key, None)
            with contextlib.suppress(OSError):  # a full or read-only disk: the flock below is what matters
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def ensure_still_held(index_dir: Path) -> None:
    """Raise ``EnvironmentProblem`` if the lock file this process holds for ``index_dir`` was deleted or
    replaced since it was taken (another writer could then hold a lock of its own). A no-op when this
    process holds no lock there (a library caller that writes without ``writer_lock``)."""
    fd = _held.get(os.path.abspath(index_dir))
    if fd is None:
        return
    path = index_dir / "lock"
    try:
        current = os.stat(path)
    except FileNotFoundError:
        current = None
    except OSError as exc:
        raise environment_problem(exc, path, "check the writer lock") from exc
    mine = os.fstat(fd)
    if current is None or (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
        what = "deleted" if current is None else "replaced by another file"
        raise EnvironmentProblem(
            f"the writer lock {path} was {what} while this run held it, so another writer may be running: "
            "nothing was committed", hint="make sure no other codeindex writes this index, then rerun")
