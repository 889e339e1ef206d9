"""Commit a run's staged work as one transaction: the only place that writes committed state.

Protocol (the index on disk is always a consistent state):
1. New segment files are written under temporary names, fsynced and renamed (``SegmentWriter``, before
   this module runs).
2. One DuckDB transaction updates files, chunks, postings, vectors, tombstones, the live-segment list,
   the Merkle snapshot and the run record. A database that does not exist yet (a first build, a new
   rebuild) is filled as ``<name>.new`` and renamed into place with one atomic rename.
3. Only after that commit are files of segments no longer live deleted (``engine/execute.py``). A crash
   anywhere leaves files that no committed state references; the next writer removes them.

A long run commits several times (``engine/checkpoint.py``): each checkpoint writes the work staged
since the previous one, and the Merkle snapshot covers exactly the files committed so far, so every
checkpoint is a true state. The run writes its ``target`` database: the live one (an update, a first
build), or a rebuild's ``build.duckdb`` beside it, renamed over the live one after the final commit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from codeindex import crashpoints
from codeindex.changes import merkle
from codeindex.changes.scan import untrusted
from codeindex.engine.context import RunContext
from codeindex.engine.report import RunReport, build_report, write_run
from codeindex.engine.results import PipelineResult, StagedWork
from codeindex.errors import CorruptIndexError, environment_problem
from codeindex.fsio import fsync_file, rename_durably
from codeindex.progress import ProgressEvent
from codeindex.store import db as dbm
from codeindex.store.build import listed_segments
from codeindex.store.checksums import fingerprint_file
from codeindex.store.compaction import needs_compaction
from codeindex.store.lock import ensure_still_held
from codeindex.store.postings import cluster_postings, load_postings_parts, needs_clustering, remove_postings
from codeindex.store.redactions import replace_redactions
from codeindex.store.segments import FinalSegments, SegmentInfo, segment_rows
from codeindex.store.symbols import replace_symbols


class Commit:
    """The commits of one run: its checkpoints, then its final commit.

    ``committed`` turns true when the final state is committed (for a rebuild, in its own database,
    before the swap): from then on the run's segments are listed and must never be deleted.
    """

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.committed = False
        self.scheduler = "none"
        self.live_segment_files: set[str] = set()
        """The segment files the committed state lists (read on the commit's own connection)."""
        self.compaction_due = False
        self.checkpoints = 0
        self.coverage: dict[str, int] = {}
        """Files, chunks and chunks with vectors in the state last committed (what a checkpoint kept)."""
        self._fresh = ctx.target.fresh
        self._nodes = dict(ctx.state.nodes)
        """The Merkle nodes the target database holds: a commit writes only those it changes."""
        self._leaves = {p: r.hash for p, r in ctx.state.snapshot.items()}
        """The Merkle leaves the target database holds: the run's start, then each checkpoint's."""
        self._run_id: int | None = None
        self.published = 0
        """Commits whose state a database lists for good: at its COMMIT, or for a new database once it
        is renamed into place. A commit that failed before that leaves its segments to nobody."""

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

    def checkpoint(self, result: PipelineResult, segments: list[SegmentInfo]) -> set[str]:
        """Commit the work staged since the last checkpoint; returns the vector keys it retired."""
        report = self._report(result, self.scheduler)
        return self._write(result, FinalSegments(segments), report, final=False)

    def commit(self, result: PipelineResult, segments: FinalSegments, scheduler: str) -> RunReport:
        """Commit the rest of the run as the new state (a rebuild's database then replaces the live one)."""
        self.scheduler = scheduler
        report = self._report(result, scheduler)
        self._write(result, segments, report, final=True)
        return report

    # ------------------------------------------------------------------ opening, publishing, swapping

    def _write(self, result: PipelineResult, segments: FinalSegments, report: RunReport, *,
               final: bool) -> set[str]:
        self.check_still_ours()
        self.verify_staged(result.work)
        self.ctx.reads.close()  # the write session needs the database to itself
        target = self.ctx.target.db_path
        swap = final and self.ctx.target.swap
        if not self._fresh:
            with dbm.open_db(target, read_only=False) as con:
                dbm.check_schema(con, target)
                retired = self._transaction(con, result, segments, report, final=final)
                if swap:
                    con.execute("CHECKPOINT")  # the file is renamed next: nothing may stay in its WAL
                self._read_committed(con, final)
            if swap:
                self._swap(target)
            return retired
        new = target.with_name(target.name + ".new")
        new.unlink(missing_ok=True)
        new.with_name(new.name + ".wal").unlink(missing_ok=True)
        try:
            con = dbm.create_database(new)
            try:
                dbm.create_schema(con)
                retired = self._transaction(con, result, segments, report, final=final)
                con.execute("CHECKPOINT")
                self._read_committed(con, final)
            finally:
                with contextlib.suppress(duckdb.Error):
                    con.close()
        except BaseException as exc:  # a full disk, say: the half-built file only takes space
            for leftover in (new, new.with_name(new.name + ".wal")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            if isinstance(exc, duckdb.Error):
                raise dbm.typed_error(exc, new) from exc
            raise
        fsync_file(new)
        self._swap(new, self.ctx.layout.db_path if swap else target)
        self._fresh = False
        self.published += 1
        return retired

    def _swap(self, source: Path, destination: Path | None = None) -> None:
        """Rename a complete database file over ``destination`` (the live one by default), durably."""
        destination = destination or self.ctx.layout.db_path
        if destination == self.ctx.layout.db_path:
            crashpoints.hit("before-swap")
        fsync_file(source)
        self._fold_old_wal(destination)
        rename_durably(source, destination)
        if destination == self.ctx.layout.db_path:
            crashpoints.hit("after-swap")
        destination.with_name(destination.name + ".wal").unlink(missing_ok=True)
        source.with_name(source.name + ".wal").unlink(missing_ok=True)  # empty: checkpointed before the rename

    @staticmethod
    def verify_staged(work: StagedWork) -> None:
        """The staged parts the commit is about to read are still the bytes the pipeline wrote."""
        for path, written in work.staged.items():
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

    def _read_committed(self, con: duckdb.DuckDBPyConnection, final: bool) -> None:
        """What the clean-up after the commit needs, read on the commit's connection (no second open)."""
        if final:
            self.live_segment_files = listed_segments(con)
            self.compaction_due = needs_compaction(con, self.ctx.config)

    def _fold_old_wal(self, db_path: Path) -> None:
        """Checkpoint the WAL of the database about to be replaced into its file before the swap.

        A writer killed between its COMMIT and closing the database leaves a WAL holding that commit.
        If the new file were renamed over the old one with that WAL still beside it, a crash before
        the WAL is removed would have DuckDB replay the old WAL onto the new database.
        """
        wal = db_path.with_name(db_path.name + ".wal")
        if not wal.exists():
            return
        if db_path.exists():
            try:
                with dbm.open_db(db_path, read_only=False) as con:
                    con.execute("CHECKPOINT")
            except CorruptIndexError:
                pass  # a damaged old index: its WAL is worthless
        wal.unlink(missing_ok=True)

    # ------------------------------------------------------------------ the transaction

    def _transaction(self, con: duckdb.DuckDBPyConnection, result: PipelineResult, segments: FinalSegments,
                     report: RunReport, *, final: bool) -> set[str]:
        """Write ``result.work`` (and, at a run's first commit, the plan's deletions, moves and stat changes)."""
        def point(name: str) -> None:
            crashpoints.hit(name if final else "checkpoint-" + name)

        plan = self.ctx.plan
        snapshot = self.ctx.state.snapshot
        work = result.work
        first = self.checkpoints == 0
        parsed_ok = [p for p, o in work.outcomes.items() if not o.keeps_previous]
        plan_paths = [*plan.deleted, *(old for old, _ in plan.moved)] if first else []
        replaced = [p for p in [*parsed_ok, *plan_paths] if p in snapshot]
        model_reset = first and bool(plan.model_change) and bool(snapshot)
        moved = plan.moved if first else []
        unreached = self._unreached_by_reset(work) if model_reset else []
        con.execute("BEGIN")
        candidates: list[int] = []
        if replaced or model_reset:
            if model_reset:  # the new model's state: no chunk may keep a vector of the old one
                old_sql = "SELECT chunk_id, vec_id FROM chunks"
            else:
                dbm.register_list(con, "replaced", "path", replaced, pa.string())
                old_sql = "SELECT chunk_id, vec_id FROM chunks WHERE path IN (SELECT path FROM replaced)"
            old_rows = dbm.arrow(con, old_sql)
            old_ids = old_rows.column("chunk_id")
            # Only vectors of removed chunks can lose their last reference: check those, not every vector.
            candidates = sorted(set(old_rows.column("vec_id").to_pylist()))
            point("mid-commit")
            remove_postings(con, old_ids)
            dbm.register_list(con, "old_ids", "chunk_id", old_ids.to_pylist(), pa.int64())
            con.execute("DELETE FROM chunks WHERE chunk_id IN (SELECT chunk_id FROM old_ids)")
        file_paths = [*replaced, *(plan.stat_only if first else []), *unreached]
        if file_paths:
            dbm.register_list(con, "file_paths", "path", file_paths, pa.string())
            con.execute("DELETE FROM files WHERE path IN (SELECT path FROM file_paths)")
        dbm.insert_arrow(con, "files", self._file_rows(work, first=first))
        # What describes a file's content follows its chunks: moved with it, gone where they go. Not only
        # the snapshot's files: a repair may have dropped a file's row and left these (store/integrity.py).
        gone = [] if self._fresh else [*parsed_ok, *(plan.deleted if first else []), *unreached]
        replace_redactions(con, replaced=gone, moved=moved,
                           rows=[(path, line, kind, name) for path in parsed_ok
                                 for line, kind, name in work.outcomes[path].redactions])
        if work.chunk_parts:  # streamed by DuckDB: no Arrow copy of every chunk held in Python
            columns = ", ".join(con.table("chunks").columns)
            con.execute(f"INSERT INTO chunks SELECT {columns} FROM read_parquet(?)",
                        [dbm.parquet_paths(work.chunk_parts)])
        replace_symbols(con, gone, moved, work.symbol_parts)
        pairs = pair_parts(work.chunk_parts, work.postings_parts)
        load_postings_parts(con, [str(p) for _, p in pairs], [str(c) for c, _ in pairs])
        if final and needs_clustering(con):  # postings sorted by term (queries prune row groups), dead ones dropped
            cluster_postings(con)
        point("mid-commit-inserted")
        self._write_vectors(con, work, segments)
        retired = self._retire(con, candidates)
        leaves = self._leaves_after(work, first=first, unreached=unreached)
        nodes = self._nodes_for(leaves)
        self._write_merkle_nodes(con, nodes)
        report.chunks_total = dbm.scalar(con, "SELECT count(*) FROM chunks")
        pending = self._pending_counts(con, final)
        self._write_meta(con, result, nodes, segments, pending, final=final)
        self.coverage = {"files": len(leaves), "chunks": report.chunks_total,
                         "chunks_embedded": report.chunks_total - pending[1]}
        self._write_run(con, report, status="ok" if final else "running")
        point("before-db-commit")
        con.execute("COMMIT")
        self.checkpoints += 1
        if not self._fresh:
            self.published += 1
        self._leaves, self._nodes = leaves, nodes
        if final:
            self.committed = True
        point("after-db-commit")  # committed, maybe only in the WAL: the connection is still open
        return retired

    def _write_vectors(self, con: duckdb.DuckDBPyConnection, work: StagedWork, segments: FinalSegments) -> None:
        """New vector rows (pending where not embedded yet), embedded vectors' segments, the segment list."""
        if work.new_keys:
            keys = list(work.new_keys)
            placed = [work.embedded.get(k, (0, None))[1] for k in keys]
            dbm.insert_arrow(con, "vectors", pa.table({
                "vec_key": pa.array(keys, pa.string()),
                "vec_id": pa.array([work.new_keys[k] for k in keys], pa.int64()),
                "segment": pa.array(placed, pa.int32())}))
        late = [(vec_id, seg) for key, (vec_id, seg) in work.embedded.items() if key not in work.new_keys]
        if late:  # rows committed pending by an earlier checkpoint (or a killed run): their vectors exist now
            con.register("embedded_now", pa.table({"vec_id": pa.array([v for v, _ in late], pa.int64()),
                                                   "segment": pa.array([s for _, s in late], pa.int32())}))
            con.execute("UPDATE vectors SET segment = e.segment FROM embedded_now e WHERE vectors.vec_id = e.vec_id")
            con.execute("INSERT INTO tombstones SELECT e.vec_id, e.segment FROM embedded_now e "
                        "WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.vec_id = e.vec_id)")
        if segments.segments:  # with the fingerprint and stat every later use checks (store/integrity.py)
            dbm.insert_arrow(con, "segments", segment_rows(self.ctx.layout.index_dir, segments.segments))
        if len(segments.moved_ids):  # the run's checkpoint segments merged into full ones
            con.register("seg_map", pa.table({"vec_id": pa.array(segments.moved_ids, pa.int64()),
                                              "segment": pa.array(segments.moved_to, pa.int32())}))
            con.execute("UPDATE vectors SET segment = m.segment FROM seg_map m WHERE vectors.vec_id = m.vec_id")
            con.execute("UPDATE tombstones SET segment = m.segment FROM seg_map m WHERE tombstones.vec_id = m.vec_id")
        if segments.replaced:
            dbm.register_list(con, "replaced_segments", "segment", segments.replaced, pa.int32())
            con.execute("DELETE FROM segments WHERE segment IN (SELECT segment FROM replaced_segments)")

    def _retire(self, con: duckdb.DuckDBPyConnection, candidates: list[int]) -> set[str]:
        """Vectors of removed chunks that no chunk uses any more: tombstoned (or, pending, just dropped)."""
        retired: set[str] = set()
        if candidates:
            dbm.register_list(con, "retired_vec_candidates", "vec_id", candidates, pa.int64())
            rows = con.execute("""
                SELECT v.vec_id, v.segment, v.vec_key FROM vectors v
                WHERE v.vec_id IN (SELECT vec_id FROM retired_vec_candidates)
                  AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vec_id = v.vec_id)""").fetchall()
            if rows:
                dead = [(vec_id, seg) for vec_id, seg, _ in rows if seg is not None]
                if dead:
                    dbm.insert_arrow(con, "tombstones", pa.table({
                        "vec_id": pa.array([v for v, _ in dead], pa.int64()),
                        "segment": pa.array([s for _, s in dead], pa.int32())}))
                dbm.register_list(con, "retired_ids", "vec_id", [r[0] for r in rows], pa.int64())
                con.execute("DELETE FROM vectors WHERE vec_id IN (SELECT vec_id FROM retired_ids)")
                retired = {key for _, _, key in rows}
        con.execute("DELETE FROM segments WHERE segment NOT IN "
                    "(SELECT DISTINCT segment FROM vectors WHERE segment IS NOT NULL)")
        con.execute("DELETE FROM tombstones WHERE segment NOT IN (SELECT segment FROM segments)")
        return retired

    def _pending_counts(self, con: duckdb.DuckDBPyConnection, final: bool) -> tuple[int, int]:
        """(vectors, chunks) still waiting for their vector. A final commit has none: the run embedded
        everything it kept (``engine/reuse.py: resumed_texts``), so it pays for no count."""
        if final:
            return 0, 0
        vectors = dbm.scalar(con, "SELECT count(*) FROM vectors WHERE segment IS NULL")
        chunks = dbm.scalar(con, "SELECT count(*) FROM chunks c JOIN vectors v ON v.vec_id = c.vec_id "
                                 "WHERE v.segment IS NULL") if vectors else 0
        return int(vectors), int(chunks)

    def _write_meta(self, con: duckdb.DuckDBPyConnection, result: PipelineResult, nodes: dict[str, str],
                    segments: FinalSegments, pending: tuple[int, int], *, final: bool) -> None:
        meta = self.ctx.state.meta
        next_segment = max([int(meta.get("next_segment", "0"))] + [s.segment + 1 for s in segments.segments])
        dbm.set_meta(con, {**self.ctx.choice.meta(), "root_hash": nodes.get("", ""),
                           "snapshot_time_ns": str(self.ctx.snapshot_time_ns),
                           "next_chunk_id": str(result.next_chunk_id or meta.get("next_chunk_id", "0")),
                           "next_vec_id": str(result.next_vec_id or meta.get("next_vec_id", "0")),
                           "next_segment": str(next_segment), "discovery_skipped": json.dumps(self.ctx.plan.skipped),
                           "vectors_pending": str(pending[0]), "chunks_pending": str(pending[1])})
        meta["next_segment"] = str(next_segment)  # the next checkpoint's segments number on from here
        if (self.ctx.target.first_build or self.ctx.state.meta.get("build_in_progress")) and not final:
            dbm.set_meta(con, {"build_in_progress": "1"})
        else:
            con.execute("DELETE FROM meta WHERE k = 'build_in_progress'")

    # ------------------------------------------------------------------ the Merkle snapshot

    def _unreached_by_reset(self, work: StagedWork) -> list[str]:
        """A model switch's first commit drops every old chunk: files it has not re-parsed yet leave the
        snapshot (absent until reached, as in a first build) rather than be listed without chunks."""
        return [p for p in self.ctx.plan.to_parse if p in self.ctx.state.snapshot and p not in work.outcomes]

    def _leaves_after(self, work: StagedWork, *, first: bool, unreached: Iterable[str]) -> dict[str, str]:
        """The Merkle leaves of the state this commit makes: what the target held, plus this commit's files.

        Files not reached yet keep their previous leaf (or stay absent); a file not read as discovered
        keeps its old hash; a parsed file has the hash of the bytes parsed. After the final commit this
        is every leaf of the tree as the run found it (with those exceptions).
        """
        plan = self.ctx.plan
        leaves = dict(self._leaves)
        if first:
            for path in plan.deleted:
                leaves.pop(path, None)
            for old, new in plan.moved:
                leaves.pop(old, None)
                leaves[new] = self.ctx.leaves[new]
            for path in plan.stat_only:
                leaves[path] = self.ctx.leaves[path]
            for path in unreached:
                leaves.pop(path, None)
        for path, outcome in work.outcomes.items():
            if not outcome.keeps_previous:
                leaves[path] = outcome.content_hash or self.ctx.leaves[path]
        return leaves

    def _nodes_for(self, leaves: dict[str, str]) -> dict[str, str]:
        if leaves == self.ctx.leaves and self.ctx.plan.nodes:
            return self.ctx.plan.nodes
        if not self._nodes:
            return merkle.build_tree(leaves)
        changed = [p for p in leaves.keys() | self._leaves.keys() if leaves.get(p) != self._leaves.get(p)]
        return merkle.update_tree(self._nodes, leaves, changed)

    def _write_merkle_nodes(self, con: duckdb.DuckDBPyConnection, nodes: dict[str, str]) -> None:
        """Write only the nodes that changed: a one-file edit changes its ancestors, not 20k rows.

        Rewriting the whole table made a one-file update on a 20k-file tree write ~2 MB of index
        (benchmarks/edit_footprint.py). ``self._nodes`` is what the database holds: read under the
        writer lock this run holds, then each of its commits.
        """
        old = self._nodes
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

    # ------------------------------------------------------------------ rows

    def _file_rows(self, work: StagedWork, *, first: bool) -> pa.Table:
        """Rows of the files this commit writes: parsed ones, and at the run's first commit moves and stat changes."""
        plan = self.ctx.plan
        rows: list[tuple[str, str, str, int, str | None]] = []  # path, hash, parser_id, n_chunks, skip
        recheck: set[str] = set()  # parsed from bytes other than the scan's: hash again next run
        for path, outcome in work.outcomes.items():
            if outcome.keeps_previous:
                continue
            rows.append((path, outcome.content_hash or self.ctx.leaves[path], outcome.parser_id, outcome.n_chunks,
                         outcome.skip_reason))
            if outcome.changed_since_scan:
                recheck.add(path)
        if first:
            for old, new in plan.moved:
                prev = self.ctx.state.snapshot[old]
                rows.append((new, self.ctx.leaves[new], prev.parser_id, prev.n_chunks, prev.skip_reason))
            for path in plan.stat_only:
                if path in work.outcomes:
                    continue
                prev = self.ctx.state.snapshot[path]
                rows.append((path, self.ctx.leaves[path], prev.parser_id, prev.n_chunks, prev.skip_reason))
        return self._files_table([r for r in rows if r[0] in self.ctx.files], recheck)

    def _files_table(self, rows: list[tuple[str, str, str, int, str | None]], recheck: set[str]) -> pa.Table:
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
        table = self._file_rows(StagedWork(), first=True)
        dbm.register_list(con, "stat_paths", "path", self.ctx.plan.stat_only, pa.string())
        con.execute("DELETE FROM files WHERE path IN (SELECT path FROM stat_paths)")
        dbm.insert_arrow(con, "files", table)

    def _report(self, result: PipelineResult, scheduler: str) -> RunReport:
        c = self.ctx
        return build_report(c.kind, c.choice, c.plan, result, scheduler, c.started, c.warnings)

    def _write_run(self, con: duckdb.DuckDBPyConnection, report: RunReport, *, status: str = "ok") -> None:
        """The run's row: written by its first commit, rewritten by each later one (``running`` until the last)."""
        if self._run_id is None:
            con.execute("UPDATE runs SET status = 'killed' WHERE status = 'running'")  # a dead writer's run
        write_run(con, report, self.ctx.started_at, self.ctx.started, status=status, run_id=self._run_id)
        self._run_id = report.run_id


def pair_parts(chunk_parts: Iterable[Path], postings_parts: Iterable[Path]) -> list[tuple[Path, Path]]:
    """Chunk and postings parts written by the same batch, paired by their shared name suffix."""
    by_suffix = {p.name.split("-", 1)[1]: p for p in postings_parts}
    return [(c, by_suffix[c.name.split("-", 1)[1]]) for c in chunk_parts if c.name.split("-", 1)[1] in by_suffix]

