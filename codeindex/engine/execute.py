"""Execute a plan that changes something: executor, pipeline, checkpoints, sealed segments, commit, clean-up.

The heavy half of a run (pyarrow, the executor, the pipeline); ``engine/run.py`` decides whether it is
needed at all. The commit itself is ``engine/commit.py``, the checkpoints ``engine/checkpoint.py``.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Callable

import pyarrow as pa

from codeindex import crashpoints
from codeindex.changes.read import read_source
from codeindex.engine.checkpoint import Checkpointer, CheckpointPolicy
from codeindex.engine.commit import Commit
from codeindex.engine.context import RunContext
from codeindex.engine.executor import local_worker_settings, make_executor, usable_gpu_devices
from codeindex.engine.pipeline import Pipeline
from codeindex.engine.report import RunReport
from codeindex.engine.reuse import reuse_inputs, stored_texts
from codeindex.engine.target import has_pending
from codeindex.engine.tasks import EmbedContext
from codeindex.errors import CorruptIndexError, Interrupted
from codeindex.hookspecs import EmbedderBackend
from codeindex.languages import LanguageMap
from codeindex.plugins import get_plugin_manager
from codeindex.progress import ProgressEvent, RunProgress
from codeindex.store import db as dbm
from codeindex.store.build import kept_segment_files, listed_segments
from codeindex.store.compaction import compact
from codeindex.store.layout import BUILD_DB_NAME
from codeindex.store.segments import SegmentInfo, SegmentWriter, next_free_segment, remove_orphans


class Execution:
    """One run's pipeline, checkpoints and final commit over ``ctx``."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self._lang_map = LanguageMap.from_parsers(get_plugin_manager().parsers())

    def run(self, scheduler: str) -> RunReport:
        index_dir = self.ctx.layout.index_dir
        index_dir.mkdir(exist_ok=True)  # the writer lock made it; not its parents (a tree moved mid-run)
        crashpoints.hit("before-pipeline")
        commit = Commit(self.ctx)
        if self.ctx.kind == "update" and self.ctx.plan.is_noop() and not has_pending(self.ctx.state):
            return commit.stat_only()
        self.ctx.layout.clean_staging()  # leftovers of a crashed run
        self._remove_orphans_of_committed_state()
        staging = self.ctx.layout.new_staging_dir()
        meta = self.ctx.state.meta
        # never reuse a segment number a file in the folder has (the other database's, a damaged index's)
        meta["next_segment"] = str(max(int(meta.get("next_segment", "0")), next_free_segment(index_dir)))
        adopted = self._adopted_segments()
        writer = SegmentWriter(index_dir, self.ctx.choice.dim, int(meta["next_segment"]),
                               max_vectors=self.config["store.segment_max_vectors"],
                               ann_min_vectors=self.config["store.ann_min_vectors"],
                               bulk=self.ctx.kind == "rebuild")
        items = [(p, self.ctx.files[p].language, self._parser_name(p), self.ctx.leaves[p])
                 for p in self.ctx.plan.to_parse]
        work = planned_work(self.ctx, items)
        self.ctx.progress(work.event(time.perf_counter(), "starting"))  # before the cluster starts: seconds
        settings = self.ctx.choice.settings
        executor = make_executor(scheduler, n_dirty=len(items),
                                 small_threshold=self.config["engine.small_update_files"],
                                 workers=self.config["engine.workers"],
                                 gpu_devices=lambda: usable_gpu_devices(self._embedder_backend(), settings))
        commit.scheduler = executor.name
        settings = local_worker_settings(settings, executor)
        choice = self.ctx.choice
        embed_ctx = EmbedContext(choice.backend, settings, min(self.config["chunking.max_tokens"], choice.max_tokens),
                                 choice.key_prefix)
        policy = CheckpointPolicy.from_config(self.config, first_build=self.ctx.target.fresh
                                              and self.ctx.target.first_build)
        final: list[SegmentInfo] = []
        published = -1
        try:
            known, carried, resumed = reuse_inputs(self.ctx, len(items))
            checkpoints = (Checkpointer(policy, writer, commit, self.ctx.progress, started=self.ctx.started)
                           if policy.enabled else None)
            pipeline = Pipeline(root=self.ctx.layout.root, executor=executor, ctx=embed_ctx, staging=staging,
                                segments=writer, read_file=self._reader(),
                                known_keys=known, next_chunk_id=int(meta.get("next_chunk_id", "0")),
                                next_vec_id=int(meta.get("next_vec_id", "0")),
                                parse_batch_files=self.config["engine.parse_batch_files"],
                                max_in_flight=self.config["engine.max_in_flight"], progress=self.ctx.progress,
                                checkpoint=checkpoints, run_progress=work, resumed=resumed,
                                stored_texts=functools.partial(stored_texts, self.ctx.reads))
            result = pipeline.run(items, carried)
            del pipeline, known, carried, resumed  # the run's key maps and queues are not needed to commit
            executor.close()  # workers hold hundreds of MB: release them before the ANN build and the commit
            if len(items) > self.config["engine.small_update_files"]:  # a small update has little to free;
                release_free_memory()  # its full gc would cost ~0.08 s of a one-file edit
            crashpoints.hit("after-pipeline")
            segments = writer.consolidate(adopted)
            final = writer.hand_over()  # listed by the commit below: from here on never deleted by this run
            crashpoints.hit("after-segments")
            self.ctx.progress(ProgressEvent("commit"))
            published = commit.published
            report = commit.commit(result, segments, executor.name)
        except (KeyboardInterrupt, Interrupted) as exc:
            writer.abort()
            executor.close(fast=True)  # workers mid-batch: stop them rather than wait for them
            if commit.committed:
                raise
            raise interrupted(self.ctx, commit) from (None if isinstance(exc, KeyboardInterrupt) else exc)
        except BaseException as exc:
            writer.abort()  # only segments no commit was handed: checkpoints keep theirs
            if isinstance(exc, Exception) and commit.published == published:  # the final commit failed before
                writer.discard(final)  # its state was listed anywhere
            raise
        finally:
            executor.close()
            shutil.rmtree(staging, ignore_errors=True)
        crashpoints.hit("after-commit")
        self._after_commit(commit)
        self.ctx.progress(ProgressEvent("done", detail=report.as_dict()))
        return report

    def _adopted_segments(self) -> list[SegmentInfo]:
        """A resumed build's segments, committed by the runs before it: merged with its own at the end."""
        if not self.ctx.target.resumed or self.ctx.kind != "rebuild":
            return []
        rows = self.ctx.reads.con().execute(
            "SELECT segment, file, n_vectors, index_type, n_bytes, checksum FROM segments ORDER BY segment").fetchall()
        return [SegmentInfo(int(n), str(f), int(v), str(t), int(b), str(c)) for n, f, v, t, b, c in rows]

    def _reader(self) -> Callable[[str], bytes]:
        """The pipeline's one read of a file to parse: checked as ``changes/read.py`` says."""
        root, files, cap = os.fspath(self.ctx.layout.root), self.ctx.files, self.config["discovery.max_file_bytes"]
        return lambda path: read_source(root, files[path], cap)

    def _embedder_backend(self) -> EmbedderBackend:
        return get_plugin_manager().embedder_backend(self.ctx.choice.backend)

    def _parser_name(self, path: str) -> str:
        return self._lang_map.parser_for(self.ctx.files[path].language) or ""

    # ------------------------------------------------------------------ around the commit

    def _remove_orphans_of_committed_state(self) -> None:
        layout = self.ctx.layout
        known: dict[str, set[str]] = {}
        if self.ctx.target.db_path.exists():
            try:
                known[self.ctx.target.db_path.name] = listed_segments(self.ctx.reads.con())
            except CorruptIndexError:
                return  # a rebuild over a damaged index: the swap replaces it, orphans go after the commit
        kept = kept_segment_files(layout.index_dir, known=known)
        if kept is not None:
            remove_orphans(layout.index_dir, kept)
        for db_name in (dbm.DB_NAME, BUILD_DB_NAME):  # half-created databases of a killed first commit
            for stale in (db_name + ".new", db_name + ".new.wal"):
                (layout.index_dir / stale).unlink(missing_ok=True)

    def _after_commit(self, commit: Commit) -> None:
        index_dir = self.ctx.layout.index_dir
        name = dbm.DB_NAME if self.ctx.target.swap else self.ctx.target.db_path.name
        kept = kept_segment_files(index_dir, known={name: commit.live_segment_files})
        if kept is not None:
            remove_orphans(index_dir, kept)
        if commit.compaction_due:
            self.ctx.progress(ProgressEvent("compact"))
            compact(index_dir, self.config)


