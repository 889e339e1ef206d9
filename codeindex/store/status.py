"""What ``codeindex status`` reports about a committed index, read in one read-only session.

File counts follow the one definition of ``engine/report.py`` (seen = indexed + skipped, by reason):
``file_counts`` computes them for the run report inside the commit, and status reads back what the last
run stored beside the ``files`` table it committed, so the two always agree.

Status is also a health check: it runs the quick integrity check every update runs (tables present,
segments present with their recorded size and header, checksummed when their stat moved, lexical
counts) and fails with exit 5 naming the damage; ``codeindex verify`` checks everything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codeindex.errors import NotIndexedError
from codeindex.jsonout import iso_utc
from codeindex.store import db as dbm
from codeindex.store.integrity import IntegrityFacts, check_schema, quick_check, raise_if_damaged
from codeindex.store.layout import IndexLayout

FAILURES_SHOWN = 50
"""Parse failures listed by ``status --json`` (all are counted; ``why PATH`` shows any one)."""

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True, slots=True)
class FileCounts:
    seen: int
    indexed: int
    skipped: int
    by_reason: dict[str, int]


def file_counts(con: duckdb.DuckDBPyConnection, seen: int, discovery_skipped: Mapping[str, int]) -> FileCounts:
    """Counts of the state in ``con``'s ``files`` table, for a walk that met ``seen`` entries.

    Skipped = discovery's skips + files the table holds without chunks (binary, parse errors: the reason
    before the first ``:``) + files seen but in no row at all (unreadable ones never indexed).
    """
    indexed = int(dbm.scalar(con, "SELECT count(*) FROM files WHERE skip_reason IS NULL"))
    by_reason = dict(discovery_skipped)
    for reason, n in con.execute("SELECT split_part(skip_reason, ':', 1), count(*) FROM files "
                                 "WHERE skip_reason IS NOT NULL GROUP BY 1").fetchall():
        by_reason[reason] = by_reason.get(reason, 0) + int(n)
    rest = seen - indexed - sum(by_reason.values())
    if rest > 0:
        by_reason["unreadable"] = by_reason.get("unreadable", 0) + rest
    return FileCounts(seen, indexed, seen - indexed, dict(sorted(by_reason.items())))


def read_status(layout: IndexLayout) -> dict[str, Any]:
    """Files, chunks, model, index size, last run of the committed state (one read-only session)."""
    if not layout.exists():
        raise NotIndexedError(f"no index at {layout.index_dir}")
    with dbm.open_db(layout.db_path, read_only=True) as con:
        raise_if_damaged(check_schema(con, layout.db_path), layout.index_dir)  # a reader mends nothing
        facts = IntegrityFacts.read(con)
        meta = dbm.get_meta(con)
        chunks = dbm.scalar(con, "SELECT count(*) FROM chunks")
        vectors = dbm.scalar(con, "SELECT count(*) FROM vectors")
        dead = dbm.scalar(con, "SELECT count(*) FROM tombstones")
        segs = con.execute("SELECT segment, file, n_vectors, index_type FROM segments ORDER BY segment").fetchall()
        langs = dict(con.execute("SELECT language, count(*) FROM files WHERE skip_reason IS NULL "
                                 "GROUP BY language ORDER BY 2 DESC").fetchall())
        failed = con.execute("SELECT path, skip_reason FROM files WHERE skip_reason LIKE 'parse-error%' "
                             "OR skip_reason LIKE 'parser-unavailable%' ORDER BY path").fetchall()
        cur = con.execute("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")
        rows = cur.fetchall()
        last_run = dict(zip([d[0] for d in cur.description], rows[0], strict=True)) if rows else None
        if last_run:
            last_run["started_at"] = iso_utc(last_run["started_at"])
            for key in ("stages_json", "skipped_json"):
                last_run[key.removesuffix("_json")] = json.loads(last_run.pop(key) or "{}")
            counts = FileCounts(int(last_run["files_seen"]), *_indexed_and_rest(con, last_run))
        else:
            discovery = json.loads(meta.get("discovery_skipped", "{}"))
            counts = file_counts(con, 0, discovery)
            counts = file_counts(con, counts.indexed + sum(counts.by_reason.values()), discovery)
    raise_if_damaged(quick_check(layout.index_dir, facts)[0], layout.index_dir)
    size = _folder_bytes(layout)
    return {
        "root": str(layout.root), "index_dir": str(layout.index_dir), "schema_version": int(meta["schema_version"]),
        "files": counts.indexed, "files_seen": counts.seen, "files_skipped": counts.skipped,
        "skipped_by_reason": counts.by_reason,
        "languages": langs, "chunks": chunks, "vectors": vectors, "dead_vectors": dead,
        "embedder": meta.get("embedder_backend"), "model_id": meta.get("model_id"),
        "embedder_kind": "lexical feature hashing, no neural model"
        if meta.get("embedder_backend") == "hashing" else "neural model",
        "segments": [{"segment": s, "file": f, "vectors": n, "type": t} for s, f, n, t in segs],
        "index_bytes": size, "root_hash": meta.get("root_hash"), "last_run": last_run,
        "parse_failures": len(failed),
        "failed": [{"path": p, "reason": r} for p, r in failed[:FAILURES_SHOWN]],
        "integrity": {"check": "quick", "problems": 0, "segments_checked": len(facts.segments)},
    }


def _folder_bytes(layout: IndexLayout) -> int:
    """Bytes of the index folder's files; a writer's temporary file may vanish while we count."""
    total = 0
    for path in layout.index_dir.iterdir():
        try:
            if path.is_file():
                total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def _indexed_and_rest(con: duckdb.DuckDBPyConnection, last_run: dict[str, Any]) -> tuple[int, int, dict[str, int]]:
    """Indexed, skipped and skipped-by-reason as the last run counted them in its commit."""
    indexed = int(dbm.scalar(con, "SELECT count(*) FROM files WHERE skip_reason IS NULL"))
    return indexed, int(last_run["files_seen"]) - indexed, dict(last_run["skipped"])
