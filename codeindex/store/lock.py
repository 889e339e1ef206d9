"""One writer at a time: an advisory ``flock`` on ``.codeindex/lock`` holding the writer's pid and host.

``flock`` is released by the kernel when the holder dies (even by SIGKILL), so a lock file left by a
dead writer is detected as stale and taken over, with a warning naming the dead pid.

A lock lives in its file's inode: if the file is deleted (or replaced) while a writer holds it, a
second writer can create a new one and take "the" lock too. Every commit therefore first calls
``ensure_still_held``, which fails the run (nothing committed) when the path no longer names the
inode this process locked.

One live process per index (``codeindex serve`` or ``watch``): ``live_lock`` on ``.codeindex/live.lock``,
held for the process's lifetime, the same way.
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
from collections.abc import Callable, Iterator
from pathlib import Path

from codeindex.errors import EnvironmentProblem, LiveConflictError, LockedError, environment_problem
from codeindex.store.layout import PRIVATE_FILE_MODE, make_index_dir, make_private_file

log = logging.getLogger("codeindex.lock")

_held: dict[str, int] = {}
"""index folder -> the descriptor of the lock this process holds on it."""


def _read_holder(path: Path) -> dict[str, object]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def writer_lock(index_dir: Path, *, wait: bool = False, timeout_s: float = 3600.0,
                on_wait: Callable[[dict[str, object]], None] | None = None) -> Iterator[list[str]]:
    """Hold the writer lock for the duration of the block; yields a list of warnings (e.g. stale takeover).

    With ``wait``, ``on_wait`` is called once, when the lock is found held, with what the holder wrote
    (``pid``, ``host``, ``since`` as a Unix time): the CLI shows who it is waiting for.
    """
    path = index_dir / "lock"
    try:
        make_index_dir(index_dir)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
    except OSError as exc:
        raise environment_problem(exc, exc.filename or path, "create the writer lock") from exc
    if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE_MODE:
        make_private_file(fd)
    warnings: list[str] = []
    try:
        deadline = time.monotonic() + timeout_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(path)
                if not wait or time.monotonic() > deadline:
                    raise LockedError(f"index {index_dir} is locked by pid {holder.get('pid', '?')} on "
                                      f"{holder.get('host', '?')}") from None
                if on_wait is not None and not told:
                    told = True
                    on_wait(holder)
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


LIVE_LOCK_NAME = "live.lock"


@contextlib.contextmanager
def live_lock(index_dir: Path, *, role: str) -> Iterator[None]:
    """Be the one live process (``role``: serve or watch) of the index in ``index_dir`` for the block.

    Two would each keep a read connection to a file that admits one process at a time, and race
    each other's updates of the same changes; the second fails with ``LiveConflictError`` naming the
    first. Writers are not affected: a live process takes the writer lock for each update it runs.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LIVE_LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(path)
            raise LiveConflictError(f"index {index_dir} is already kept live by `codeindex {holder.get('role', '?')}` "
                                    f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "role": role,
                                  "since": time.time()}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
