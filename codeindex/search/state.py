"""What one committed state of the index says apart from any query, read once per state.

``Snapshot`` is recognised by the database file's stamp; its heavier parts (chunk lengths, the
vector -> chunk map, the chunks' places, the definitions by name) load from that state's second query on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from codeindex.store import db as dbm
from codeindex.store.integrity import SegmentRecord, check_schema, raise_if_damaged, read_segment_records
from codeindex.store.postings import ChunkLengths, lex_stats
from codeindex.store.reader import Stamp
from codeindex.store.symbols import COLUMNS as SYMBOL_COLUMNS
from codeindex.store.symbols import SymbolRow

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


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


PLACE_COLUMNS = ("chunk_id", "path", "start_line", "end_line", "symbol", "kind", "language")


@dataclass(slots=True)
class ChunkPlaces:
    """Where every chunk is and what it is named (``PLACE_COLUMNS``, no text), looked up by chunk id.

    A query's ~100 candidates become result rows by array look-ups instead of a query that scans the
    whole ``chunks`` table to find them (5 ms at 46k chunks, more the bigger the index). Loaded once
    per committed state like the lengths, as one Arrow table (no Python object per chunk: ~0.15 s
    at 400k chunks); a query takes its rows out of it.
    """

    table: pa.Table
    row_of: np.ndarray
    """For each chunk id, its row in ``table`` (-1 where no chunk has that id)."""
    by_path: np.ndarray
    """Rows ordered by file, so one file's chunks are a slice (``in_paths``)..."""
    path_codes: np.ndarray
    """... whose file codes, in that order, are these (ascending)."""
    path_code: dict[str, int]

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> ChunkPlaces:
        import pyarrow.compute as pc

        table = dbm.arrow(con, f"SELECT {', '.join(PLACE_COLUMNS)} FROM chunks").combine_chunks()
        ids = table.column("chunk_id").to_numpy().astype(np.int64)
        row_of = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
        row_of[ids] = np.arange(len(ids), dtype=np.int64)
        encoded = pc.dictionary_encode(table.column("path")).combine_chunks()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        by_path = np.argsort(codes, kind="stable")
        return cls(table, row_of, by_path, codes[by_path],
                   {p: i for i, p in enumerate(encoded.dictionary.to_pylist())})

    def of(self, chunk_ids: Sequence[int]) -> list[tuple[int, str, int, int, str, str, str]]:
        """The ``PLACE_COLUMNS`` of each of ``chunk_ids`` that is a live chunk, in the order asked."""
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        rows = np.full(len(wanted), -1, dtype=np.int64)
        inside = (wanted >= 0) & (wanted < len(self.row_of))
        rows[inside] = self.row_of[wanted[inside]]
        return self._rows(rows[rows >= 0])

    def in_paths(self, paths: Iterable[str]) -> list[tuple[int, str, int, int]]:
        """``(chunk_id, path, start_line, end_line)`` of every chunk of the files ``paths``."""
        slices = []
        for path in paths:
            code = self.path_code.get(path)
            if code is not None:
                a, b = np.searchsorted(self.path_codes, [code, code + 1])
                slices.append(self.by_path[a:b])
        rows = np.concatenate(slices) if slices else np.zeros(0, dtype=np.int64)
        return [r[:4] for r in self._rows(rows)]

    def _rows(self, rows: np.ndarray) -> list[tuple[int, str, int, int, str, str, str]]:
        import pyarrow as pa

        part = self.table.take(pa.array(rows, pa.int64()))
        return list(zip(*(part.column(c).to_pylist() for c in PLACE_COLUMNS), strict=True))


