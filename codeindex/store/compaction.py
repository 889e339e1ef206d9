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
from codeindex.store.build import kept_segment_files
from codeindex.store.segments import SegmentWriter, read_segment, remove_orphans, vectors_of


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
    """Merge every live segment into as few as possible, dropping tombstoned vectors.

    ``small_only`` merges only the small (delta) segments into new flat ones and leaves the big ones
    (and their tombstones) as they are: what many one-file updates need, at the cost of reading
    kilobytes instead of rewriting the whole index (on a 466k-vector index, minutes of HNSW building).
    """
    db_path = index_dir / dbm.DB_NAME
    with dbm.open_db(db_path, read_only=True) as con:
        meta = dbm.get_meta(con)
        everything = con.execute("SELECT segment, file, n_vectors FROM segments ORDER BY segment").fetchall()
        segments = [(n, f) for n, f, size in everything if not small_only or size < _small(config)]
        kept = {f for n, f, size in everything if (n, f) not in segments}
        dead = {r[0] for r in con.execute("SELECT vec_id FROM tombstones WHERE segment IN (SELECT unnest(?::INT[]))",
                                          [[n for n, _ in segments]]).fetchall()}
    if len(segments) <= 1 and not dead:
        return {"segments_before": len(segments), "segments_after": len(segments), "dropped_vectors": 0}
    writer = SegmentWriter(index_dir, int(meta["dim"]), int(meta.get("next_segment", "0")),
                           max_vectors=config["store.segment_max_vectors"],
                           ann_min_vectors=config["store.ann_min_vectors"], bulk=not small_only)
    new_ids: list[np.ndarray] = []
    new_segs: list[int] = []
    try:
        for _, file in segments:
            ids, vecs = vectors_of(read_segment(index_dir / file))
            keep = ~np.isin(ids, np.fromiter(dead, dtype=np.int64, count=len(dead))) if dead else slice(None)
            ids, vecs = ids[keep], vecs[keep]
            new_segs.extend(writer.add(ids, vecs))
            new_ids.append(ids)
        sealed = writer.finish()
        all_ids = np.concatenate(new_ids) if new_ids else np.zeros(0, np.int64)
        with dbm.open_db(db_path, read_only=False) as con:
            con.execute("BEGIN")
            con.register("seg_map", pa.table({"vec_id": pa.array(all_ids, pa.int64()),
                                              "segment": pa.array(new_segs, pa.int32())}))
            con.execute("UPDATE vectors SET segment = m.segment FROM seg_map m WHERE vectors.vec_id = m.vec_id")
            merged = ", ".join(str(int(number)) for number, _ in segments)
            con.execute(f"DELETE FROM segments WHERE segment IN ({merged})")
            con.execute(f"DELETE FROM tombstones WHERE segment IN ({merged})")
            dbm.insert_arrow(con, "segments", pa.table({
                "segment": pa.array([s.segment for s in sealed], pa.int32()), "file": [s.file for s in sealed],
                "n_vectors": pa.array([s.n_vectors for s in sealed], pa.int64()),
                "index_type": [s.index_type for s in sealed]}))
            dbm.set_meta(con, {"next_segment": str(writer.next_number)})
            con.execute("COMMIT")
    except BaseException:
        writer.abort()
        raise
    listed = kept_segment_files(index_dir, known={dbm.DB_NAME: kept | {s.file for s in sealed}})
    if listed is not None:  # a resumable rebuild beside this index keeps its own segments
        remove_orphans(index_dir, listed)
    return {"segments_before": len(segments), "segments_after": len(sealed), "dropped_vectors": len(dead)}
