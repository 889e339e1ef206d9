"""Run records: the ``RunReport`` of a run and its row in the ``runs`` table.

Light on purpose (no pyarrow, no dask): a no-op ``update`` records its run through here.

File counts have one definition, shared with ``codeindex status`` (``store/status.py: file_counts``):
``seen`` is every entry the walk met (a skipped directory counts once: nothing below it is looked at),
``indexed`` the files the committed index holds, ``skipped`` the rest (seen = indexed + skipped), by
reason. They are counted inside the commit transaction, from the state it commits.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from codeindex.changes.plan import UpdatePlan
from codeindex.changes.read import READ_SKIPS
from codeindex.embedders.choice import EmbedderChoice
from codeindex.engine.results import PipelineResult
from codeindex.store import db as dbm
from codeindex.store.status import file_counts


@dataclass(slots=True)
class RunReport:
    """What a run did; the same figures are stored in the ``runs`` table."""

    run_id: int
    kind: str
    wall_s: float
    scheduler: str
    embedder: str
    model_id: str
    files_seen: int
    files_added: int
    files_modified: int
    files_deleted: int
    files_moved: int
    files_reparsed: int
    files_skipped: int
    files_unreadable: int
    chunks_total: int
    chunks_written: int
    chunks_embedded: int
    chunks_reused: int
    tokens_embedded: int
    stages: dict[str, Any]
    skipped: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    """What ``update`` mended before its run (``engine/repair.py``), one sentence each."""
    vectors_repaired: int = 0
    """Lost vectors the repair re-embedded from the stored chunk texts."""
    files_indexed: int = 0
    changes: dict[str, list[Any]] = field(default_factory=dict)
    """The paths this run changed: ``added``, ``modified``, ``deleted``, ``reparsed`` (lists of paths),
    ``moved`` (``[old, new]`` pairs) and ``skipped`` (``[path, reason]`` for files read this run but not
    indexed: binary content, parse errors, unreadable)."""
    secrets_redacted: int = 0
    """Secrets masked in the files this run parsed (``secrets.redact``); what and where is in ``redactions``."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COUNTERS = ("files_seen", "files_added", "files_modified", "files_deleted", "files_moved", "files_reparsed",
            "files_skipped", "files_unreadable", "chunks_total", "chunks_written", "chunks_embedded",
            "chunks_reused", "tokens_embedded", "secrets_redacted")


def build_report(kind: str, choice: EmbedderChoice, plan: UpdatePlan, result: PipelineResult, scheduler: str,
                 started: float, warnings: list[str]) -> RunReport:
    skipped = dict(plan.skipped)  # discovery's; write_run adds what the committed state skipped
    for reason in plan.unreadable.values():  # the scan's refusals count under their reason (changes/read.py)
        key = reason if reason in READ_SKIPS else "unreadable"
        skipped[key] = skipped.get(key, 0) + 1
    for outcome in result.outcomes.values():  # refused when the pipeline read it: no row of this run says so
        if outcome.keeps_previous and outcome.skip_reason:
            key = outcome.skip_reason.split(":", 1)[0]
            skipped[key] = skipped.get(key, 0) + 1
    unreadable = len(plan.unreadable) + sum(1 for o in result.outcomes.values() if o.keeps_previous)
    changes: dict[str, list[Any]] = {
        "added": list(plan.added), "modified": list(plan.modified), "deleted": list(plan.deleted),
        "moved": [list(m) for m in plan.moved], "reparsed": list(plan.reparse),
        "skipped": sorted([path, outcome.skip_reason] for path, outcome in result.outcomes.items()
                          if outcome.skip_reason) + sorted([p, f"unreadable: {why}"]
                                                           for p, why in plan.unreadable.items()),
    }
    stages: dict[str, object] = dict(result.times.as_dict())
    stages["total_s"] = round(time.perf_counter() - started, 4)
    if result.times.embed and result.tokens_embedded:
        stages["tokens_per_s"] = round(result.tokens_embedded / result.times.embed, 1)
    stages["devices"] = sorted(result.devices)
    if result.embed_s_by_worker:
        stages["embed_s_by_worker"] = {w: round(s, 4) for w, s in sorted(result.embed_s_by_worker.items())}
    return RunReport(
        run_id=0, kind=kind, wall_s=0.0, scheduler=scheduler, embedder=choice.backend, model_id=choice.model_id,
        files_seen=plan.files_seen, files_added=len(plan.added), files_modified=len(plan.modified),
        files_deleted=len(plan.deleted), files_moved=len(plan.moved), files_reparsed=len(plan.reparse),
        files_skipped=0, files_unreadable=unreadable, chunks_total=0,
        chunks_written=result.chunks_written, chunks_embedded=result.chunks_embedded,
        chunks_reused=result.chunks_reused, tokens_embedded=result.tokens_embedded, stages=stages,
        skipped=skipped, warnings=list(warnings), changes=changes,
        secrets_redacted=sum(len(o.redactions) for o in result.outcomes.values()))


def write_run(con: duckdb.DuckDBPyConnection, report: RunReport, started_at: datetime, started: float) -> None:
    """Append the run's row; fills in its id, total chunks, file counts (of the state being committed)
    and wall time (measured up to this write)."""
    report.run_id = int(dbm.scalar(con, "SELECT coalesce(max(run_id), 0) + 1 FROM runs"))
    counts = file_counts(con, report.files_seen, report.skipped)
    report.files_indexed, report.files_skipped, report.skipped = counts.indexed, counts.skipped, counts.by_reason
    if not report.chunks_total:
        report.chunks_total = int(dbm.scalar(con, "SELECT count(*) FROM chunks"))
    report.wall_s = round(time.perf_counter() - started, 4)
    report.stages["total_s"] = report.wall_s
    dbm.insert_row(con, "runs", {
        "run_id": report.run_id, "kind": report.kind, "started_at": started_at, "wall_s": report.wall_s,
        "status": "ok", "scheduler": report.scheduler, "embedder": report.embedder, "model_id": report.model_id,
        **{name: getattr(report, name) for name in COUNTERS},
        "stages_json": json.dumps(report.stages), "skipped_json": json.dumps(report.skipped),
    })
