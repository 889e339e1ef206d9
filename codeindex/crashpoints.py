"""Named points where a test may kill or pause the writer.

Used only by the crash-safety tests:

* ``CODEINDEX_CRASH_AT=name``: the process SIGKILLs itself at the named point, exactly like a power
  cut or an OOM kill, so the test can prove the index is still the old or the new state.
* ``CODEINDEX_PAUSE_AT=name:seconds``: the process sleeps there instead, so a test can run a second
  writer or searches while the first one is provably mid-run (holding the lock, or the database).

Both are read from the environment at each hit (cheap: one dict lookup) so nothing needs wiring.
"""

from __future__ import annotations

import os
import signal
import time

POINTS = ("before-pipeline", "between-files", "mid-segment-write", "after-pipeline", "after-segments",
          "mid-commit", "mid-commit-inserted", "before-db-commit", "after-db-commit", "before-swap", "after-swap",
          "after-commit")
"""In the order a run reaches them. ``between-files``: a second batch of vectors arrives after the
first was written (hit from ``SegmentWriter.add``); ``mid-segment-write``: a segment's temp file is
written and fsynced but not yet renamed; ``after-swap``: a rebuild's new database was renamed into
place but the old database's WAL not yet removed; ``after-db-commit``: COMMIT done, connection not
closed (the commit may be only in the WAL)."""

PAUSE_POINTS = ("cluster-start",)
"""Reached only on some paths, so only paused at, never in the crash tests' sweep: ``cluster-start`` is
inside ``engine/executor.py: signals_deferred``, just before a local cluster is created."""


_paused: set[str] = set()


def hit(name: str) -> None:
    """Kill or pause the process here if the environment asks for this point."""
    if os.environ.get("CODEINDEX_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    pause = os.environ.get("CODEINDEX_PAUSE_AT")
    if pause:
        point, _, seconds = pause.partition(":")
        if point == name and name not in _paused:
            _paused.add(name)  # once per process: a test knows exactly where the writer waits
            marker = os.environ.get("CODEINDEX_PAUSE_MARKER")
            if marker:
                with open(marker, "w") as fh:
                    fh.write(str(os.getpid()))
            time.sleep(float(seconds or "1"))
