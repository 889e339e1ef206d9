"""Checkpoints: a long run commits its finished work while it runs, so a kill loses little.

Every checkpoint is a true state (``engine/commit.py`` writes it): each file the index lists is
indexed at the content its Merkle row records; files the run has not reached yet are absent (a first
build) or still at their previous content (an update). Chunks are committed as soon as their file is
parsed, so lexical search sees them at once; their vectors join at the checkpoint after they are
embedded (until then the vector row is *pending*: ``segment IS NULL``). A killed run's finished
vectors are content-addressed and committed, so the next run re-embeds none of them.

``CheckpointPolicy`` is the pure decision of when; ``Checkpointer`` seals the segment writer's vectors
and hands the pipeline's staged work to the commit.

A first build's lexical checkpoints come while it parses (every ``lexical_s``, further apart as the run
goes on: ``LEXICAL_SPACING``), whenever the uncommitted text the pipeline holds fills its memory bound,
and once more the moment its parsing ends: the whole tree is then lexically searchable, and from there
on only the vector cadence commits (``every_s``, ``every_chunks``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from codeindex import crashpoints
from codeindex.config import Config
from codeindex.engine.commit import Commit
from codeindex.engine.results import PipelineResult
from codeindex.progress import ProgressCallback, ProgressEvent
from codeindex.store.segments import SegmentWriter

LEXICAL_SPACING = 0.1
"""Timed lexical checkpoints are at least this share of the run's elapsed time apart: a file parsed t
seconds into a build waits about 0.1 t to be searchable, and a build that parses for an hour commits
~60 times on the clock, not 1,200 (every commit has a fixed cost, which grows with the index). Not
the commit's own duration: that grows with what it commits, so the spacing would feed on itself."""


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When a run commits what it has: every ``every_s`` seconds or ``every_chunks`` embedded chunks.

    ``lexical_s`` (a first build only, None otherwise): newly parsed files are committed once they wait
    that long (or ``LEXICAL_SPACING`` of the time elapsed, if longer), and at once when parsing ends,
    so a new index answers lexical searches on them within seconds while it embeds. ``lexical_s = 0``:
    after every batch of parse results (the crash tests' reproducible checkpoints).
    ``every_s <= 0`` turns checkpoints off: one commit at the end.
    """

    every_s: float
    every_chunks: int
    lexical_s: float | None = None

    @classmethod
    def from_config(cls, config: Config, *, first_build: bool) -> CheckpointPolicy:
        return cls(config["engine.checkpoint_s"], config["engine.checkpoint_chunks"],
                   config["engine.lexical_checkpoint_s"] if first_build else None)

    @property
    def enabled(self) -> bool:
        return self.every_s > 0

    def due(self, *, since_last: float, parsed_since: int, embedded_since: int, parsing_done: bool = False,
            memory_full: bool = False, elapsed: float = 0.0) -> bool:
        """Whether to commit now. ``since_last``: seconds since the last checkpoint (or the run's start);
        ``parsed_since``/``embedded_since``: files parsed and vectors embedded since then; ``parsing_done``:
        every file of the run is parsed; ``memory_full``: the pipeline holds as much uncommitted text as it
        should (committed, it is dropped: a lexical checkpoint comes early rather than parsing wait);
        ``elapsed``: seconds since the run started."""
        if not self.enabled or not (parsed_since or embedded_since):
            return False
        if self.lexical_s is not None and parsed_since:
            if parsing_done or memory_full or self.lexical_s <= 0:
                return True
            if since_last >= max(self.lexical_s, LEXICAL_SPACING * elapsed):
                return True
        if since_last >= self.every_s:
            return True
        return self.every_chunks > 0 and embedded_since >= self.every_chunks


class Checkpointer:
    """Commits a pipeline's staged work at the moments ``policy`` names (called from the driver loop)."""

    def __init__(self, policy: CheckpointPolicy, writer: SegmentWriter, commit: Commit,
                 progress: ProgressCallback, *, started: float) -> None:
        """``started``: when the run began (``time.perf_counter``), before planning and the cluster's start-up:
        the first checkpoint counts from there (a first build's then comes with its first parse results)."""
        self.policy = policy
        self.writer = writer
        self.commit = commit
        self.progress = progress
        self.started = started
        self.last = started

    def due(self, result: PipelineResult, now: float, *, parsing_done: bool = False,
            memory_full: bool = False) -> bool:
        work = result.work
        return self.policy.due(since_last=now - self.last, parsed_since=len(work.outcomes) + int(work.carried),
                               embedded_since=len(work.embedded), parsing_done=parsing_done,
                               memory_full=memory_full, elapsed=now - self.started)

    def __call__(self, result: PipelineResult) -> set[str]:
        """Commit ``result.work`` as a checkpoint; returns the vector keys the commit retired."""
        start = time.perf_counter()
        segments = self.writer.checkpoint()
        crashpoints.hit("checkpoint-sealed")
        before = self.commit.published
        try:
            retired = self.commit.checkpoint(result, segments)
        except Exception:  # raised by the commit itself (a full disk, say): its segments are nobody's
            if self.commit.published == before:
                self.writer.discard(segments)
            raise
        crashpoints.hit("after-checkpoint")
        self.last = time.perf_counter()
        self.progress(ProgressEvent("checkpoint", done=result.checkpoints + 1, detail={
            **self.commit.coverage, "seconds": round(self.last - start, 3)}))
        return retired
