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
    """Where every chunk is and what it is named (``PLACE_COLUMNS``, no text), indexed by chunk id.

    A query's ~100 candidates become result rows by array look-ups instead of a query that scans the
    whole ``chunks`` table to find them (5 ms at 46k chunks, more the bigger the index). Loaded once
    per committed state like the lengths (~40 ms and a few MB at 100k chunks; path, kind and
    language repeat, so they are kept as codes into their distinct values).
    """

    row_of: np.ndarray
    """For each chunk id, its row in the columns below (-1 where no chunk has that id)."""
    chunk_id: np.ndarray
    start_line: np.ndarray
    end_line: np.ndarray
    symbol: list[str]
    codes: dict[str, tuple[np.ndarray, list[str]]]
    """``path``, ``kind``, ``language``: per row a code, and the distinct values the codes index."""
    by_path: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Rows ordered by path code, so one file's chunks are a slice (``in_paths``)."""
    path_code: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> ChunkPlaces:
        import pyarrow.compute as pc

        table = dbm.arrow(con, f"SELECT {', '.join(PLACE_COLUMNS)} FROM chunks")
        ids = table.column("chunk_id").to_numpy().astype(np.int64)
        row_of = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
        row_of[ids] = np.arange(len(ids), dtype=np.int64)
        codes = {}
        for name in ("path", "kind", "language"):
            encoded = pc.dictionary_encode(table.column(name)).combine_chunks()
            codes[name] = (encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                           encoded.dictionary.to_pylist())
        paths, values = codes["path"]
        return cls(row_of, ids, table.column("start_line").to_numpy(), table.column("end_line").to_numpy(),
                   table.column("symbol").to_pylist(), codes, np.argsort(paths, kind="stable"),
                   {v: i for i, v in enumerate(values)})

    def in_paths(self, paths: Iterable[str]) -> list[tuple[int, str, int, int]]:
        """``(chunk_id, path, start_line, end_line)`` of every chunk of the files ``paths``."""
        codes, _ = self.codes["path"]
        ordered = codes[self.by_path]
        out: list[tuple[int, str, int, int]] = []
        for path in paths:
            code = self.path_code.get(path)
            if code is None:
                continue
            a, b = np.searchsorted(ordered, [code, code + 1])
            rows = self.by_path[a:b]
            out.extend((c, path, int(s), int(e)) for c, s, e in zip(
                self.chunk_id[rows].tolist(), self.start_line[rows].tolist(), self.end_line[rows].tolist(),
                strict=True))
        return out

    def of(self, chunk_ids: Sequence[int]) -> list[tuple[int, str, int, int, str, str, str]]:
        """The ``PLACE_COLUMNS`` of each of ``chunk_ids`` that is a live chunk, in the order asked."""
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        rows = np.full(len(wanted), -1, dtype=np.int64)
        inside = (wanted >= 0) & (wanted < len(self.row_of))
        rows[inside] = self.row_of[wanted[inside]]
        found = rows >= 0
        ids, rows = wanted[found].tolist(), rows[found]
        paths, kinds, languages = (self._decoded(name, rows) for name in ("path", "kind", "language"))
        return [(c, paths[i], int(a), int(b), self.symbol[r], kinds[i], languages[i])
                for i, (c, r, a, b) in enumerate(zip(ids, rows.tolist(), self.start_line[rows].tolist(),
                                                     self.end_line[rows].tolist(), strict=True))]

    def _decoded(self, name: str, rows: np.ndarray) -> list[str]:
        codes, values = self.codes[name]
        return [values[c] for c in codes[rows].tolist()]


@dataclass(slots=True)
class DefinitionsByName:
    """The symbol table by (path, in-file name): what grouping asks of every candidate.

    Reading it per query cost 9 ms (every definition of the candidates' files) or, narrowed to the
    names asked, a join over the whole table (3 ms and growing with it); held per committed state,
    a look-up is a dict access. Loaded with the other per-state parts (~50 ms at 70k definitions).
    """

    by_key: dict[tuple[str, str], list[SymbolRow]]
    by_name: dict[str, list[SymbolRow]]
    """By own name in lower case: what an identifier query names (``store/symbols.definitions_named``)."""

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> DefinitionsByName:
        by_key: dict[tuple[str, str], list[SymbolRow]] = {}
        by_name: dict[str, list[SymbolRow]] = {}
        for row in con.execute(f"SELECT {', '.join(SYMBOL_COLUMNS)} FROM symbols").fetchall():
            d = SymbolRow(*row)
            by_key.setdefault((d.path, d.qualified), []).append(d)
            by_name.setdefault(d.name.lower(), []).append(d)
        return cls(by_key, by_name)

    def named(self, name: str) -> list[SymbolRow]:
        """Definitions whose own name is ``name``, ignoring case."""
        return list(self.by_name.get(name.lower(), ()))

    def of(self, pairs: Iterable[tuple[str, str]]) -> list[SymbolRow]:
        """The definitions named ``qualified`` in ``path``, for each ``(path, qualified)``."""
        return [d for key in set(pairs) for d in self.by_key.get(key, ())]


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
