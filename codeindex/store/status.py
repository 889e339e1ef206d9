"""What ``codeindex status`` reports about a committed index, read in one read-only session."""

from __future__ import annotations

import json
from typing import Any

from codeindex.errors import NotIndexedError
from codeindex.store import db as dbm
from codeindex.store.build import build_in_progress, coverage
from codeindex.store.layout import IndexLayout


def read_status(layout: IndexLayout) -> dict[str, Any]:
    """Files, chunks, model, index size, last run of the committed state (one read-only session)."""
    if not layout.exists():
        raise NotIndexedError(f"no index at {layout.index_dir}")
    with dbm.open_db(layout.db_path, read_only=True) as con:
        dbm.check_schema(con, layout.db_path)
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
        embedded = coverage(con)["chunks_embedded"] if meta.get("chunks_pending", "0") != "0" else chunks
        cur = con.execute("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")
        rows = cur.fetchall()
        last_run = dict(zip([d[0] for d in cur.description], rows[0], strict=True)) if rows else None
    if last_run:
        last_run["started_at"] = str(last_run["started_at"])
        for key in ("stages_json", "skipped_json"):
            last_run[key.removesuffix("_json")] = json.loads(last_run.pop(key) or "{}")
    size = sum(p.stat().st_size for p in layout.index_dir.iterdir() if p.is_file())
    discovery_skips = json.loads(meta.get("discovery_skipped", "{}"))
    return {
        "root": str(layout.root), "index_dir": str(layout.index_dir), "schema_version": int(meta["schema_version"]),
        "files": files, "files_skipped": skipped, "skipped_by_reason": {**discovery_skips, **skip_reasons},
        "languages": langs, "chunks": chunks, "chunks_embedded": embedded, "vectors": vectors, "dead_vectors": dead,
        "build_in_progress": bool(meta.get("build_in_progress")),
        "rebuild_in_progress": build_in_progress(layout.index_dir),
        "embedder": meta.get("embedder_backend"), "model_id": meta.get("model_id"),
        "embedder_kind": "lexical feature hashing, no neural model"
        if meta.get("embedder_backend") == "hashing" else "neural model",
        "segments": [{"segment": s, "file": f, "vectors": n, "type": t} for s, f, n, t in segs],
        "index_bytes": size, "root_hash": meta.get("root_hash"), "last_run": last_run,
    }
