"""Progress events: the library reports, the CLI renders. The library never prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ProgressEvent:
    """``stage`` is one of discover, hash, plan, repair, parse, embed, write, commit, compact, done, warning,
    or ``lock``: waiting for another writer, ``detail`` holding its ``pid``, ``host`` and ``since`` (Unix time)."""

    stage: str
    done: int = 0
    total: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """The default callback: ignore events."""
