"""``Index``: the Python API behind the CLI (``codeindex rebuild`` ↔ ``Index.rebuild`` and so on).

A run: take the writer lock → read the snapshot (brief DB open) → discover → stat-gated scan →
Merkle diff → pipeline (DB closed: searches keep working) → one commit transaction → clean up.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codeindex import merkle
from codeindex.config import Config, load_config
from codeindex.discovery import Discovery
from codeindex.embedding_choice import EmbedderChoice, choose_embedder
from codeindex.errors import NotIndexedError, UsageError
from codeindex.languages import LanguageMap, parser_identity
from codeindex.models import FileStat
from codeindex.plugins import get_plugin_manager
from codeindex.progress import ProgressCallback, ProgressEvent, no_progress
from codeindex.scan import discover_and_scan
from codeindex.store import db as dbm
from codeindex.store.lock import writer_lock

INDEX_DIR_NAME = ".codeindex"


@dataclass(slots=True)
class SnapshotRow:
    stat: FileStat
    hash: str
    language: str
    parser_id: str
    n_chunks: int
    skip_reason: str | None


@dataclass(slots=True)
class UpdatePlan:
    """What an ``update`` would do. ``codeindex update --plan`` prints it; nothing is written."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    reparse: list[str] = field(default_factory=list)
    unchanged: int = 0
    stat_only: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    by_language: dict[str, dict[str, int]] = field(default_factory=dict)
    model_change: str | None = None
    estimated_chunks: int = 0
    estimated_tokens: int = 0
    estimated_seconds: float | None = None
    files_seen: int = 0
    rehashed: int = 0
    nodes: dict[str, str] = field(default_factory=dict, repr=False)
    """The new Merkle directory nodes (not part of the printed plan)."""

    @property
    def to_parse(self) -> list[str]:
        return sorted({*self.added, *self.modified, *self.reparse})

    def is_noop(self) -> bool:
        return not (self.added or self.modified or self.deleted or self.moved or self.reparse or self.model_change)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["nodes"]
        out["moved"] = [list(m) for m in self.moved]
        return out


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Index:
    """A semantic index of the tree at ``root``, stored in ``index_dir`` (default ``root/.codeindex``)."""

    def __init__(self, root: str | os.PathLike[str], *, index_dir: str | os.PathLike[str] | None = None,
                 config: Config | None = None, **overrides: Any) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.exists():
            raise UsageError(f"path does not exist: {root}", hint="pass the root of a source tree")
        if not self.root.is_dir():
            raise UsageError(f"not a directory: {root}", hint="pass the root of a source tree")
        self.index_dir = Path(index_dir).expanduser().resolve() if index_dir else self.root / INDEX_DIR_NAME
        if "?" in str(self.index_dir):  # DuckDB reads "?" as the start of URL parameters in a file path
            raise UsageError(f"the index directory's path contains '?', which DuckDB cannot open: {self.index_dir}",
                             hint="pass --index-dir with a path without '?'")
        self.config = config or load_config(self.root, overrides)
        self._searcher: Any = None

    @property
    def db_path(self) -> Path:
        return self.index_dir / dbm.DB_NAME

    def exists(self) -> bool:
        return self.db_path.exists()

    # ------------------------------------------------------------------ public API

    def rebuild(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
                embedder: str | None = None, wait: bool = False) -> RunReport:
        """Index the tree from scratch into a new database, swapped in atomically at the end."""
        with writer_lock(self.index_dir, wait=wait) as lock_warnings:
            return self._run("rebuild", progress, scheduler, embedder, lock_warnings)

    def update(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
               embedder: str | None = None, wait: bool = False) -> RunReport:
        """Re-index what changed since the last run (a rebuild if there is no index yet)."""
        with writer_lock(self.index_dir, wait=wait) as lock_warnings:
            kind = "update" if self.exists() else "rebuild"
            return self._run(kind, progress, scheduler, embedder, lock_warnings)

    def plan(self, *, embedder: str | None = None, progress: ProgressCallback = no_progress) -> UpdatePlan:
        """What ``update`` would do, without writing anything (``codeindex update --plan``)."""
        state = self._read_state(require=True)
        choice = choose_embedder(self.config, state.meta, embedder)
        plan, _, _ = self._make_plan(state, choice, progress)
        self._estimate(plan, state)
        return plan

    def search(self, query: str, *, k: int | None = None, mode: str | None = None,
               languages: Sequence[str] = (), paths: Sequence[str] = (), exclude_paths: Sequence[str] = (),
               kinds: Sequence[str] = (), symbol: str | None = None, embedder: str | None = None) -> list[Any]:
        """Hybrid (default), vector or lexical search. Results never point at deleted or moved-away files."""
        from codeindex.search import Searcher

        if self._searcher is None:
            self._searcher = Searcher(self.index_dir, self.config)
        return self._searcher.search(query, k=k or self.config["search.k"], mode=mode or self.config["search.mode"],
                                     languages=languages, paths=paths, exclude_paths=exclude_paths, kinds=kinds,
                                     symbol=symbol, embedder=embedder)

    def close(self) -> None:
        """Close the read connection searches keep open (idle ones close by themselves after a moment)."""
        if self._searcher is not None:
            self._searcher.close()

    def status(self) -> dict[str, Any]:
        """Files, chunks, model, index size, last run; no model runtime is loaded."""
        if not self.exists():
            raise NotIndexedError(f"no index at {self.index_dir}")
        with dbm.open_db(self.db_path, read_only=True) as con:
            dbm.check_schema(con, self.db_path)
            meta = dbm.get_meta(con)
            files, skipped = dbm.first_row(
                con, "SELECT count(*) FILTER (WHERE skip_reason IS NULL), "
                "count(*) FILTER (WHERE skip_reason IS NOT NULL) FROM files") or (0, 0)
            chunks = dbm.scalar(con, "SELECT count(*) FROM chunks")
            vectors = dbm.scalar(con, "SELECT count(*) FROM vectors")
            dead = dbm.scalar(con, "SELECT count(*) FROM tombstones")
            segs = con.execute("SELECT segment, file, n_vectors, index_type FROM segments ORDER BY segment").fetchall()
            langs = dict(con.execute("SELECT language, count(*) FROM files WHERE skip_reason IS NULL "
                                     "GROUP BY language ORDER BY 2 DESC").fetchall())
            skip_reasons = dict(con.execute("SELECT split_part(skip_reason, ':', 1), count(*) FROM files "
                                            "WHERE skip_reason IS NOT NULL GROUP BY 1").fetchall())
            cur = con.execute("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")
            rows = cur.fetchall()
            last_run = dict(zip([d[0] for d in cur.description], rows[0], strict=True)) if rows else None
        if last_run:
            last_run["started_at"] = str(last_run["started_at"])
            for key in ("stages_json", "skipped_json"):
                last_run[key.removesuffix("_json")] = json.loads(last_run.pop(key) or "{}")
        size = sum(p.stat().st_size for p in self.index_dir.iterdir() if p.is_file())
        discovery_skips = json.loads(meta.get("discovery_skipped", "{}"))
        return {
            "root": str(self.root), "index_dir": str(self.index_dir), "schema_version": int(meta["schema_version"]),
            "files": files, "files_skipped": skipped, "skipped_by_reason": {**discovery_skips, **skip_reasons},
            "languages": langs, "chunks": chunks, "vectors": vectors, "dead_vectors": dead,
            "embedder": meta.get("embedder_backend"), "model_id": meta.get("model_id"),
            "embedder_kind": "lexical feature hashing, no neural model"
            if meta.get("embedder_backend") == "hashing" else "neural model",
            "segments": [{"segment": s, "file": f, "vectors": n, "type": t} for s, f, n, t in segs],
            "index_bytes": size, "root_hash": meta.get("root_hash"), "last_run": last_run,
        }

    def staleness(self) -> dict[str, int]:
        """How stale the index is (changed-file counts) without updating it."""
        plan = self.plan()
        return {"added": len(plan.added), "modified": len(plan.modified), "deleted": len(plan.deleted),
                "moved": len(plan.moved), "reparse": len(plan.reparse)}

    def compact(self, *, wait: bool = False) -> dict[str, int]:
        """Merge all live segments into one, dropping tombstoned vectors."""
        from codeindex.compaction import compact

        with writer_lock(self.index_dir, wait=wait):
            return compact(self.index_dir, self.config)

    # ------------------------------------------------------------------ internals

    @dataclass(slots=True)
    class _State:
        meta: dict[str, str]
        snapshot: dict[str, SnapshotRow]
        nodes: dict[str, str]
        runs_throughput: tuple[float, float] | None  # (tokens per second, tokens per chunk)

    def _read_state(self, *, require: bool) -> Index._State:
        if not self.exists():
            if require:
                raise NotIndexedError(f"no index at {self.index_dir}")
            return Index._State({}, {}, {}, None)
        with dbm.open_db(self.db_path, read_only=True) as con:
            dbm.check_schema(con, self.db_path)
            meta = dbm.get_meta(con)
            files = con.execute("SELECT path, size, mtime_ns, inode, ctime_ns, hash, language, parser_id, "
                                "n_chunks, skip_reason FROM files").fetchall()
            nodes = dict(con.execute("SELECT path, hash FROM merkle_nodes").fetchall())
            tp = dbm.first_row(con, "SELECT sum(tokens_embedded), sum(json_extract(stages_json, '$.embed_s')::DOUBLE), "
                               "sum(chunks_embedded) FROM runs WHERE tokens_embedded > 0")
        snapshot = {p: SnapshotRow(FileStat(s, m, i, c), h, lang, pid, n, r)
                    for p, s, m, i, c, h, lang, pid, n, r in files}
        throughput = None
        if tp and tp[0] and tp[1]:
            throughput = (float(tp[0]) / float(tp[1]), float(tp[0]) / max(1.0, float(tp[2] or 1)))
        return Index._State(meta, snapshot, nodes, throughput)

    def _record_noop(self, choice: EmbedderChoice, plan: UpdatePlan, snapshot_time_ns: int, started_at: datetime,
                     started: float, warnings: list[str], progress: ProgressCallback) -> RunReport:
        """Nothing changed: record the run (0 chunks embedded) and advance the snapshot time. No Arrow, no Dask."""
        from codeindex.results import PipelineResult
        from codeindex.runs import build_report, write_run

        report = build_report("update", choice, plan, PipelineResult(), "none", started, warnings)
        with dbm.open_db(self.db_path, read_only=False) as con:
            con.execute("BEGIN")
            write_run(con, report, started_at, started)
            dbm.set_meta(con, {"snapshot_time_ns": str(snapshot_time_ns),
                               "discovery_skipped": json.dumps(plan.skipped)})
            con.execute("COMMIT")
        progress(ProgressEvent("done", detail=report.as_dict()))
        return report

    def _make_plan(self, state: Index._State, choice: EmbedderChoice, progress: ProgressCallback,
                   ) -> tuple[UpdatePlan, Discovery, dict[str, str]]:
        manager = get_plugin_manager()
        lang_map = LanguageMap.from_parsers(manager.parsers())
        exclude = {self.index_dir.name} if self.index_dir.parent == self.root else set()
        snapshot_time = int(state.meta.get("snapshot_time_ns", "0"))
        progress(ProgressEvent("discover"))
        # the walk and the hashing of what it finds overlap: see scan.OverlappedScan
        found, scanned = discover_and_scan(self.root, lang_map.language_of, state.snapshot, snapshot_time,
                                           max_file_bytes=self.config["discovery.max_file_bytes"],
                                           exclude=exclude or {INDEX_DIR_NAME})
        progress(ProgressEvent("discover", done=len(found.files), total=len(found.files)))
        progress(ProgressEvent("hash", done=len(scanned.rehashed), total=len(found.files)))
        new_leaves = scanned.hashes
        plan = UpdatePlan(files_seen=len(found.files), skipped=dict(found.skipped),
                          unreadable=dict(scanned.unreadable), rehashed=len(scanned.rehashed))
        if state.meta.get("model_id") and state.meta.get("model_id") != choice.model_id:
            plan.model_change = (f"{state.meta.get('embedder_backend')}:{state.meta.get('model_id')} -> "
                                 f"{choice.backend}:{choice.model_id}")
        elif state.meta.get("embedder_backend") and state.meta["embedder_backend"] != choice.backend:
            plan.model_change = f"{state.meta['embedder_backend']} -> {choice.backend}"
        # unreadable files keep their previous entries: never lose data because of a transient error
        old_leaves = {p: r.hash for p, r in state.snapshot.items() if p not in scanned.unreadable}
        diff = merkle.diff_trees(old_leaves, new_leaves)  # a dict comparison: milliseconds at 100k files
        if state.nodes and not scanned.unreadable:  # re-hash only the directories above what changed
            plan.nodes = merkle.update_tree(state.nodes, new_leaves, diff.changed_paths())
        else:
            plan.nodes = merkle.build_tree(new_leaves)
        plan.added, plan.modified, plan.deleted = diff.added, diff.modified, diff.deleted
        plan.moved, plan.unchanged = diff.moved, diff.unchanged
        languages = {f.path: f.language for f in found.files}
        stats = {f.path: f.stat for f in found.files}
        parsers = {p.name: p for p in manager.parsers()}
        identities: dict[str, str] = {}  # language -> parser identity (config_hash is not free)
        changed = {*plan.added, *plan.modified, *(new for _, new in plan.moved)}
        for path, row in state.snapshot.items():
            if path not in new_leaves or path in changed:
                continue
            if stats[path] != row.stat:
                plan.stat_only.append(path)
            language = languages[path]
            if language not in identities:
                parser = parsers.get(lang_map.parser_for(language) or "")
                identities[language] = parser_identity(parser, language) if parser else ""
            expected = identities[language]
            if row.language != language or (row.skip_reason is None and row.parser_id != expected) \
                    or (row.skip_reason or "").startswith("parser-unavailable"):
                plan.reparse.append(path)
        added, modified = set(plan.added), set(plan.modified)
        for path in plan.to_parse:
            entry = plan.by_language.setdefault(languages[path], {"add": 0, "modify": 0, "reparse": 0})
            entry["add" if path in added else "modify" if path in modified else "reparse"] += 1
        for _, new in plan.moved:
            plan.by_language.setdefault(languages[new], {"add": 0, "modify": 0, "reparse": 0})
            plan.by_language[languages[new]]["move"] = plan.by_language[languages[new]].get("move", 0) + 1
        return plan, found, new_leaves

    def _estimate(self, plan: UpdatePlan, state: Index._State) -> None:
        indexed = [r for r in state.snapshot.values() if r.skip_reason is None]
        total_bytes = sum(r.stat.size for r in indexed) or 1
        chunks_per_byte = sum(r.n_chunks for r in indexed) / total_bytes
        sizes = {p: r.stat.size for p, r in state.snapshot.items()}
        parse_bytes = 0
        for path in plan.to_parse:
            parse_bytes += sizes.get(path, 0) or (self.root / path).stat().st_size
        plan.estimated_chunks = round(parse_bytes * chunks_per_byte)
        if plan.model_change:
            plan.estimated_chunks = sum(r.n_chunks for r in indexed)
        if state.runs_throughput:
            tokens_per_s, tokens_per_chunk = state.runs_throughput
            plan.estimated_tokens = round(plan.estimated_chunks * tokens_per_chunk)
            plan.estimated_seconds = round(plan.estimated_tokens / tokens_per_s, 2) if tokens_per_s else None

    def _run(self, kind: str, progress: ProgressCallback, scheduler: str | None, embedder: str | None,
             warnings: list[str]) -> RunReport:
        started = time.perf_counter()
        started_at = datetime.now(UTC).replace(tzinfo=None)
        snapshot_time_ns = time.time_ns()
        manager = get_plugin_manager()
        warnings = [*warnings, *manager.warnings]
        for w in manager.warnings:
            progress(ProgressEvent("warning", detail={"message": w}))
        state = self._read_state(require=False) if kind == "update" else Index._State({}, {}, {}, None)
        if kind == "rebuild":  # never reuse a segment number the old (possibly damaged) index may list
            from codeindex.store.segments import next_free_segment

            state.meta = {"next_segment": str(next_free_segment(self.index_dir))}
        choice = choose_embedder(self.config, state.meta if kind == "update" else None, embedder)
        plan, found, new_leaves = self._make_plan(state, choice, progress)
        if plan.model_change:
            message = f"embedding model changed ({plan.model_change}): re-embedding every chunk, no re-parsing"
            warnings.append(message)
            progress(ProgressEvent("warning", detail={"message": message}))
        if kind == "update" and plan.is_noop() and not plan.stat_only:
            return self._record_noop(choice, plan, snapshot_time_ns, started_at, started, warnings, progress)
        from codeindex.commit import Committer

        committer = Committer(self, kind, choice, plan, found, new_leaves, state, snapshot_time_ns, started_at,
                              started, warnings, progress)
        return committer.run(scheduler or self.config["engine.scheduler"])


def new_staging_dir(index_dir: Path) -> Path:
    staging = index_dir / "staging" / uuid.uuid4().hex[:12]
    staging.mkdir(parents=True)
    return staging


def clean_staging(index_dir: Path) -> None:
    shutil.rmtree(index_dir / "staging", ignore_errors=True)


__all__ = ["Index", "RunReport", "UpdatePlan"]
