"""The freshness loop: watcher batches in, scoped updates out, one at a time; and how fresh an answer is.

Two threads. The watcher thread (``watcher.TreeWatcher``) adds the paths it sees to ``pending``; the
updater (``run``, in the caller's thread: the main thread for ``codeindex watch``, so Ctrl-C stops an
update exactly as it stops ``codeindex update``) takes everything pending at once and runs one
``Index.update(paths=...)``, which walks and hashes only those paths. What arrives meanwhile waits
for the next update: coalescing comes from the watcher's quiet window plus this one-at-a-time
rule, so a burst of 10,000 changed files is one or two updates, never one per file.

Full stat-gated passes (``Index.update()``) catch what a watcher can miss: at start (what changed
while nobody watched), every ``live.full_scan_s``, after the watcher restarts, when a burst changes
more than ``live.max_paths`` paths, and on request (the ``update`` tool). Compaction stays out of
the edit path: the loop's ``Index`` never compacts by itself (``live_config``); the loop compacts
once the tree has been idle for ``IDLE_COMPACT_S``, merging only the small delta segments of
many edits unless too many vectors are dead (``store/compaction.py``).

Once the tree has been quiet for ``IDLE_PREPARE_S`` after an update, the loop reads the committed
state the next update will start from (``Index.prepare_update``), so the next edit does not wait
for that read.

Every change the watcher reports gets a sequence number; ``applied`` is the newest one whose update
has committed. A search waits, bounded, until what was seen before it is applied, and says so when
it had to answer from the previous state.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from codeindex.config import Config
from codeindex.errors import CodeIndexError, error_lines
from codeindex.index import Index
from codeindex.live.watcher import TICK_S, ChangeBatch, TreeWatcher
from codeindex.progress import ProgressEvent

log = logging.getLogger("codeindex.live")

IDLE_PREPARE_S = 1.0
"""Quiet time after an update before the loop reads the next one's starting state: the searches an
agent makes right after an edit go first (the read holds the database for ~0.3 s on a 20k-file tree)."""
IDLE_COMPACT_S = 5.0
"""Quiet time after the last update before the loop checks whether the segments need compacting."""
DEGRADED_SCAN_S = 5.0
"""While the watcher cannot run, full passes this often are what keeps the index fresh."""
RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Back-off after a failed update (a damaged index, a full disk): never a busy loop of failures."""


def live_config(config: Config) -> Config:
    """``config`` with automatic compaction off: a live process compacts when idle, not inside an edit."""
    return config.with_overrides({"store.compact_segments": 2**31 - 1, "store.compact_dead_ratio": 1.0},
                                 source="live process (compacts when idle)")


