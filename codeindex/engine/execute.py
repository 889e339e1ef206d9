"""Execute a plan that changes something: executor, pipeline, sealed segments, commit, clean-up.

The heavy half of a run (pyarrow, the executor, the pipeline); ``engine/run.py`` decides whether it is
needed at all. The commit itself is ``engine/commit.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pyarrow as pa

from codeindex import crashpoints
from codeindex.changes.read import read_source
from codeindex.engine.commit import Commit
from codeindex.engine.context import RunContext
from codeindex.engine.executor import local_worker_settings, make_executor, usable_gpu_devices
from codeindex.engine.pipeline import Pipeline
from codeindex.engine.report import RunReport
from codeindex.engine.reuse import reuse_inputs
from codeindex.engine.tasks import EmbedContext
from codeindex.errors import CorruptIndexError
from codeindex.hookspecs import EmbedderBackend
from codeindex.languages import LanguageMap
from codeindex.plugins import get_plugin_manager
from codeindex.progress import ProgressEvent
from codeindex.store import db as dbm
from codeindex.store.compaction import compact
from codeindex.store.segments import SegmentWriter, remove_orphans


class Execution:
    """One run's pipeline and commit over ``ctx``."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self._lang_map = LanguageMap.from_parsers(get_plugin_manager().parsers())

    def run(self, scheduler: str) -> RunReport:
        index_dir = self.ctx.layout.index_dir
        index_dir.mkdir(exist_ok=True)  # the writer lock made it; not its parents (a tree moved mid-run)
        crashpoints.hit("before-pipeline")
        commit = Commit(self.ctx)
        if self.ctx.kind == "update" and self.ctx.plan.is_noop():
            return commit.stat_only()
        self.ctx.layout.clean_staging()  # leftovers of a crashed run
        self._remove_orphans_of_committed_state()
        staging = self.ctx.layout.new_staging_dir()
        meta = self.ctx.state.meta
        writer = SegmentWriter(index_dir, self.ctx.choice.dim, int(meta.get("next_segment", "0")),
                               max_vectors=self.config["store.segment_max_vectors"],
                               ann_min_vectors=self.config["store.ann_min_vectors"],
                               bulk=self.ctx.kind == "rebuild")
        items = [(p, self.ctx.files[p].language, self._parser_name(p), self.ctx.leaves[p])
                 for p in self.ctx.plan.to_parse]
        settings = self.ctx.choice.settings
        executor = make_executor(scheduler, n_dirty=len(items),
                                 small_threshold=self.config["engine.small_update_files"],
                                 workers=self.config["engine.workers"],
                                 gpu_devices=lambda: usable_gpu_devices(self._embedder_backend(), settings))
        settings = local_worker_settings(settings, executor)
        choice = self.ctx.choice
        embed_ctx = EmbedContext(choice.backend, settings, min(self.config["chunking.max_tokens"], choice.max_tokens),
                                 choice.key_prefix)
        try:
            known, carried = reuse_inputs(self.ctx, len(items))
            pipeline = Pipeline(root=self.ctx.layout.root, executor=executor, ctx=embed_ctx, staging=staging,
                                segments=writer, read_file=self._reader(),
                                known_keys=known, next_chunk_id=int(meta.get("next_chunk_id", "0")),
                                next_vec_id=int(meta.get("next_vec_id", "0")),
                                parse_batch_files=self.config["engine.parse_batch_files"],
                                max_in_flight=self.config["engine.max_in_flight"], progress=self.ctx.progress)
            result = pipeline.run(items, carried)
            del pipeline, known, carried  # the run's key maps and queues are not needed to commit
            executor.close()  # workers hold hundreds of MB: release them before the ANN build and the commit
            if len(items) > self.config["engine.small_update_files"]:  # a small update has little to free;
                release_free_memory()  # its full gc would cost ~0.08 s of a one-file edit
            crashpoints.hit("after-pipeline")
            segments = writer.finish()
            crashpoints.hit("after-segments")
            self.ctx.progress(ProgressEvent("commit"))
            report = commit.commit(result, segments, executor.name)
        except BaseException:
            if not commit.committed:  # after the commit point the new segments are live: never delete them
                writer.abort()
            raise
        finally:
            executor.close()
            shutil.rmtree(staging, ignore_errors=True)
        crashpoints.hit("after-commit")
        self._after_commit(commit)
        self.ctx.progress(ProgressEvent("done", detail=report.as_dict()))
        return report

    def _reader(self) -> Callable[[str], bytes]:
        """The pipeline's one read of a file to parse: checked as ``changes/read.py`` says."""
        root, files, cap = os.fspath(self.ctx.layout.root), self.ctx.files, self.config["discovery.max_file_bytes"]
        return lambda path: read_source(root, files[path], cap)

    def _embedder_backend(self) -> EmbedderBackend:
        return get_plugin_manager().embedder_backend(self.ctx.choice.backend)

    def _parser_name(self, path: str) -> str:
        return self._lang_map.parser_for(self.ctx.files[path].language) or ""

    # ------------------------------------------------------------------ after commit

    def _remove_orphans_of_committed_state(self) -> None:
        if self.ctx.layout.db_path.exists():
            try:
                live = {r[0] for r in self.ctx.reads.con().execute("SELECT file FROM segments").fetchall()}
            except CorruptIndexError:
                return  # a rebuild over a damaged index: the swap replaces it, orphans go after the commit
            remove_orphans(self.ctx.layout.index_dir, live)
        for stale in (dbm.DB_NAME + ".new", dbm.DB_NAME + ".new.wal"):
            (self.ctx.layout.index_dir / stale).unlink(missing_ok=True)

    def _after_commit(self, commit: Commit) -> None:
        remove_orphans(self.ctx.layout.index_dir, commit.live_segment_files)
        if commit.compaction_due:
            self.ctx.progress(ProgressEvent("compact"))
            compact(self.ctx.layout.index_dir, self.config)


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