def interrupted(ctx: RunContext, commit: Commit) -> Interrupted:
    """What a Ctrl-C (or SIGTERM) kept: the previous state, or the run's last checkpoint."""
    if not commit.checkpoints:
        return Interrupted("interrupted; the index was left in its previous state")
    c = commit.coverage
    kept = (f"{c.get('files', 0):,} files, {c.get('chunks', 0):,} chunks, "
            f"embedded {c.get('chunks_embedded', 0):,} of {c.get('chunks', 0):,}")
    if ctx.target.swap:
        return Interrupted(f"interrupted; the previous index still serves, and the rebuild kept its last "
                           f"checkpoint ({kept})", hint="run `codeindex rebuild` to resume it")
    return Interrupted(f"interrupted; kept the last checkpoint ({kept})",
                       hint="run `codeindex update` to finish: committed files and vectors are not redone")


def planned_work(ctx: RunContext, items: list[tuple[str, str, str, str]]) -> RunProgress:
    """The run's planned work before parsing: bytes to parse, priced from what the index recorded."""
    plan = RunProgress(bytes_total=sum(ctx.files[p].stat.size for p, *_ in items))
    indexed = [r for r in ctx.state.snapshot.values() if r.skip_reason is None and r.n_chunks]
    if ctx.state.runs_throughput:
        tokens_per_s, tokens_per_chunk = ctx.state.runs_throughput
        plan.prior_tokens_per_s = tokens_per_s
        size = sum(r.stat.size for r in indexed)
        if size:
            plan.texts_per_byte = sum(r.n_chunks for r in indexed) / size
            plan.tokens_per_byte = plan.texts_per_byte * tokens_per_chunk
    return plan


def release_free_memory() -> None:
    """Hand memory freed by the pipeline back to the OS before the ANN build and the bulk commit.

    The pipeline's Arrow tables, key maps and vector batches are freed by then, but glibc's allocator
    and Arrow's pool keep freed pages for reuse; the commit that follows allocates in DuckDB, which
    cannot reuse them, so they would only add to the run's peak.
    """
    import contextlib
    import ctypes
    import gc

    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
