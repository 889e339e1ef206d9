"""The entry of every write (``rebuild``, ``update``): plan, then record a no-op or execute the plan.

Called with the writer lock held. Light on purpose: a no-op ``update`` records its run with plain SQL
and never imports pyarrow, dask or a model runtime; anything else hands over to ``engine/execute.py``.
An update scoped to some paths (``paths=``, what a file watcher saw change) that finds nothing to do
writes nothing at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from codeindex.changes.plan import IndexState, make_plan, read_state, still_current
from codeindex.config import Config
from codeindex.embedders.choice import choose_embedder
from codeindex.engine.context import RunContext
from codeindex.engine.report import RunReport, build_report, write_run
from codeindex.engine.results import PipelineResult
from codeindex.errors import CodeIndexError, Interrupted
from codeindex.plugins import get_plugin_manager
from codeindex.progress import ProgressCallback, ProgressEvent
from codeindex.store import db as dbm
from codeindex.store.layout import IndexLayout
from codeindex.store.lock import ensure_still_held
from codeindex.store.session import ReadSession

if TYPE_CHECKING:
    from codeindex.engine.repair import RepairOutcome


def run(layout: IndexLayout, config: Config, kind: str, *, progress: ProgressCallback, scheduler: str | None,
        embedder: str | None, warnings: list[str], paths: Collection[str] | None = None,
        prepared: IndexState | None = None, repair: bool = False, retry_failed: bool = False) -> RunReport:
    """Run a ``rebuild`` or an ``update`` of ``layout`` and return what it did.

    ``paths`` scopes an update to those root-relative paths (``changes.plan.make_plan``). ``prepared``:
    the committed state read earlier (``Index.prepare_update``), used if nothing was committed since.
    An update first mends the damage ``store/integrity.py`` finds (its quick check, or with ``repair``
    the full one of ``codeindex verify``); ``retry_failed`` parses again every file whose parse failed.
    """
    try:
        with ReadSession(layout.db_path) as reads:  # the run's one read session; closed before any commit
            return _plan_and_run(layout, config, kind, reads, progress, scheduler, embedder, warnings, paths,
                                 prepared, repair=repair, retry_failed=retry_failed)
    except (CodeIndexError, OSError) as exc:
        if not isinstance(exc, Interrupted):
            layout.check_root()  # a tree moved away mid-run explains whatever failed: say that
        raise


def _plan_and_run(layout: IndexLayout, config: Config, kind: str, reads: ReadSession, progress: ProgressCallback,
                  scheduler: str | None, embedder: str | None, warnings: list[str], paths: Collection[str] | None,
                  prepared: IndexState | None, *, repair: bool, retry_failed: bool) -> RunReport:
    started = time.perf_counter()
    started_at = datetime.now(UTC).replace(tzinfo=None)
    snapshot_time_ns = time.time_ns()
    manager = get_plugin_manager()
    warnings = [*warnings, *manager.warnings]
    for w in manager.warnings:
        progress(ProgressEvent("warning", detail={"message": w}))
    if kind != "update":
        state = IndexState()
    elif still_current(prepared, layout):
        assert prepared is not None
        state = prepared
    else:
        state = read_state(layout, reads, require=False)
    mended = None
    if kind == "update" and state.integrity is not None:
        state, mended = _mend(layout, config, state, reads, full=repair, progress=progress)
    if kind == "rebuild":  # never reuse a segment number the old (possibly damaged) index may list
        from codeindex.store.segments import next_free_segment

        state.meta = {"next_segment": str(next_free_segment(layout.index_dir))}
    choice = choose_embedder(config, state.meta if kind == "update" else None, embedder)
    plan, found, new_leaves = make_plan(layout, config, state, choice, progress, retry_failed=retry_failed,
                                        paths=paths if kind == "update" and not mended else None)
    if plan.scoped:
        # The stored stats of files outside the scope were taken before the previous snapshot time, not
        # this one: keeping that time keeps the racy-window rule (changes/scan.py) true of every file.
        snapshot_time_ns = int(state.meta.get("snapshot_time_ns", "0"))
    if plan.model_change:
        message = f"embedding model changed ({plan.model_change}): re-embedding every chunk, no re-parsing"
        warnings.append(message)
        progress(ProgressEvent("warning", detail={"message": message}))
    ctx = RunContext(layout=layout, config=config, kind=kind, choice=choice, plan=plan,
                     files={f.path: f for f in found.files}, leaves=new_leaves, state=state,
                     snapshot_time_ns=snapshot_time_ns, started_at=started_at, started=started, progress=progress,
                     reads=reads, warnings=warnings)
    if kind == "update" and plan.is_noop() and not plan.stat_only:
        report = _report_scoped_noop(ctx) if plan.scoped else _record_noop(ctx)
    else:
        from codeindex.engine.execute import Execution

        report = Execution(ctx).run(scheduler or config["engine.scheduler"])
    if mended is not None:
        report.repairs, report.vectors_repaired = mended.done, mended.reembedded
    return report


def _mend(layout: IndexLayout, config: Config, state: IndexState, reads: ReadSession, *, full: bool,
          progress: ProgressCallback) -> tuple[IndexState, RepairOutcome | None]:
    """Repair what the integrity check finds before planning; the state read again if anything changed.

    The run's read session is closed first: the checks and the repair open the database themselves
    (the repair to write it), and the session reopens on the next read."""
    from codeindex.store.integrity import quick_check

    assert state.integrity is not None
    if not full and not state.damage:
        problems, restat = quick_check(layout.index_dir, state.integrity)
        if not problems and not restat:
            return state, None  # the common case: a stat and a 4-byte read per segment, two aggregates
    from codeindex.engine.repair import find_damage, repair

    reads.close()
    problems, restat = find_damage(layout, state, full=full)
    if not problems and not restat:
        return state, None
    outcome = repair(layout, config, state, problems, restat, progress)
    return read_state(layout, reads, require=False), outcome


def _record_noop(ctx: RunContext) -> RunReport:
    """Nothing changed: record the run (0 chunks embedded) and advance the snapshot time. No Arrow, no Dask."""
    report = build_report("update", ctx.choice, ctx.plan, PipelineResult(), "none", ctx.started, ctx.warnings)
    ensure_still_held(ctx.layout.index_dir)
    ctx.layout.check_root()
    ctx.reads.close()
    with dbm.open_db(ctx.layout.db_path, read_only=False) as con:
        con.execute("BEGIN")
        write_run(con, report, ctx.started_at, ctx.started)
        dbm.set_meta(con, {"snapshot_time_ns": str(ctx.snapshot_time_ns),
                           "discovery_skipped": json.dumps(ctx.plan.skipped)})
        con.execute("COMMIT")
    ctx.progress(ProgressEvent("done", detail=report.as_dict()))
    return report


def _report_scoped_noop(ctx: RunContext) -> RunReport:
    """A scoped update with nothing to do (say, a watcher saw an ignored file change): no database write."""
    report = build_report("update", ctx.choice, ctx.plan, PipelineResult(), "none", ctx.started, ctx.warnings)
    report.wall_s = round(time.perf_counter() - ctx.started, 4)
    report.chunks_total = sum(row.n_chunks for row in ctx.state.snapshot.values())
    ctx.progress(ProgressEvent("done", detail=report.as_dict()))
    return report
