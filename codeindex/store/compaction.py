"""Compaction: merge live segments into one, dropping tombstoned vectors.

Runs automatically after a commit when there are more live segments than ``store.compact_segments``
or the dead share exceeds ``store.compact_dead_ratio``, and on ``codeindex compact``. It follows
the same protocol as a run: write the new segment, switch to it in one transaction, then delete the
old files.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from codeindex.config import Config
from codeindex.store import db as dbm
from codeindex.store.integrity import (
    IntegrityFacts,
    check_schema,
    damage_error,
    load_segment,
    quick_check,
    raise_if_damaged,
    segment_problem,
)
from codeindex.store.lock import ensure_still_held
from codeindex.store.segments import SegmentWriter, remove_orphans, segment_rows, vectors_of


def needs_compaction(con: duckdb.DuckDBPyConnection, config: Config) -> bool:
    """Too many small (delta) segments, or too many dead vectors, in the state ``con`` sees."""
    return compaction_reason(con, config) is not None


def compaction_reason(con: duckdb.DuckDBPyConnection, config: Config) -> str | None:
    """``small-segments``, ``dead-vectors`` or None: why the index ``con`` sees should be compacted.

    Only segments under a quarter of ``store.segment_max_vectors`` count as small: a big rebuild produces
    many full segments, and merging those again would rewrite the whole index for nothing. The commit
    asks this on its own connection, right after its transaction.
    """
    n_small = dbm.scalar(con, "SELECT count(*) FROM segments WHERE n_vectors < ?", [_small(config)])
    live = dbm.scalar(con, "SELECT count(*) FROM vectors")
    dead = dbm.scalar(con, "SELECT count(*) FROM tombstones")
    if dead > config["store.compact_dead_ratio"] * max(1, live + dead):
        return "dead-vectors"
    return "small-segments" if n_small > config["store.compact_segments"] else None


def _small(config: Config) -> int:
    return int(config["store.segment_max_vectors"]) // 4


def compact(index_dir: Path, config: Config, *, small_only: bool = False) -> dict[str, int]:
    """Merge every live segment into as few as possible, dropping tombstoned vectors; refuses (exit 5)
    to touch a damaged index.

    ``small_only`` merges only the small (delta) segments into new flat ones and leaves the big ones
    (and their tombstones) as they are: what many one-file updates need, at the cost of reading
    kilobytes instead of rewriting the whole index (on a 466k-vector index, minutes of HNSW building).
    """
    db_path = index_dir / dbm.DB_NAME
    with dbm.open_db(db_path, read_only=True) as con:
        raise_if_damaged(check_schema(con, db_path), index_dir)  # compact mends nothing: update does
        facts = IntegrityFacts.read(con)
        meta = dbm.get_meta(con)
        segments = [rec for rec in facts.segments if not small_only or rec.n_vectors < _small(config)]
        dead = {r[0] for r in con.execute("SELECT vec_id FROM tombstones WHERE segment IN (SELECT unnest(?::INT[]))",
                                          [[rec.segment for rec in segments]]).fetchall()}
    raise_if_damaged(quick_check(index_dir, facts)[0], index_dir)
    kept = {rec.file for rec in facts.segments if rec not in segments}
    if len(segments) <= 1 and not dead:
        return {"segments_before": len(segments), "segments_after": len(segments), "dropped_vectors": 0}
    writer = SegmentWriter(index_dir, int(meta["dim"]), int(meta.get("next_segment", "0")),
                           max_vectors=config["store.segment_max_vectors"],
                           ann_min_vectors=config["store.ann_min_vectors"], bulk=not small_only)
    new_ids: list[np.ndarray] = []
    new_segs: list[int] = []
    try:
        for rec in segments:
            try:
                index = load_segment(index_dir, rec)  # the full checksum: never copy damaged vectors on
            except FileNotFoundError:
                raise damage_error([segment_problem(rec, "missing", "segment-missing")], index_dir) from None
            ids, vecs = vectors_of(index)
            keep = ~np.isin(ids, np.fromiter(dead, dtype=np.int64, count=len(dead))) if dead else slice(None)
            ids, vecs = ids[keep], vecs[keep]
            new_segs.extend(writer.add(ids, vecs))
            new_ids.append(ids)
        sealed = writer.finish()
        all_ids = np.concatenate(new_ids) if new_ids else np.zeros(0, np.int64)
        ensure_still_held(index_dir)
        with dbm.open_db(db_path, read_only=False) as con:
            con.execute("BEGIN")
            con.register("seg_map", pa.table({"vec_id": pa.array(all_ids, pa.int64()),
                                              "segment": pa.array(new_segs, pa.int32())}))
            con.execute("UPDATE vectors SET segment = m.segment FROM seg_map m WHERE vectors.vec_id = m.vec_id")
            merged = ", ".join(str(int(rec.segment)) for rec in segments)
            con.execute(f"DELETE FROM segments WHERE segment IN ({merged})")
            con.execute(f"DELETE FROM tombstones WHERE segment IN ({merged})")
            dbm.insert_arrow(con, "segments", segment_rows(index_dir, sealed))
            dbm.set_meta(con, {"next_segment": str(writer.next_number)})
            con.execute("COMMIT")
    except BaseException:
        writer.abort()
        raise
    remove_orphans(index_dir, kept | {s.file for s in sealed})
    return {"segments_before": len(segments), "segments_after": len(sealed), "dropped_vectors": len(dead)}
