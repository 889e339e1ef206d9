"""What a pipeline run produced: per-file outcomes, staged parts, new vectors, counters, stage times.

Kept apart from ``pipeline`` (which imports dask and pyarrow) so that recording a no-op run stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from codeindex.store.checksums import Fingerprint

KEEPS_PREVIOUS = frozenset({"unreadable", "not-regular", "too-large", "changed-type"})
"""Skip reasons of a file the pipeline could not read as discovered (``changes/read.py``): its committed
state stays as it was, and the next run looks at it again."""


@dataclass(slots=True)
class FileOutcome:
    path: str
    parser_id: str
    n_chunks: int
    skip_reason: str | None
    content_hash: str = ""
    """The blake3 of the bytes that were parsed (the scan's hash when nothing changed in between)."""
    changed_since_scan: bool = False
    """The bytes parsed differ from those the scan hashed: store their hash, hash the file again next run."""
    redactions: list[tuple[int, str, str]] = field(default_factory=list)
    """Secrets masked before parsing: (line, kind, variable name)."""

    @property
    def keeps_previous(self) -> bool:
        """Not read as discovered: the committed state of the file is left as it was."""
        return self.skip_reason is not None and self.skip_reason.split(":", 1)[0] in KEEPS_PREVIOUS


@dataclass(slots=True)
class StageTimes:
    read: float = 0.0
    parse: float = 0.0
    embed: float = 0.0
    write: float = 0.0
    wall: float = 0.0

    def as_dict(self) -> dict[str, float]:
        busy = self.read + self.parse + self.embed + self.write
        return {"read_s": round(self.read, 4), "parse_s": round(self.parse, 4), "embed_s": round(self.embed, 4),
                "write_s": round(self.write, 4), "busy_s": round(busy, 4), "wall_s": round(self.wall, 4),
                "overlap_saved_s": round(max(0.0, busy - self.wall), 4)}


@dataclass(slots=True)
class StagedWork:
    """What the pipeline staged since the last checkpoint: exactly what the next commit writes.

    Every file whose outcome is here has all its chunk rows in ``chunk_parts`` (and its definitions in
    ``symbol_parts``, its masked secrets in its outcome's ``redactions``); every vector key those
    chunks use for the first time is in ``new_keys`` (its row is written with the chunks, pending until
    its vector is embedded); ``embedded`` are the vectors embedded since the last checkpoint, sealed in
    segments the same commit lists.
    """

    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    chunk_parts: list[Path] = field(default_factory=list)
    postings_parts: list[Path] = field(default_factory=list)
    staged: dict[Path, Fingerprint] = field(default_factory=dict)  # each staged part's size and checksum
    symbol_parts: list[Path] = field(default_factory=list)  # staged ``symbols`` rows of the parsed files
    new_keys: dict[str, int] = field(default_factory=dict)  # key -> vec_id
    embedded: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (vec_id, segment)
    carried: bool = False
    """The chunk rows of moved files (and of a model switch) are among ``chunk_parts``."""

    def is_empty(self) -> bool:
        return not (self.outcomes or self.chunk_parts or self.symbol_parts or self.new_keys or self.embedded
                    or self.carried)


@dataclass(slots=True)
class PipelineResult:
    """A run's cumulative counters; ``work`` is the part not yet committed."""

    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    """Every file the run parsed (or found unreadable), committed or not."""
    work: StagedWork = field(default_factory=StagedWork)
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    tokens_embedded: int = 0
    devices: set[str] = field(default_factory=set)
    embed_s_by_worker: dict[str, float] = field(default_factory=dict)  # where embed tasks ran, busy seconds
    times: StageTimes = field(default_factory=StageTimes)
    next_chunk_id: int = 0
    next_vec_id: int = 0
    checkpoints: int = 0
    texts_read_back: int = 0
    """Texts embedded after their chunks were committed: read back from the database, not held meanwhile."""
