"""What one committed state of the index says apart from any query, read once per state.

``Snapshot`` is recognised by the database file's stamp; its heavier parts (chunk lengths, the
vector -> chunk map) load from that state's second query on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from codeindex.store import db as dbm
from codeindex.store.integrity import SegmentRecord, check_schema, raise_if_damaged, read_segment_records
from codeindex.store.postings import ChunkLengths, lex_stats
from codeindex.store.reader import Stamp

if TYPE_CHECKING:
    import duckdb


@dataclass(slots=True)
class VectorMap:
    """Every chunk's vector id, sorted by (vec_id, chunk_id): hits become chunk ids without a query.

    Several chunks may share one vector (identical text is embedded once), so a vector maps to a run
    of chunk ids. Loaded once per committed state (~8 ms at 100k chunks).
    """

    vec_ids: np.ndarray
    chunk_ids: np.ndarray

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> VectorMap:
        got = con.execute("SELECT vec_id, chunk_id FROM chunks ORDER BY vec_id, chunk_id").fetchnumpy()
        return cls(np.asarray(got["vec_id"], dtype=np.int64), np.asarray(got["chunk_id"], dtype=np.int64))

    def chunks_of(self, vec_ids: Sequence[int]) -> list[list[int]]:
        """For each vector id, the ids of the live chunks that carry it (ascending; empty if none)."""
        wanted = np.asarray(vec_ids, dtype=np.int64)
        starts = np.searchsorted(self.vec_ids, wanted, side="left")
        ends = np.searchsorted(self.vec_ids, wanted, side="right")
        return [self.chunk_ids[a:b].tolist() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


@dataclass(slots=True)
class Snapshot:
    """What one committed state of the index says, independently of any query.

    Read once per state (the database stamp) instead of once per query. The heavier parts (chunk
    lengths, vector map) load from a state's second query on: a one-shot ``codeindex search`` does
    better with a join than with loading a whole column.
    """

    stamp: Stamp
    meta: dict[str, str]
    segments: list[SegmentRecord]
    dead: dict[int, int]
    lex_stats: dict[str, float]
    queries: int = 0
    lengths: ChunkLengths | None = field(default=None, repr=False)
    vector_map: VectorMap | None = field(default=None, repr=False)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, stamp: Stamp, db_path: Path) -> Snapshot:
        raise_if_damaged(check_schema(con, db_path), db_path.parent)  # a reader cannot mend a lost table
        segments = read_segment_records(con)
        dead = {int(n): int(c) for n, c in
                con.execute("SELECT segment, count(*) FROM tombstones GROUP BY segment").fetchall()}
        return cls(stamp, dbm.get_meta(con), segments, dead, lex_stats(con))

    @property
    def warm(self) -> bool:
        return self.queries > 1

    def chunk_lengths(self, con: duckdb.DuckDBPyConnection) -> ChunkLengths | None:
        if self.lengths is None and self.warm:
            self.lengths = ChunkLengths.load(con)
        return self.lengths

    def vectors(self, con: duckdb.DuckDBPyConnection) -> VectorMap | None:
        if self.vector_map is None and self.warm:
            self.vector_map = VectorMap.load(con)
        return self.vector_map
