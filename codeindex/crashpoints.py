"""Named points where a test may kill or pause the writer.

Used only by the crash-safety tests:

* ``CODEINDEX_CRASH_AT=name``: the process SIGKILLs itself at the named point, exactly like a power
  cut or an OOM kill, so the test can prove the index is still a consistent state.
  ``name#N`` kills at the point's N-th hit (a run that checkpoints reaches some points many times).
* ``CODEINDEX_PAUSE_AT=name:seconds``: the process sleeps there instead, so a test can run a second
  writer or searches while the first one is provably mid-run (holding the lock, or the database).

Both are read from the environment at each hit (cheap: one dict lookup) so nothing needs wiring.
"""

from __future__ import annotations

import os
import signal
import time

CHECKPOINT_POINTS = ("checkpoint-sealed", "checkpoint-mid-commit", "checkpoint-mid-commit-inserted",
                     "checkpoint-before-db-commit", "checkpoint-after-db-commit", "after-checkpoint")
"""Reached only by a run that checkpoints (``engine/checkpoint.py``), once per checkpoint, in this order:
its segments sealed but not listed; inside its transaction (old chunk rows deleted; everything
inserted; before COMMIT); COMMIT done, connection open; the checkpoint complete, the pipeline going on."""

POINTS = ("before-pipeline", "between-files", "mid-segment-write", *CHECKPOINT_POINTS, "after-pipeline",
          "after-segments", "mid-commit", "mid-commit-inserted", "before-db-commit", "after-db-commit", "before-swap",
          "after-swap", "after-commit")
"""In the order a run reaches them. ``between-files``: a second batch of vectors arrives after the
first was written (hit from ``SegmentWriter.add``); ``mid-segment-write``: a segment's temp file is
written and fsynced but not yet renamed; ``after-swap``: a rebuild's new database was renamed into
place but the old database's WAL not yet removed; ``after-db-commit``: COMMIT done, connection not
closed (the commit may be only in the WAL). The final commit's points (``mid-commit`` to
``after-db-commit``) are reached once per run; the others may be reached many times."""

PAUSE_POINTS = ("cluster-start",)
"""Reached only on some paths, so only paused at, never in the crash tests' sweep: ``cluster-start`` is
inside ``engine/executor.py: signals_deferred``, just before a local cluster is created."""


_paused: set[str] = set()
_hits: dict[str, int] = {}


def hit(name: str) -> None:
    """Kill or pause the process here if the environment asks for this point."""
    crash = os.environ.get("CODEINDEX_CRASH_AT")
    if crash:
        point, _, nth = crash.partition("#")
        if point == name:
            _hits[name] = _hits.get(name, 0) + 1
            if _hits[name] >= int(nth or "1"):
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
