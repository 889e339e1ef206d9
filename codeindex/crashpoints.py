"""Named points where a test may kill the writer (``CODEINDEX_CRASH_AT=name``).

Used only by the crash-safety tests: the process SIGKILLs itself at the named point, exactly like a
power cut or an OOM kill, so the test can prove the index is still the old or the new state.
"""

from __future__ import annotations

import os
import signal

POINTS = ("before-pipeline", "after-pipeline", "after-segments", "mid-commit", "mid-commit-inserted",
          "before-db-commit", "before-swap", "after-commit", "mid-segment-write")


def hit(name: str) -> None:
    if os.environ.get("CODEINDEX_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
