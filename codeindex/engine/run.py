"""The entry of every write (``rebuild``, ``update``): plan, then record a no-op or execute the plan.

Called with the writer lock held. Light on purpose: a no-op ``update`` records its run with plain SQL
and never imports pyarrow, dask or a model runtime; anything else hands over to ``engine/execute.py``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from codeindex.changes.plan import IndexState, make_plan, read_state
from codeindex.config import Config
from codeindex.embedders.choice import choose_embedder
from codeindex.engine.context import RunContext
from codeindex.engine.report import RunReport, build_report, write_run
from codeindex.engine.results import PipelineResult
from codeindex.engine.target import Target, rebuild_target, update_target
from codeindex.plugins import get_plugin_manager
from codeindex.progress import ProgressCallback, ProgressEvent
from codeindex.store import db as dbm
from codeindex.store.layout import IndexLayout
from codeindex.store.session import ReadSession


def run(layout: IndexLayout, config: Config, kind: str, *, progress: ProgressCallback, scheduler: str | None,
        embedder: str | None, warnings: list[str]) -> RunReport:
    """Run a ``rebuild`` or an ``update`` of ``layout`` and return what it did."""
    started = time.perf_counter()
    if kind == "rebuild":
        target = rebuild_target(layout, choose_embedder(config, None, embedder))
    else:
        target = update_target(layout)
    with ReadSession(target.db_path) as reads:  # the run's one read session; closed before each commit
        return _plan_and_run(layout, config, kind, target, reads, progress, scheduler, embedder, warnings, started)


def _plan_and_run(layout: IndexLayout, config: Config, kind: str, target: Target, reads: ReadSession,
                  progress: ProgressCallback, scheduler: str | None, embedder: str | None, warnings: list[str],
                  started: float) -> RunReport:
    started_at = datetime.now(UTC).replace(tzinfo=None)
    snapshot_time_ns = time.time_ns()
    manager = get_plugin_manager()
    warnings = [*warnings, *manager.warnings]
    for w in manager.warnings:
        progress(ProgressEvent("warning", detail={"message": w}))
    state = IndexState() if target.fresh else read_state(layout, reads, require=False)
    if target.resumed:
        message = f"resuming the unfinished {kind} in {target.db_path.name}: finished files and vectors are kept"
        warnings.append(message)
        progress(ProgressEvent("warning", detail={"message": message}))
    choice = choose_embedder(config, state.meta if kind == "update" else None, embedder)
    plan, found, new_leaves = make_plan(layout, config, state, choice, progress)
    if plan.model_change:
        message = f"embedding model changed ({plan.model_change}): re-embedding every chunk, no re-parsing"
        warnings.append(message)
        progress(ProgressEvent("warning", detail={"message": message}))
    ctx = RunContext(layout=layout, config=config, kind=kind, target=target, choice=choice, plan=plan,
                     files={f.path: f for f in found.files}, leaves=new_leaves, state=state,
                     snapshot_time_ns=snapshot_time_ns, started_at=started_at, started=started, progress=progress,
                     reads=reads, warnings=warnings)
    if kind == "update" and plan.is_noop() and not plan.stat_only and not _has_pending(state):
        return _record_noop(ctx)
    from codeindex.engine.execute import Execution

    return Execution(ctx).run(scheduler or config["engine.scheduler"])


def _has_pending(state: IndexState) -> bool:
    """A killed run committed chunks whose vectors it did not finish: an update with no change embeds them."""
    return state.meta.get("vectors_pending", "0") != "0" or bool(state.meta.get("build_in_progress"))


def _record_noop(ctx: RunContext) -> RunReport:
    """Nothing changed: record the run (0 chunks embedded) and advance the snapshot time. No Arrow, no Dask."""
    report = build_report("update", ctx.choice, ctx.plan, PipelineResult(), "none", ctx.started, ctx.warnings)
    ctx.reads.close()
    with dbm.open_db(ctx.layout.db_path, read_only=False) as con:
        con.execute("BEGIN")
        write_run(con, report, ctx.started_at, ctx.started)
        dbm.set_meta(con, {"snapshot_time_ns": str(ctx.snapshot_time_ns),
                           "discovery_skipped": json.dumps(ctx.plan.skipped)})
        con.execute("COMMIT")
    ctx.progress(ProgressEvent("done", detail=report.as_dict()))
    return report
