"""What one run knows before its pipeline starts, handed to the run, the reuse step and the commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from codeindex.changes.plan import IndexState, UpdatePlan
from codeindex.config import Config
from codeindex.embedders.choice import EmbedderChoice
from codeindex.models import SourceFile
from codeindex.progress import ProgressCallback
from codeindex.store.layout import IndexLayout
from codeindex.store.session import ReadSession


@dataclass(slots=True)
class RunContext:
    layout: IndexLayout
    config: Config
    kind: str
    """``rebuild`` (a fresh database swapped in at the end) or ``update`` (one transaction on the live one)."""
    choice: EmbedderChoice
    plan: UpdatePlan
    files: dict[str, SourceFile]
    """What discovery found, by path."""
    leaves: dict[str, str]
    """The new Merkle leaves (path -> content hash)."""
    state: IndexState
    """The committed snapshot the run started from, read under the writer lock this run holds."""
    snapshot_time_ns: int
    started_at: datetime
    started: float
    progress: ProgressCallback
    reads: ReadSession
    """The run's one read session on the committed database (closed before the commit)."""
    warnings: list[str] = field(default_factory=list)