@dataclass(slots=True)
class DefinitionsByName:
    """The symbol table, looked up by (path, in-file name) and by own name: what grouping asks of
    every candidate, and what an identifier query names.

    Reading it per query cost 9 ms (every definition of the candidates' files) or, narrowed to the
    names asked, a join over the whole table (3 ms at 30k definitions, growing with it). Held per
    committed state as one Arrow table sorted by DuckDB's 64-bit ``hash`` of the key (~0.1 s to
    load at 290k definitions; Python objects per row took 2.4 s), a look-up is one tiny query that
    hashes the keys asked, then binary searches; rows are checked against the key, so a hash
    collision costs nothing but a wasted row.
    """

    table: pa.Table
    """``stored`` (the row's place in ``symbols``) and ``SYMBOL_COLUMNS``, ordered by ``key_hash``."""
    key_hash: np.ndarray
    """``hash(path, qualified)`` of each row (ascending)."""
    by_name: np.ndarray
    """Rows ordered by ``hash(lower(name))``, which ``name_hash`` holds in that order."""
    name_hash: np.ndarray

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> DefinitionsByName:
        table = dbm.arrow(con, f"SELECT hash(path, qualified) AS key_hash, hash(lower(name)) AS name_hash, "
                               f"rowid AS stored, {', '.join(SYMBOL_COLUMNS)} FROM symbols "
                               f"ORDER BY key_hash, stored").combine_chunks()
        names = table.column("name_hash").to_numpy()
        by_name = np.argsort(names, kind="stable")
        return cls(table.select(["stored", *SYMBOL_COLUMNS]), table.column("key_hash").to_numpy(), by_name,
                   names[by_name])

    def of(self, con: duckdb.DuckDBPyConnection, pairs: Iterable[tuple[str, str]]) -> list[SymbolRow]:
        """The definitions named ``qualified`` in ``path``, for each ``(path, qualified)``."""
        wanted = sorted(set(pairs))
        if not wanted:
            return []
        hashes = con.execute("SELECT hash(p, q) FROM (SELECT unnest(?::VARCHAR[]) AS p, unnest(?::VARCHAR[]) AS q)",
                             [[p for p, _ in wanted], [q for _, q in wanted]]).fetchnumpy()
        rows = _matching(self.key_hash, next(iter(hashes.values())))
        keys = set(wanted)
        return [d for d in self._symbols(rows) if (d.path, d.qualified) in keys]

    def named(self, con: duckdb.DuckDBPyConnection, name: str) -> list[SymbolRow]:
        """Definitions whose own name is ``name``, ignoring case."""
        got = con.execute("SELECT hash(lower(?))", [name]).fetchnumpy()
        rows = _matching(self.name_hash, next(iter(got.values())), self.by_name)
        return [d for d in self._symbols(rows) if d.name.lower() == name.lower()]

    def _symbols(self, rows: np.ndarray) -> list[SymbolRow]:
        """The rows at ``rows``, in the symbol table's own order: the order the SQL look-ups return, which
        decides between two definitions that tie for a piece (``grouping.owner``)."""
        import pyarrow as pa

        part = self.table.take(pa.array(rows, pa.int64()))
        part = part.take(np.argsort(part.column("stored").to_numpy(), kind="stable"))
        return [SymbolRow(*r) for r in zip(*(part.column(c).to_pylist() for c in SYMBOL_COLUMNS), strict=True)]


def _matching(sorted_hashes: np.ndarray, wanted: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The positions in ``sorted_hashes`` of every one of ``wanted`` (mapped through ``rows`` when given)."""
    wanted = np.asarray(wanted, dtype=sorted_hashes.dtype)
    if not len(wanted):
        return np.zeros(0, dtype=np.int64)
    starts = np.searchsorted(sorted_hashes, wanted, side="left")
    ends = np.searchsorted(sorted_hashes, wanted, side="right")
    found = np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])
    return (found if rows is None else rows[found]).astype(np.int64)


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
    chunk_places: ChunkPlaces | None = field(default=None, repr=False)
    named_definitions: DefinitionsByName | None = field(default=None, repr=False)

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

    def places(self, con: duckdb.DuckDBPyConnection) -> ChunkPlaces | None:
        if self.chunk_places is None and self.warm:
            self.chunk_places = ChunkPlaces.load(con)
        return self.chunk_places

    def definitions(self, con: duckdb.DuckDBPyConnection) -> DefinitionsByName | None:
        if self.named_definitions is None and self.warm:
            self.named_definitions = DefinitionsByName.load(con)
        return self.named_definitions

    def vectors(self, con: duckdb.DuckDBPyConnection) -> VectorMap | None:
        if self.vector_map is None and self.warm:
            self.vector_map = VectorMap.load(con)
        return self.vector_map
