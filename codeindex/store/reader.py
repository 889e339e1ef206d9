"""A read-only DuckDB connection that a long-lived searcher keeps open between queries.

Opening the database costs ~30 ms (a third of a query at 100k chunks), so an ``Index`` that answers
many searches keeps one read connection. That is safe only under three rules, because a DuckDB file
admits one process at a time once a writer wants it:

* **Notice changes.** Before each use the database's *stamp* (inode, size and mtime of the file and of
  its WAL) is compared with the one seen at open; a rebuild's atomic rename or any commit moves it,
  and the connection is reopened. An in-place commit cannot even happen while the connection is
  open (the writer needs the file to itself), so the stamp mainly catches a rebuild's swap.
* **Step aside for writers.** A writer holds ``.codeindex/lock`` with its pid written in it for its
  whole run. While that file is non-empty the connection is closed after every query, which is the
  open-per-query behaviour a writer's commit already copes with (it retries while a reader is in).
* **Never block a writer forever.** A background thread closes connections idle for ``IDLE_RELEASE_S``
  seconds, so a searcher that stops asking cannot keep a writer's commit waiting more than that
  (the writer waits up to 30 s, see ``db.connect``). In this process, any ``db.connect`` of the same
  file first closes held readers (``db.release_readers``): DuckDB refuses a second connection with
  other settings, and a held connection would pin the pre-rebuild file for in-process readers.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from codeindex.store import db as dbm

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger("codeindex.reader")

IDLE_RELEASE_S = 2.0
"""A held connection unused this long is closed (the most a writer's commit can wait on an idle searcher)."""

Stamp = tuple[int, ...]


def database_stamp(db_path: Path) -> Stamp:
    """What identifies one committed state of the database: inode, size and mtime of it and its WAL.

    Two ``stat`` calls (microseconds). A commit rewrites the file or its WAL; a rebuild renames a new
    file over it (new inode). A missing file stamps as zeros.
    """
    out: list[int] = []
    for path in (db_path, db_path.with_name(db_path.name + ".wal")):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            out.extend((0, 0, 0, 0))
            continue
        out.extend((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def writer_active(index_dir: Path) -> bool:
    """Whether a writer holds (or a dead writer left) the lock: its file holds the holder's pid.

    Reading the size, never taking the ``flock``: a probe that took it, even briefly, could make a
    starting writer fail with ``LockedError``. A dead writer's leftover only costs speed (queries
    fall back to open-per-query) until the next writer clears it.
    """
    try:
        return os.stat(index_dir / "lock").st_size > 0
    except FileNotFoundError:
        return False


class ReadConnection:
    """One read-only connection to ``db_path``, opened on demand, kept between queries when allowed.

    ``use()`` is the only way in: it yields an open connection and the stamp of the state it reads.
    Thread-safe: uses are serialised, and the idle reaper closes the connection only between uses.
    """

    def __init__(self, db_path: Path, *, idle_s: float = IDLE_RELEASE_S, keep: bool = True) -> None:
        self.db_path = db_path
        self.idle_s = idle_s
        self.keep = keep
        self._con: duckdb.DuckDBPyConnection | None = None
        self._stamp: Stamp = ()
        self._last_used = 0.0
        # re-entrant: a ``db.connect`` of this file from inside a use (same thread) must not deadlock
        self._lock = threading.RLock()

    @property
    def is_open(self) -> bool:
        return self._con is not None

    @contextlib.contextmanager
    def use(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, Stamp]]:
        if self._con is None or database_stamp(self.db_path) != self._stamp:
            # before taking our own lock, so that two holders opening at once cannot wait on each other
            dbm.release_readers(self.db_path, but=self)
        with self._lock:
            stamp = database_stamp(self.db_path)
            if self._con is not None and stamp != self._stamp:
                self._close()
            if self._con is None:
                # taken before opening: a change between the two is seen as a change at the next use
                self._stamp = stamp
                self._con = dbm.connect(self.db_path, read_only=True, release=False, shared=True)
            try:
                yield self._con, self._stamp
            finally:
                self._last_used = time.monotonic()
                if not self.keep or writer_active(self.db_path.parent):
                    self._close()
                else:
                    dbm.hold_reader(self)
                    _ensure_reaper(self.idle_s)

    def release(self) -> None:
        """Close the connection now (waits for a query in progress)."""
        with self._lock:
            self._close()

    def release_if_idle(self, now: float) -> None:
        """Close the connection if unused for ``idle_s``; never waits for a query in progress."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._con is not None and now - self._last_used >= self.idle_s:
                log.debug("closing the idle read connection to %s", self.db_path)
                self._close()
        finally:
            self._lock.release()

    def _close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()


# ---------------------------------------------------------------------------------------------- reaper

_reaper_lock = threading.Lock()
_reaper: threading.Thread | None = None


def _ensure_reaper(idle_s: float) -> None:
    """Start, once per process, the daemon thread that closes idle held connections."""
    global _reaper
    if _reaper is not None and _reaper.is_alive():
        return
    with _reaper_lock:
        if _reaper is not None and _reaper.is_alive():
            return
        if _reaper is None:  # close held connections before the interpreter tears DuckDB's types down
            atexit.register(_release_all)
        _reaper = threading.Thread(target=_reap_forever, args=(max(0.05, idle_s / 4),),
                                   name="codeindex-reader-reaper", daemon=True)
        _reaper.start()


def _release_all() -> None:
    for holder in dbm.held_readers():
        holder.release()


def _reap_forever(period_s: float) -> None:
    while True:
        time.sleep(period_s)
        now = time.monotonic()
        for holder in dbm.held_readers():
            if isinstance(holder, ReadConnection):
                try:
                    holder.release_if_idle(now)
                except Exception:  # a failed close must not kill the reaper (nor surface in a thread)
                    log.debug("closing an idle connection to %s failed", holder.db_path, exc_info=True)


__all__ = ["IDLE_RELEASE_S", "ReadConnection", "database_stamp", "writer_active"]