def open_loop(root: str | os.PathLike[str], *, index_dir: str | os.PathLike[str] | None = None,
              scheduler: str | None = None, embedder: str | None = None, watch: bool = True,
              on_update: Callable[[dict[str, Any]], None] | None = None) -> FreshnessLoop:
    """The freshness loop of the index of ``root``, with the user's settings and compaction when idle."""
    base = Index(root, index_dir=index_dir)  # validates the path; the user's layered settings
    index = Index(base.root, index_dir=base.index_dir, config=live_config(base.config))
    return FreshnessLoop(index, compaction_config=base.config, scheduler=scheduler, embedder=embedder, watch=watch,
                         on_update=on_update)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FreshnessLoop:
    """Keeps ``index`` fresh from a file watcher; thread-safe to ask (``status``, ``wait_fresh``...)."""

    def __init__(self, index: Index, *, compaction_config: Config | None = None, scheduler: str | None = None,
                 embedder: str | None = None, watch: bool = True,
                 on_update: Callable[[dict[str, Any]], None] | None = None,
                 on_quiet: Callable[[], None] | None = None) -> None:
        self.index = index
        config = index.config
        self.quiet_ms = config["live.quiet_ms"]
        self.max_delay_ms = config["live.max_delay_ms"]
        self.max_paths = config["live.max_paths"]
        self.full_scan_s = config["live.full_scan_s"]
        self.compaction_config = compaction_config
        self.scheduler = scheduler
        self.embedder = embedder
        self.on_update = on_update
        self.on_quiet = on_quiet
        """Called in the loop's thread once the tree is quiet after an update (a server warms its searcher)."""
        self._watch = watch
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._pending: set[str] = set()
        self._full_wanted = True  # catch up with what changed while nobody watched: change number 1
        self._seen = 1
        self._applied = 0
        self._busy: str | None = None  # "scoped" | "full" | "compact" while one runs
        self._phase = ""
        self._failures = 0
        self._retry_at = 0.0
        self._last_full = 0.0
        self._compact_check_at: float | None = None
        self._prepare_at: float | None = None
        self._gone_since: str | None = None
        self._watch_error: str | None = None
        self._watcher_thread: threading.Thread | None = None
        self.updates = 0
        """Update runs so far (full and scoped): the figure coalescing is judged by."""
        self.last_report: dict[str, Any] | None = None
        self.last_full_report: dict[str, Any] | None = None
        self.last_update_at: str | None = None
        self.last_full_at: str | None = None
        self.last_error: CodeIndexError | None = None
        self.interrupted: str | None = None
        """The kind of update a Ctrl-C stopped (the index was left in its previous state)."""
        self.started_at = _now()

    # ------------------------------------------------------------------ the watcher side

    def on_batch(self, batch: ChangeBatch) -> None:
        """Take what the watcher saw (called from the watcher thread)."""
        with self._cond:
            if batch.gone:
                self._gone_since = self._gone_since or _now()
                self._cond.notify_all()
                return
            if self._gone_since is not None:  # back: what failed while it was gone may work now
                self._gone_since = None
                self._failures, self._retry_at = 0, 0.0
            self._watch_error = batch.error
            if batch.paths or batch.full:
                self._seen += 1
                self._pending |= batch.paths
                self._full_wanted = self._full_wanted or batch.full
                self._cond.notify_all()

    def _start_watcher(self) -> None:
        if not self._watch:
            return
        watcher = TreeWatcher(self.index.root, self.index.index_dir, quiet_ms=self.quiet_ms,
                              max_delay_ms=self.max_delay_ms)
        self._watcher_thread = threading.Thread(target=watcher.run, args=(self.on_batch, self._stop),
                                                name="codeindex-watcher", daemon=True)
        self._watcher_thread.start()

    # ------------------------------------------------------------------ the updater side

    def run(self) -> None:
        """The updater loop, in this thread, until ``stop()``. Starts the watcher thread first."""
        self._start_watcher()
        try:
            while not self._stop.is_set():
                work = self._next_work()
                if work is not None:
                    self._do(*work)
        finally:
            self._stop.set()

    def stop(self) -> None:
        """Ask both threads to finish (an update in progress runs to its end)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def _next_work(self) -> tuple[str, set[str], int] | None:
        """Wait for something to do: (kind, paths, the sequence number it settles); see ``busy``."""
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                waits = [TICK_S]
                if self._gone_since is not None:
                    pass
                elif now < self._retry_at:
                    waits.append(self._retry_at - now)
                elif self._full_wanted or len(self._pending) > self.max_paths:
                    return self._take("full")
                elif self._pending:
                    return self._take("scoped")
                else:
                    interval = DEGRADED_SCAN_S if self._watch_error or not self._watch else self.full_scan_s
                    if interval > 0:
                        if now - self._last_full >= interval:
                            return self._take("full")
                        waits.append(self._last_full + interval - now)
                    if self._prepare_at is not None:  # read the next update's starting state in idle time
                        if now >= self._prepare_at:
                            self._prepare_at = None
                            self._busy = "prepare"
                            return "prepare", set(), self._applied
                        waits.append(self._prepare_at - now)
                    if self._compact_check_at is not None:
                        if now >= self._compact_check_at:
                            self._compact_check_at = None
                            self._busy = "compact"
                            return "compact", set(), self._applied
                        waits.append(self._compact_check_at - now)
                self._cond.wait(max(0.01, min(waits)))
        return None

    def _take(self, kind: str) -> tuple[str, set[str], int]:
        paths, self._pending = self._pending, set()
        self._full_wanted = False
        self._busy = kind
        return kind, paths, self._seen

    def _do(self, kind: str, paths: set[str], upto: int) -> None:
        try:
            if kind == "compact":
                self._compact_if_needed()
                report = None
            elif kind == "prepare":
                self.index.prepare_update()
                if self.on_quiet is not None:
                    self.on_quiet()
                report = None
            else:
                report = self.index.update(paths=None if kind == "full" else paths, wait=True,
                                           scheduler=self.scheduler, embedder=self.embedder, progress=self._progress)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                self.interrupted = kind
            with self._cond:
                if kind not in ("compact", "prepare"):  # try again later: nothing seen is ever dropped
                    self._pending |= paths
                    self._full_wanted = self._full_wanted or kind == "full"
                if isinstance(exc, CodeIndexError):
                    self.last_error = exc
                elif isinstance(exc, Exception):
                    log.exception("live %s update failed", kind)
                    self.last_error = CodeIndexError(f"internal error: {type(exc).__name__}: {exc}",
                                                     hint="rerun with -vv for a traceback and report it")
                self._failures += 1
                self._retry_at = time.monotonic() + RETRY_S[min(self._failures, len(RETRY_S)) - 1]
                self._busy, self._phase = None, ""
                self._cond.notify_all()
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: the caller stops
            if self.last_error is not None:
                log.warning("live %s update failed: %s", kind, " ".join(error_lines(self.last_error)))
            return
        with self._cond:
            self._busy, self._phase = None, ""
            self._failures, self._retry_at = 0, 0.0
            self.last_error = None
            if report is not None:
                self.updates += 1
                self._applied = max(self._applied, upto)
                self.last_report = report.as_dict()
                self.last_update_at = _now()
                if kind == "full":
                    self._last_full = time.monotonic()
                    self.last_full_report = self.last_report
                    self.last_full_at = self.last_update_at
                if report.chunks_written or report.files_deleted or report.files_moved:
                    self._compact_check_at = time.monotonic() + IDLE_COMPACT_S
                self._prepare_at = time.monotonic() + IDLE_PREPARE_S
            elif kind == "compact":
                self._prepare_at = time.monotonic() + IDLE_PREPARE_S  # a compaction commits too
            self._cond.notify_all()
        if report is not None and self.on_update is not None:
            self.on_update(self.last_report or {})

    def _compact_if_needed(self) -> None:
        """Compact by the user's thresholds: the small delta segments of many edits are merged into
        one, leaving the big segments alone; everything is rewritten only when too much is dead."""
        from codeindex.store import db as dbm
        from codeindex.store.compaction import compact, compaction_reason
        from codeindex.store.lock import writer_lock

        if self.compaction_config is None or not self.index.exists():
            return
        with dbm.open_db(self.index.db_path, read_only=True) as con:
            reason = compaction_reason(con, self.compaction_config)
        if reason is None:
            return
        self._phase = f"compact ({reason})"
        with writer_lock(self.index.index_dir, wait=True):
            compact(self.index.index_dir, self.compaction_config, small_only=reason == "small-segments")

    def _progress(self, event: ProgressEvent) -> None:
        if event.stage in ("warning", "done"):
            return
        self._phase = event.stage if event.total is None else f"{event.stage} {event.done}/{event.total}"

    # ------------------------------------------------------------------ asking

    def request_full(self) -> int:
        """Ask for a full pass now; returns the ticket ``wait_applied`` waits for."""
        with self._cond:
            self._seen += 1
            self._full_wanted = True
            self._retry_at = 0.0
            self._cond.notify_all()
            return self._seen

    def wait_applied(self, ticket: int, timeout: float) -> bool:
        """Wait until everything up to ``ticket`` is committed; False on timeout or when updates fail."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._applied < ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set() or self._gone_since is not None or \
                        (self._failures and self._busy is None):
                    return False
                self._cond.wait(min(remaining, TICK_S))
            return True

    def wait_fresh(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) until every change seen so far is committed; whether it is."""
        with self._cond:
            ticket = self._seen
        return self.wait_applied(ticket, timeout)

    @property
    def gone_since(self) -> str | None:
        return self._gone_since

    @property
    def busy(self) -> str | None:
        """What runs now: ``scoped`` or ``full`` (an update), ``prepare`` or ``compact`` (housekeeping)."""
        return self._busy

    def status(self) -> dict[str, Any]:
        """The loop's state: what it watches, what is pending, what it did last (JSON-ready)."""
        with self._cond:
            error = self.last_error
            return {
                "watching": self._watch and self._watch_error is None and self._gone_since is None,
                "watch_error": self._watch_error, "tree_gone_since": self._gone_since,
                "pending_paths": len(self._pending), "full_pass_pending": self._full_wanted,
                "updating": self._busy if self._busy in ("scoped", "full") else None,
                "housekeeping": self._busy if self._busy in ("prepare", "compact") else None,
                "phase": self._phase, "fresh": self._applied >= self._seen,
                "updates": self.updates, "last_update_at": self.last_update_at, "last_full_pass_at": self.last_full_at,
                "last_update": _summary(self.last_report), "started_at": self.started_at,
                "last_error": None if error is None else " ".join(error_lines(error)),
            }


def _summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    keys = ("kind", "wall_s", "files_seen", "files_added", "files_modified", "files_deleted", "files_moved",
            "chunks_total", "chunks_embedded", "chunks_reused")
    return {k: report[k] for k in keys if k in report}
