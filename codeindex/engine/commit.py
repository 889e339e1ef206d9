"""Commit a pipeline result as one transaction: the only place that writes committed state.

Protocol (the index on disk is always the old or the new state):
1. New segment files are written under temporary names, fsynced and renamed (``SegmentWriter``, before
   this module runs).
2. One DuckDB transaction updates files, chunks, postings, vectors, tombstones, the live-segment list,
   the Merkle snapshot and the run record. For a rebuild the transaction fills a fresh database
   file that then replaces ``meta.duckdb`` with one atomic rename.
3. Only after that commit are files of segments no longer live deleted (``engine/run.py``). A crash
   anywhere leaves files that no committed state references; the next writer removes them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from codeindex import crashpoints
from codeindex.changes import merkle
from codeindex.changes.scan import untrusted
from codeindex.engine.context import RunContext
from codeindex.engine.report import RunReport, build_report, write_run
from codeindex.engine.results import PipelineResult
from codeindex.errors import CorruptIndexError, environment_problem
from codeindex.fsio import fsync_file, rename_durably
from codeindex.progress import ProgressEvent
from codeindex.store import db as dbm
from codeindex.store.checksums import fingerprint_file
from codeindex.store.compaction import needs_compaction
from codeindex.store.lock import ensure_still_held
from codeindex.store.postings import cluster_postings, load_postings_parts, needs_clustering, remove_postings
from codeindex.store.redactions import replace_redactions
from codeindex.store.segments import SegmentInfo, segment_rows
from codeindex.store.symbols import replace_symbols


class Commit:
    """The commit of one run. ``committed`` turns true at the commit point: from then on the run's
    segments are live and must never be deleted by its error handling."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.committed = False
        self.live_segment_files: set[str] = set()
        """The segment files the committed state lists (read on the commit's own connection)."""
        self.compaction_due = False

    def check_still_ours(self) -> None:
        """Before any commit: this run still holds the writer lock, and the tree it read is still there."""
        ensure_still_held(self.ctx.layout.index_dir)
        self.ctx.layout.check_root()

    def stat_only(self) -> RunReport:
        """Nothing to parse or remove, but some files' stat changed: store the new stat rows."""
        self.check_still_ours()
        self.ctx.reads.close()  # the write session needs the database to itself
        with dbm.open_db(self.ctx.layout.db_path, read_only=False) as con:
            con.execute("BEGIN")
            self._write_files_stat_only(con)
            report = self._report(PipelineResult(), "none")
            self._write_run(con, report)
            dbm.set_meta(con, {"snapshot_time_ns": str(self.ctx.snapshot_time_ns),
                               "discovery_skipped": json.dumps(self.ctx.plan.skipped)})
            con.execute("COMMIT")
        self.ctx.progress(ProgressEvent("done", detail=report.as_dict()))
        return report

    def commit(self, result: PipelineResult, segments: list[SegmentInfo], scheduler: str) -> RunReport:
        """Write the run's result as the new committed state (a fresh database swapped in, for a rebuild)."""
        report = self._report(result, scheduler)
        self.check_still_ours()
        self.verify_staged(result)
        self.ctx.reads.close()  # the write session needs the database to itself
        if self.ctx.kind == "rebuild":
            target = self.ctx.layout.db_path.with_name(dbm.DB_NAME + ".new")
            target.unlink(missing_ok=True)
            target.with_name(target.name + ".wal").unlink(missing_ok=True)
            try:
                con = dbm.create_database(target)
                try:
                    dbm.create_schema(con)
                    self._transaction(con, result, segments, report, fresh=True)
                    con.execute("CHECKPOINT")
                    self._read_committed(con)
                finally:
                    with contextlib.suppress(duckdb.Error):
                        con.close()
            except BaseException as exc:  # a full disk, say: the half-built file only takes space
                for leftover in (target, target.with_name(target.name + ".wal")):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
                if isinstance(exc, duckdb.Error):
                    raise dbm.typed_error(exc, target) from exc
                raise
            crashpoints.hit("before-swap")
            fsync_file(target)
            self._fold_old_wal()
            rename_durably(target, self.ctx.layout.db_path)
            self.committed = True
            crashpoints.hit("after-swap")
            self.ctx.layout.db_path.with_name(dbm.DB_NAME + ".wal").unlink(missing_ok=True)
        else:
            with dbm.open_db(self.ctx.layout.db_path, read_only=False) as con:
                dbm.check_schema(con, self.ctx.layout.db_path)
                self._transaction(con, result, segments, report, fresh=False)
                self._read_committed(con)
        return report

    @staticmethod
    def verify_staged(result: PipelineResult) -> None:
        """The staged parts the commit is about to read are still the bytes the pipeline wrote."""
        for path, written in result.staged.items():
            try:
                now = fingerprint_file(path)
            except FileNotFoundError:
                now = None
            except OSError as exc:
                raise environment_problem(exc, path, "read the staged part") from exc
            if now != written:
                what = "vanished" if now is None else \
                    f"changed (checksum {written.checksum[:12]}… -> {now.checksum[:12]}…)"
                raise CorruptIndexError(f"the staged part {path} {what} between its write and the commit: "
                                        "nothing was committed",
                                        hint="check the disk holding the index, then rerun `codeindex update PATH`")

    def _read_committed(self, con: duckdb.DuckDBPyConnection) -> None:
        """What the clean-up after the commit needs, read on the commit's connection (no second open)."""
        self.live_segment_files = {r[0] for r in con.execute("SELECT file FROM segments").fetchall()}
        self.compaction_due = needs_compaction(con, self.ctx.config)

    def _fold_old_wal(self) -> None:
        """Checkpoint the old database's WAL into its file before the swap.

        A writer killed between its COMMIT and closing the database leaves a WAL holding that commit.
        If the rebuild's new file were renamed over the old one with that WAL still beside it, a crash
        before the WAL is removed would have DuckDB replay the old WAL onto the new database.
        """
        wal = self.ctx.layout.db_path.with_name(dbm.DB_NAME + ".wal")
        if not (wal.exists() and self.ctx.layout.db_path.exists()):
            return
        try:
            with dbm.open_db(self.ctx.layout.db_path, read_only=False) as con:
                con.execute("CHECKPOINT")
        except CorruptIndexError:
            pass  # a damaged old index: its WAL is worthless
        wal.unlink(missing_ok=True)

    def _transaction(self, con: duckdb.DuckDBPyConnection, result: PipelineResult, segments: list[SegmentInfo],
                     report: RunReport, *, fresh: bool) -> None:
        plan = self.ctx.plan
        parsed_ok = {p for p, o in result.outcomes.items() if not o.keeps_previous}
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
        replace_redactions(con, replaced=[] if fresh else [*parsed_ok, *plan.deleted], moved=plan.moved,
                           rows=[(path, line, kind, name) for path in parsed_ok
                                 for line, kind, name in result.outcomes[path].redactions])
        if result.chunk_parts:  # streamed by DuckDB: no Arrow copy of every chunk held in Python
            columns = ", ".join(con.table("chunks").columns)
            con.execute(f"INSERT INTO chunks SELECT {columns} FROM read_parquet(?)",
                        [dbm.parquet_paths(result.chunk_parts)])
        replace_symbols(con, [] if fresh else [*parsed_ok, *plan.deleted], [] if fresh else plan.moved,
                        result.symbol_parts)
        pairs = pair_parts(result.chunk_parts, result.postings_parts)
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
        if segments:  # with the fingerprint and stat every later use checks (store/integrity.py)
            dbm.insert_arrow(con, "segments", segment_rows(self.ctx.layout.index_dir, segments))
        candidates = "TRUE" if fresh else "v.vec_id IN (SELECT vec_id FROM retired_vec_candidates)"
        con.execute(f"""
            INSERT INTO tombstones
            SELECT v.vec_id, v.segment FROM vectors v
            WHERE {candidates} AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vec_id = v.vec_id)""")
        con.execute("DELETE FROM vectors WHERE vec_id IN (SELECT vec_id FROM tombstones)")
        con.execute("DELETE FROM segments WHERE segment NOT IN (SELECT DISTINCT segment FROM vectors)")
        con.execute("DELETE FROM tombstones WHERE segment NOT IN (SELECT segment FROM segments)")
        leaves = self.leaves_after(result)
        nodes = self.ctx.plan.nodes if leaves == self.ctx.leaves and self.ctx.plan.nodes else merkle.build_tree(leaves)
        self._write_merkle_nodes(con, nodes, fresh=fresh)
        next_segment = max([int(self.ctx.state.meta.get("next_segment", "0"))] + [s.segment + 1 for s in segments])
        dbm.set_meta(con, {**self.ctx.choice.meta(), "root_hash": nodes.get("", ""),
                           "snapshot_time_ns": str(self.ctx.snapshot_time_ns),
                           "next_chunk_id": str(result.next_chunk_id or self.ctx.state.meta.get("next_chunk_id", "0")),
                           "next_vec_id": str(result.next_vec_id or self.ctx.state.meta.get("next_vec_id", "0")),
                           "next_segment": str(next_segment), "discovery_skipped": json.dumps(self.ctx.plan.skipped)})
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
        old = {} if fresh else self.ctx.state.nodes
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
        """The Merkle leaves the committed state describes: files not read as discovered keep their old
        hash; a parsed file has the hash of the bytes parsed."""
        leaves = dict(self.ctx.leaves)
        for path, outcome in result.outcomes.items():
            if outcome.keeps_previous:
                old = self.ctx.state.snapshot.get(path)
                if old is None:
                    leaves.pop(path, None)
                else:
                    leaves[path] = old.hash
            elif outcome.content_hash:
                leaves[path] = outcome.content_hash
        for path in self.ctx.plan.unreadable:
            old = self.ctx.state.snapshot.get(path)
            if old is not None:
                leaves[path] = old.hash
        return leaves

    def _file_rows(self, result: PipelineResult, old_rows: dict[str, tuple[Any, ...]]) -> pa.Table:
        rows: list[tuple[str, str, str, int, str | None]] = []  # path, hash, parser_id, n_chunks, skip
        recheck: set[str] = set()  # parsed from bytes other than the scan's: hash again next run
        for path, outcome in result.outcomes.items():
            if outcome.keeps_previous:
                continue
            rows.append((path, outcome.content_hash or self.ctx.leaves[path], outcome.parser_id, outcome.n_chunks,
                         outcome.skip_reason))
            if outcome.changed_since_scan:
                recheck.add(path)
        for old, new in self.ctx.plan.moved:
            prev = self.ctx.state.snapshot[old]
            rows.append((new, self.ctx.leaves[new], prev.parser_id, prev.n_chunks, prev.skip_reason))
        for path in self.ctx.plan.stat_only:
            if path in result.outcomes:
                continue
            prev = self.ctx.state.snapshot[path]
            rows.append((path, self.ctx.leaves[path], prev.parser_id, prev.n_chunks, prev.skip_reason))
        rows = [r for r in rows if r[0] in self.ctx.files]
        stats = [untrusted(self.ctx.files[r[0]].stat) if r[0] in recheck else self.ctx.files[r[0]].stat for r in rows]
        return pa.table({
            "path": pa.array([r[0] for r in rows], pa.string()),
            "language": pa.array([self.ctx.files[r[0]].language for r in rows], pa.string()),
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
        if not self.ctx.plan.stat_only:
            return
        table = self._file_rows(PipelineResult(), {})
        dbm.register_list(con, "stat_paths", "path", self.ctx.plan.stat_only, pa.string())
        con.execute("DELETE FROM files WHERE path IN (SELECT path FROM stat_paths)")
        dbm.insert_arrow(con, "files", table)

    def _report(self, result: PipelineResult, scheduler: str) -> RunReport:
        c = self.ctx
        return build_report(c.kind, c.choice, c.plan, result, scheduler, c.started, c.warnings)

    def _write_run(self, con: duckdb.DuckDBPyConnection, report: RunReport) -> None:
        write_run(con, report, self.ctx.started_at, self.ctx.started)


def pair_parts(chunk_parts: Iterable[Path], postings_parts: Iterable[Path]) -> list[tuple[Path, Path]]:
    """Chunk and postings parts written by the same batch, paired by their shared name suffix."""
    by_suffix = {p.name.split("-", 1)[1]: p for p in postings_parts}
    return [(c, by_suffix[c.name.split("-", 1)[1]]) for c in chunk_parts if c.name.split("-", 1)[1] in by_suffix]
