"""Run the pipeline for a plan and commit its result as one transaction.

Protocol (the index on disk is always the old or the new state):
1. New segment files are written under temporary names, fsynced and renamed (``SegmentWriter``).
2. One DuckDB transaction updates files, chunks, postings, vectors, tombstones, the live-segment list,
   the Merkle snapshot and the run record. For a rebuild the transaction fills a fresh database
   file that then replaces ``meta.duckdb`` with one atomic rename.
3. Only after that commit are files of segments no longer live deleted. A crash anywhere leaves
   files that no committed state references; the next writer removes them (``remove_orphans``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from codeindex import crashpoints
from codeindex.discovery import Discovery
from codeindex.embedding_choice import EmbedderChoice
from codeindex.errors import CorruptIndexError
from codeindex.executor import local_worker_settings, make_executor, usable_gpu_devices
from codeindex.pipeline import CHUNK_SCHEMA, Pipeline
from codeindex.progress import ProgressCallback, ProgressEvent
from codeindex.results import PipelineResult
from codeindex.runs import build_report, write_run
from codeindex.store import db as dbm
from codeindex.store.postings import (
    cluster_postings,
    load_postings_parts,
    needs_clustering,
    postings_table,
    remove_postings,
)
from codeindex.store.segments import SegmentInfo, SegmentWriter, remove_orphans
from codeindex.tasks import EmbedContext

if TYPE_CHECKING:
    from codeindex.hookspecs import EmbedderBackend
    from codeindex.index import Index, RunReport, UpdatePlan


def module_of(path: str) -> str:
    """The module part of a symbol path: ``pkg/mod.py`` → ``pkg.mod`` (as the parsers build it)."""
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    return stem.replace("/", ".")


class Committer:
    def __init__(self, index: Index, kind: str, choice: EmbedderChoice, plan: UpdatePlan, found: Discovery,
                 new_leaves: dict[str, str], state: Any, snapshot_time_ns: int, started_at: datetime,
                 started: float, warnings: list[str], progress: ProgressCallback) -> None:
        self.index = index
        self.kind = kind
        self.choice = choice
        self.plan = plan
        self.found = found
        self.leaves = new_leaves
        self.state = state
        self.snapshot_time_ns = snapshot_time_ns
        self.started_at = started_at
        self.started = started
        self.warnings = warnings
        self.progress = progress
        self.config = index.config
        self.files = {f.path: f for f in found.files}
        self.committed = False
        """True once the new state is the committed one: from then on this run's segments are live."""

    # ------------------------------------------------------------------ orchestration

    def run(self, scheduler: str) -> RunReport:
        index_dir = self.index.index_dir
        index_dir.mkdir(parents=True, exist_ok=True)
        crashpoints.hit("before-pipeline")
        if self.kind == "update" and self.plan.is_noop():
            return self._commit_noop()
        from codeindex.index import clean_staging, new_staging_dir

        clean_staging(index_dir)  # leftovers of a crashed run
        self._remove_orphans_of_committed_state()
        staging = new_staging_dir(index_dir)
        meta = self.state.meta
        writer = SegmentWriter(index_dir, self.choice.dim, int(meta.get("next_segment", "0")),
                               max_vectors=self.config["store.segment_max_vectors"],
                               ann_min_vectors=self.config["store.ann_min_vectors"], bulk=self.kind == "rebuild")
        items = [(p, self.files[p].language, self._parser_name(p), self.leaves[p]) for p in self.plan.to_parse]
        settings = self.choice.settings
        executor = make_executor(scheduler, n_dirty=len(items),
                                 small_threshold=self.config["engine.small_update_files"],
                                 workers=self.config["engine.workers"],
                                 gpu_devices=lambda: usable_gpu_devices(self._embedder_backend(), settings))
        settings = local_worker_settings(settings, executor)
        ctx = EmbedContext(self.choice.backend, settings,
                           min(self.config["chunking.max_tokens"], self.choice.max_tokens), self.choice.key_prefix)
        try:
            known, carried = self._reuse_inputs(len(items))
            pipeline = Pipeline(root=self.index.root, executor=executor, ctx=ctx, staging=staging, segments=writer,
                                known_keys=known, next_chunk_id=int(meta.get("next_chunk_id", "0")),
                                next_vec_id=int(meta.get("next_vec_id", "0")),
                                parse_batch_files=self.config["engine.parse_batch_files"],
                                max_in_flight=self.config["engine.max_in_flight"], progress=self.progress)
            result = pipeline.run(items, carried)
            del pipeline, known, carried  # the run's key maps and queues are not needed to commit
            executor.close()  # workers hold hundreds of MB: release them before the ANN build and the commit
            if len(items) > self.config["engine.small_update_files"]:  # a small update has little to free;
                release_free_memory()  # its full gc would cost ~0.08 s of a one-file edit
            crashpoints.hit("after-pipeline")
            segments = writer.finish()
            crashpoints.hit("after-segments")
            self.progress(ProgressEvent("commit"))
            report = self._commit(result, segments, executor.name)
        except BaseException:
            if not self.committed:  # after the commit point the new segments are live: never delete them
                writer.abort()
            raise
        finally:
            executor.close()
            shutil.rmtree(staging, ignore_errors=True)
        crashpoints.hit("after-commit")
        self._after_commit()
        self.progress(ProgressEvent("done", detail=report.as_dict()))
        return report

    def _embedder_backend(self) -> EmbedderBackend:
        from codeindex.plugins import get_plugin_manager

        return get_plugin_manager().embedder_backend(self.choice.backend)

    def _parser_name(self, path: str) -> str:
        from codeindex.languages import LanguageMap
        from codeindex.plugins import get_plugin_manager

        if not hasattr(self, "_lang_map"):
            self._lang_map = LanguageMap.from_parsers(get_plugin_manager().parsers())
        return self._lang_map.parser_for(self.files[path].language) or ""

    def _reuse_inputs(self, n_items: int) -> tuple[KnownKeys, list[pa.Table]]:
        """Known vector keys (content addressing) and chunk rows carried without re-parsing.

        A small update looks its keys up when it has them (one brief read per parse batch); a big one
        loads every stored key once, which is cheaper than many look-ups.
        """
        if self.kind != "update":
            return KnownKeys(None), []
        moved = self.plan.moved
        model_change = bool(self.plan.model_change)
        cols = ", ".join(f for f in CHUNK_SCHEMA.names)
        carried: list[pa.Table] = []
        lazy = n_items < self.config["engine.small_update_files"] and not model_change
        known = KnownKeys(self.index.db_path if lazy else None)
        with dbm.open_db(self.index.db_path, read_only=True) as con:
            if not model_change and not lazy:
                keys = dbm.arrow(con, "SELECT vec_key, vec_id FROM vectors")
                known.update(zip(keys.column(0).to_pylist(), keys.column(1).to_pylist(), strict=True))
            if moved:
                dbm.register_list(con, "moved_src", "path", [old for old, _ in moved])
                rows = dbm.arrow(con, f"SELECT {cols} FROM chunks WHERE path IN (SELECT path FROM moved_src) "
                                   "ORDER BY path, start_byte")
                new_of = dict(moved)
                paths = rows.column("path").to_pylist()
                symbols = rows.column("symbol").to_pylist()
                new_paths = [new_of[p] for p in paths]
                new_symbols = [_move_symbol(s, p, n) for s, p, n in zip(symbols, paths, new_paths, strict=True)]
                rows = rows.set_column(rows.schema.get_field_index("path"), "path", pa.array(new_paths, pa.string()))
                rows = rows.set_column(rows.schema.get_field_index("symbol"), "symbol",
                                       pa.array(new_symbols, pa.string()))
                # The lexical document includes path and symbol, so a move changes lex_len too; a stale
                # one skews BM25 length normalisation (found by the crash tests: moved != rebuilt).
                _, lex_lens = postings_table(list(range(rows.num_rows)), rows.column("text").to_pylist(),
                                             new_paths, new_symbols)
                rows = rows.set_column(rows.schema.get_field_index("lex_len"), "lex_len",
                                       pa.array(lex_lens, pa.int32()))
                carried.append(rows.cast(CHUNK_SCHEMA))
            if model_change:
                dbm.register_list(con, "reparsed", "path", [*self.plan.to_parse, *self.plan.deleted,
                                                             *(old for old, _ in moved)])
                rows = dbm.arrow(con, f"SELECT {cols} FROM chunks WHERE path NOT IN (SELECT path FROM reparsed) "
                                   "ORDER BY path, start_byte")
                carried.append(rows.cast(CHUNK_SCHEMA))
        return known, carried

    # ------------------------------------------------------------------ commit

    def _commit_noop(self) -> RunReport:
        with dbm.open_db(self.index.db_path, read_only=False) as con:
            con.execute("BEGIN")
            self._write_files_stat_only(con)
            report = self._report(PipelineResult(), "none")
            self._write_run(con, report)
            dbm.set_meta(con, {"snapshot_time_ns": str(self.snapshot_time_ns),
                               "discovery_skipped": json.dumps(self.plan.skipped)})
            con.execute("COMMIT")
        self.progress(ProgressEvent("done", detail=report.as_dict()))
        return report

    def _commit(self, result: PipelineResult, segments: list[SegmentInfo], scheduler: str) -> RunReport:
        report = self._report(result, scheduler)
        if self.kind == "rebuild":
            target = self.index.db_path.with_name(dbm.DB_NAME + ".new")
            target.unlink(missing_ok=True)
            target.with_name(target.name + ".wal").unlink(missing_ok=True)
            con = dbm.create_database(target)
            try:
                dbm.create_schema(con)
                self._transaction(con, result, segments, report, fresh=True)
                con.execute("CHECKPOINT")
            finally:
                con.close()
            crashpoints.hit("before-swap")
            with open(target, "rb+") as fh:
                os.fsync(fh.fileno())
            self._fold_old_wal()
            os.replace(target, self.index.db_path)
            self.committed = True
            crashpoints.hit("after-swap")
            self.index.db_path.with_name(dbm.DB_NAME + ".wal").unlink(missing_ok=True)
        else:
            with dbm.open_db(self.index.db_path, read_only=False) as con:
                dbm.check_schema(con, self.index.db_path)
                self._transaction(con, result, segments, report, fresh=False)
        return report

    def _fold_old_wal(self) -> None:
        """Checkpoint the old database's WAL into its file before the swap.

        A writer killed between its COMMIT and closing the database leaves a WAL holding that commit.
        If the rebuild's new file were renamed over the old one with that WAL still beside it, a crash
        before the WAL is removed would have DuckDB replay the old WAL onto the new database.
        """
        wal = self.index.db_path.with_name(dbm.DB_NAME + ".wal")
        if not (wal.exists() and self.index.db_path.exists()):
            return
        try:
            with dbm.open_db(self.index.db_path, read_only=False) as con:
                con.execute("CHECKPOINT")
        except CorruptIndexError:
            pass  # a damaged old index: its WAL is worthless
        wal.unlink(missing_ok=True)

    def _transaction(self, con: duckdb.DuckDBPyConnection, result: PipelineResult, segments: list[SegmentInfo],
                     report: RunReport, *, fresh: bool) -> None:
        plan = self.plan
        parsed_ok = {p for p, o in result.outcomes.items() if not (o.skip_reason or "").startswith("unreadable")}
        moved_old = [old for old, _ in plan.moved]
        chunk_paths = [*parsed_ok, *plan.deleted, *moved_old]
        con.execute("BEGIN")
        if not fresh:
            if plan.model_change:
                old_sql = "SELECT chunk_id, vec_id FROM chunks"
            else:
                dbm.register_list(con, "replaced", "path", chunk_paths, pa.string())
                old_sql = "SELECT chunk_id, vec_id FROM chunks WHERE path IN (SELECT path FROM replaced)"
            old_rows = dbm.arrow(con, old_sql)
            old_ids = old_rows.column("chunk_id")
            # Only vectors of removed chunks can lose their last reference: check those, not every vector.
            dbm.register_list(con, "retired_vec_candidates", "vec_id",
                              sorted(set(old_rows.column("vec_id").to_pylist())), pa.int64())
            crashpoints.hit("mid-commit")
            remove_postings(con, old_ids)
            dbm.register_list(con, "old_ids", "chunk_id", old_ids.to_pylist(), pa.int64())
            con.execute("DELETE FROM chunks WHERE chunk_id IN (SELECT chunk_id FROM old_ids)")
            dbm.register_list(con, "file_paths", "path", [*chunk_paths, *plan.stat_only], pa.string())
            old_file_rows = con.execute(
                "SELECT path, language, parser_id, n_chunks, skip_reason, hash FROM files "
                "WHERE path IN (SELECT path FROM file_paths)").fetchall()
            con.execute("DELETE FROM files WHERE path IN (SELECT path FROM file_paths)")
        else:
            old_file_rows = []
        dbm.insert_arrow(con, "files", self._file_rows(result, {r[0]: r for r in old_file_rows}))
        if result.chunk_parts:  # streamed by DuckDB: no Arrow copy of every chunk held in Python
            columns = ", ".join(con.table("chunks").columns)
            con.execute(f"INSERT INTO chunks SELECT {columns} FROM read_parquet(?)",
                        [dbm.parquet_paths(result.chunk_parts)])
        pairs = _pair_parts(result.chunk_parts, result.postings_parts)
        load_postings_parts(con, [str(p) for _, p in pairs], [str(c) for c, _ in pairs])
        if needs_clustering(con):  # postings sorted by term (queries prune row groups), dead ones dropped
            cluster_postings(con)
        crashpoints.hit("mid-commit-inserted")
        if result.new_vectors:
            keys = list(result.new_vectors)
            dbm.insert_arrow(con, "vectors", pa.table({
                "vec_key": pa.array(keys, pa.string()),
                "vec_id": pa.array([result.new_vectors[k][0] for k in keys], pa.int64()),
                "segment": pa.array([result.new_vectors[k][1] for k in keys], pa.int32())}))
        if segments:
            dbm.insert_arrow(con, "segments", pa.table({
                "segment": pa.array([s.segment for s in segments], pa.int32()),
                "file": [s.file for s in segments], "n_vectors": pa.array([s.n_vectors for s in segments], pa.int64()),
                "index_type": [s.index_type for s in segments]}))
        candidates = "TRUE" if fresh else "v.vec_id IN (SELECT vec_id FROM retired_vec_candidates)"
        con.execute(f"""
            INSERT INTO tombstones
            SELECT v.vec_id, v.segment FROM vectors v
            WHERE {candidates} AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vec_id = v.vec_id)""")
        con.execute("DELETE FROM vectors WHERE vec_id IN (SELECT vec_id FROM tombstones)")
        con.execute("DELETE FROM segments WHERE segment NOT IN (SELECT DISTINCT segment FROM vectors)")
        con.execute("DELETE FROM tombstones WHERE segment NOT IN (SELECT segment FROM segments)")
        from codeindex import merkle

        leaves = self.leaves_after(result)
        nodes = self.plan.nodes if leaves == self.leaves and self.plan.nodes else merkle.build_tree(leaves)
        self._write_merkle_nodes(con, nodes, fresh=fresh)
        next_segment = max([int(self.state.meta.get("next_segment", "0"))] + [s.segment + 1 for s in segments])
        dbm.set_meta(con, {**self.choice.meta(), "root_hash": nodes.get("", ""),
                           "snapshot_time_ns": str(self.snapshot_time_ns),
                           "next_chunk_id": str(result.next_chunk_id or self.state.meta.get("next_chunk_id", "0")),
                           "next_vec_id": str(result.next_vec_id or self.state.meta.get("next_vec_id", "0")),
                           "next_segment": str(next_segment), "discovery_skipped": json.dumps(self.plan.skipped)})
        report.chunks_total = dbm.scalar(con, "SELECT count(*) FROM chunks")
        self._write_run(con, report)
        crashpoints.hit("before-db-commit")
        con.execute("COMMIT")
        self.committed = not fresh  # a rebuild's fresh database becomes the committed state at the swap
        crashpoints.hit("after-db-commit")  # committed, maybe only in the WAL: the connection is still open

    def _write_merkle_nodes(self, con: duckdb.DuckDBPyConnection, nodes: dict[str, str], *, fresh: bool) -> None:
        """Write only the nodes that changed: a one-file edit changes its ancestors, not 20k rows.

        Rewriting the whole table made a one-file update on a 20k-file tree write ~2 MB of index
        (benchmarks/edit_footprint.py). ``state.nodes`` is what the database holds: it was read under
        the writer lock this run holds.
        """
        old = {} if fresh else self.state.nodes
        if not old:
            con.execute("DELETE FROM merkle_nodes")
            changed = nodes
        else:
            changed = {p: h for p, h in nodes.items() if old.get(p) != h}
            stale = [*changed, *(p for p in old if p not in nodes)]
            if stale:
                dbm.register_list(con, "stale_nodes", "path", stale, pa.string())
                con.execute("DELETE FROM merkle_nodes WHERE path IN (SELECT path FROM stale_nodes)")
        dbm.insert_arrow(con, "merkle_nodes", pa.table({"path": pa.array(list(changed), pa.string()),
                                                        "hash": pa.array(list(changed.values()), pa.string())}))

    def leaves_after(self, result: PipelineResult) -> dict[str, str]:
        """The Merkle leaves the committed state describes: unreadable files keep their old hash."""
        leaves = dict(self.leaves)
        for path, outcome in result.outcomes.items():
            if (outcome.skip_reason or "").startswith("unreadable"):
                old = self.state.snapshot.get(path)
                if old is None:
                    leaves.pop(path, None)
                else:
                    leaves[path] = old.hash
        for path in self.plan.unreadable:
            old = self.state.snapshot.get(path)
            if old is not None:
                leaves[path] = old.hash
        return leaves

    def _file_rows(self, result: PipelineResult, old_rows: dict[str, tuple[Any, ...]]) -> pa.Table:
        rows: list[tuple[str, str, str, int, str | None]] = []  # path, hash, parser_id, n_chunks, skip
        for path, outcome in result.outcomes.items():
            if (outcome.skip_reason or "").startswith("unreadable"):
                continue
            rows.append((path, self.leaves[path], outcome.parser_id, outcome.n_chunks, outcome.skip_reason))
        for old, new in self.plan.moved:
            prev = self.state.snapshot[old]
            rows.append((new, self.leaves[new], prev.parser_id, prev.n_chunks, prev.skip_reason))
        for path in self.plan.stat_only:
            if path in result.outcomes:
                continue
            prev = self.state.snapshot[path]
            rows.append((path, self.leaves[path], prev.parser_id, prev.n_chunks, prev.skip_reason))
        rows = [r for r in rows if r[0] in self.files]
        stats = [self.files[r[0]].stat for r in rows]
        return pa.table({
            "path": pa.array([r[0] for r in rows], pa.string()),
            "language": pa.array([self.files[r[0]].language for r in rows], pa.string()),
            "size": pa.array([s.size for s in stats], pa.int64()),
            "mtime_ns": pa.array([s.mtime_ns for s in stats], pa.int64()),
            "inode": pa.array([s.inode for s in stats], pa.int64()),
            "ctime_ns": pa.array([s.ctime_ns for s in stats], pa.int64()),
            "hash": pa.array([r[1] for r in rows], pa.string()),
            "parser_id": pa.array([r[2] for r in rows], pa.string()),
            "n_chunks": pa.array([r[3] for r in rows], pa.int32()),
            "skip_reason": pa.array([r[4] for r in rows], pa.string()),
        })

    def _write_files_stat_only(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.plan.stat_only:
            return
        table = self._file_rows(PipelineResult(), {})
        dbm.register_list(con, "stat_paths", "path", self.plan.stat_only, pa.string())
        con.execute("DELETE FROM files WHERE path IN (SELECT path FROM stat_paths)")
        dbm.insert_arrow(con, "files", table)

    def _report(self, result: PipelineResult, scheduler: str) -> RunReport:
        return build_report(self.kind, self.choice, self.plan, result, scheduler, self.started, self.warnings)

    def _write_run(self, con: duckdb.DuckDBPyConnection, report: RunReport) -> None:
        write_run(con, report, self.started_at, self.started)

    # ------------------------------------------------------------------ after commit

    def _live_segment_files(self) -> set[str]:
        with dbm.open_db(self.index.db_path, read_only=True) as con:
            return {r[0] for r in con.execute("SELECT file FROM segments").fetchall()}

    def _remove_orphans_of_committed_state(self) -> None:
        if self.index.db_path.exists():
            try:
                live = self._live_segment_files()
            except CorruptIndexError:
                return  # a rebuild over a damaged index: the swap replaces it, orphans go after the commit
            remove_orphans(self.index.index_dir, live)
        for stale in (dbm.DB_NAME + ".new", dbm.DB_NAME + ".new.wal"):
            (self.index.index_dir / stale).unlink(missing_ok=True)

    def _after_commit(self) -> None:
        remove_orphans(self.index.index_dir, self._live_segment_files())
        from codeindex.compaction import compact, needs_compaction

        if needs_compaction(self.index.index_dir, self.config):
            self.progress(ProgressEvent("compact"))
            compact(self.index.index_dir, self.config)


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


class KnownKeys(dict[str, int]):
    """Vector keys already stored (key -> vec_id). With a database path, ``prefetch`` fills it on demand."""

    def __init__(self, db_path: Path | None) -> None:
        super().__init__()
        self.db_path = db_path
        self._asked: set[str] = set()

    def prefetch(self, keys: Iterable[str]) -> None:
        wanted = [k for k in set(keys) if k not in self._asked]
        if self.db_path is None or not wanted:
            return
        self._asked.update(wanted)
        with dbm.open_db(self.db_path, read_only=True) as con:
            dbm.register_list(con, "wanted_keys", "vec_key", wanted, pa.string())
            self.update(con.execute("SELECT vec_key, vec_id FROM vectors WHERE vec_key IN "
                                    "(SELECT vec_key FROM wanted_keys)").fetchall())


def _move_symbol(symbol: str, old_path: str, new_path: str) -> str:
    old_mod, new_mod = module_of(old_path), module_of(new_path)
    if symbol == old_mod:
        return new_mod
    if symbol.startswith(old_mod + "."):
        return new_mod + symbol[len(old_mod):]
    return symbol


def _pair_parts(chunk_parts: Iterable[Path], postings_parts: Iterable[Path]) -> list[tuple[Path, Path]]:
    by_suffix = {p.name.split("-", 1)[1]: p for p in postings_parts}
    return [(c, by_suffix[c.name.split("-", 1)[1]]) for c in chunk_parts if c.name.split("-", 1)[1] in by_suffix]
