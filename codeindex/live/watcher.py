"""Watch a source tree and report which root-relative paths changed, in coalesced batches.

watchfiles (the Rust ``notify`` crate: inotify, FSEvents, ReadDirectoryChangesW) does the waiting in
its own thread, without the GIL. It hands over a batch once the tree has been quiet for
``quiet_ms`` after a change, or ``max_delay_ms`` after the first change of a busy burst, so a
branch switch or a formatter run arrives as one batch, not one per file. Whether a path was added,
modified or deleted does not matter here: the scoped update looks at the disk (a rename arrives as
its two paths, a moved directory as the directory's two paths).

What is dropped early: the index's own folder, and paths inside VCS directories
(``discovery.rescan_scope`` says None), except ``.git/info/exclude``, which asks for a full pass.
The root itself is checked after every batch and every ``tick_s``: a tree moved or removed while
watched is reported once (``gone``), and watching resumes, with a full pass, if it comes back.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from codeindex.changes.discovery import rescan_scope

log = logging.getLogger("codeindex.live")

TICK_S = 1.0
"""How often an idle watcher wakes to check the root and the stop flag (watchfiles' own timeout)."""
RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Back-off between attempts to start a watcher that failed (e.g. the OS ran out of inotify watches)."""


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """What the watcher saw since the last batch."""

    paths: frozenset[str] = frozenset()
    """Root-relative POSIX paths that may have changed."""
    full: bool = False
    """Only a full stat-gated pass can settle it: the watcher (re)started, or a rule for the whole tree changed."""
    gone: bool = False
    """The watched tree was moved or removed (watching resumes, with ``full``, if it comes back)."""
    error: str | None = None
    """The watcher could not run; it retries, and meanwhile only full passes keep the index fresh."""


def _identity(root: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if os.path.isdir(root) else None


class TreeWatcher:
    """Watches ``root`` (absolute, resolved) until stopped, emitting a ``ChangeBatch`` per burst."""

    def __init__(self, root: Path, index_dir: Path, *, quiet_ms: int, max_delay_ms: int) -> None:
        self.root = root
        self.index_dir = index_dir
        self.quiet_ms = max(1, quiet_ms)
        self.max_delay_ms = max(self.quiet_ms, max_delay_ms)
        self._prefix = os.fspath(root).rstrip(os.sep) + os.sep
        self._index_prefix = os.fspath(index_dir).rstrip(os.sep)

    def relative(self, changed: Iterable[str]) -> tuple[set[str], bool]:
        """Root-relative paths worth a look, and whether one of them needs a full pass."""
        out: set[str] = set()
        full = False
        for path in changed:
            if path == self._index_prefix or path.startswith(self._index_prefix + os.sep):
                continue
            if not path.startswith(self._prefix):
                continue  # the root itself: its identity is checked separately
            rel = path[len(self._prefix):].replace(os.sep, "/")
            scope = rescan_scope(rel)
            if scope == "":
                full = True
            elif scope is not None:
                out.add(rel)
        return out, full

    def run(self, emit: Callable[[ChangeBatch], None], stop: threading.Event) -> None:
        """Watch until ``stop`` is set. Never raises: failures are emitted as batches and retried."""
        failures = 0
        started = False
        while not stop.is_set():
            identity = _identity(self.root)
            if identity is None:
                emit(ChangeBatch(gone=True))
                while not stop.is_set() and _identity(self.root) is None:
                    stop.wait(TICK_S)
                continue
            if started:  # a restart: what changed while nobody watched is unknown
                emit(ChangeBatch(full=True))
            started = True
            try:
                self._watch(identity, emit, stop)
                failures = 0
            except Exception as exc:  # the watcher must never take the server down with it
                log.warning("file watcher failed on %s: %s", self.root, exc)
                emit(ChangeBatch(full=True, error=f"file watcher failed: {exc}"))
                stop.wait(RETRY_S[min(failures, len(RETRY_S) - 1)])
                failures += 1

    def _watch(self, identity: tuple[int, int], emit: Callable[[ChangeBatch], None], stop: threading.Event) -> None:
        """One watchfiles session; returns when stopped or when the root is no longer the one watched."""
        import watchfiles

        for changes in watchfiles.watch(self.root, watch_filter=None, debounce=self.max_delay_ms,
                                        step=self.quiet_ms, stop_event=stop, rust_timeout=int(TICK_S * 1000),
                                        yield_on_timeout=True, raise_interrupt=False,
                                        ignore_permission_denied=True):
            if changes:
                paths, full = self.relative(path for _, path in changes)
                if paths or full:
                    emit(ChangeBatch(paths=frozenset(paths), full=full))
            if _identity(self.root) != identity:
                return
