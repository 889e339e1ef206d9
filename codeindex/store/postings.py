"""The lexical (BM25) index, kept incrementally in DuckDB tables.

DuckDB's ``fts`` extension downloads at run time and cannot update an index in place, so the
inverted index is two plain tables (``POSTINGS_DDL`` in ``store/schema.py``):

* ``postings(term_id, chunk_id, tf)``: one row per (term, chunk). ``term_id`` is ``term_key(term)``,
  a 64-bit hash of the term, so there is no term dictionary to look up, upsert or keep in step.
  A query hashes its own terms. Two terms colliding would share their postings; at 64 bits and a few
  million distinct terms that has odds of about one in a million million, and costs ranking noise,
  never data.
* ``lex_stats(k, v)``: ``n_docs`` and ``total_len`` (for the average chunk length),
  ``unclustered_rows`` and ``dead_chunks`` (see ``cluster_postings``).

Removal is lazy: ``remove_postings`` leaves a removed chunk's postings in place and only counts the
chunk as dead. Its postings are spread over the whole term-sorted table, so deleting them meant
scanning every ``chunk_id`` of the table: 0.13-0.5 s of a cold one-file update on a 20M-posting index
on a quiet machine (~2 s on a busy one), and the xl corpus has four times the postings. Queries only
count and score postings whose chunk is live (chunk ids are never reused, so a dead posting stays
dead), and ``cluster_postings`` drops dead postings when it rewrites the table.

A term's ``df`` (how many chunks contain it) is counted from its postings by the query itself, which
reads those postings anyway. Storing ``df`` meant updating a column of a table with a million
rows on every edit, and the term dictionary needed a primary-key index: on a 20k-file index the
two made DuckDB's checkpoint after a one-file update write ~10 MB instead of ~0.7 MB
(``benchmarks/edit_footprint.py``).

Speed comes from row-group pruning: DuckDB keeps min/max per row group, so when postings are stored
sorted by ``term_id`` a query ``WHERE term_id IN (...)`` reads only the few row groups holding those
terms (measured at 100k chunks / 8.5M postings: p50 9-12 ms sorted vs ~27 ms unsorted, see
``benchmarks/lexical_latency.py``). ``add_postings`` writes each batch sorted; many batches appended
one after another are each sorted but interleave, which ``cluster_postings`` repairs (the commit calls
it when ``needs_clustering``). A rebuild's ``load_postings_parts`` sorts all its batches at once. Small
incremental appends barely matter: they land in the last row group or two.

Every function here runs inside the caller's transaction and never commits. Order the caller must
follow when replacing the chunks of a file, in one transaction:

1. ``remove_postings(con, old_ids)`` *before* deleting the old ``chunks`` rows: it reads their
   ``lex_len`` to keep ``lex_stats`` exact;
2. delete the old ``chunks`` rows;
3. insert the new ``chunks`` rows (with ``lex_len`` from ``postings_table``) and ``add_postings``,
   in either order.

``fetch_postings`` (what ``search/ranking.py: bm25_search`` scores) joins ``chunks`` (for ``lex_len``
and filters, or reads ``lex_len`` from the caller's ``ChunkLengths`` of the same state), so a chunk is
searchable once both its row and its postings exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from codeindex.store.db import parquet_paths

if TYPE_CHECKING:  # pyarrow costs ~0.1 s to import: a search never needs it
    import duckdb
    import pyarrow as pa

_IDS_VIEW = "_lex_ids"

def _bump(con: duckdb.DuckDBPyConnection, key: str, delta_sql: str, params: Sequence[object] = ()) -> None:
    con.execute(f"UPDATE lex_stats SET v = v + ({delta_sql}) WHERE k = ?", [*params, key])


def add_postings(con: duckdb.DuckDBPyConnection, table: pa.Table, lex_lens: Sequence[int]) -> None:
    """Insert a batch from ``postings_table`` (sorted by term id) and update ``lex_stats``.

    Work is proportional to the batch: an append and three counter bumps. ``lex_lens`` has one entry
    per chunk of the batch.
    """
    was_empty = not con.execute("SELECT 1 FROM postings LIMIT 1").fetchall()
    rows = table.select(["term_id", "chunk_id", "tf"]).sort_by([("term_id", "ascending"),
                                                                 ("chunk_id", "ascending")])
    # A relation, not con.register: a registered table lives until the transaction ends (see insert_arrow).
    con.from_arrow(rows).insert_into("postings")
    _bump(con, "n_docs", "?", [len(lex_lens)])
    _bump(con, "total_len", "?", [int(sum(lex_lens))])
    if not was_empty:
        # A batch into an empty table is stored fully sorted; later ones interleave with it.
        _bump(con, "unclustered_rows", "?", [table.num_rows])


def load_postings_parts(con: duckdb.DuckDBPyConnection, postings_parts: Sequence[str],
                        chunk_parts: Sequence[str]) -> None:
    """Insert staged Parquet batches of postings in one sorted pass, and update ``lex_stats``.

    The run's equivalent of ``add_postings`` for many batches: DuckDB reads the files and sorts all
    of them at once by ``(term_id, chunk_id)`` (spilling to disk under its memory cap), so a rebuild's
    postings land clustered without the second full rewrite of ``cluster_postings``, and no Arrow
    copy of them is held in Python. ``chunk_parts`` are the chunk batches these postings belong to
    (their ``lex_len`` column feeds ``n_docs`` and ``total_len``).
    """

    if not postings_parts:
        return
    was_empty = not con.execute("SELECT 1 FROM postings LIMIT 1").fetchall()
    files = parquet_paths(postings_parts)
    con.execute("INSERT INTO postings SELECT term_id, chunk_id, tf FROM read_parquet(?) "
                "ORDER BY term_id, chunk_id", [files])
    [(n_docs, total_len)] = con.execute("SELECT count(*), coalesce(sum(lex_len), 0) FROM read_parquet(?)",
                                        [parquet_paths(chunk_parts)]).fetchall()
    _bump(con, "n_docs", "?", [int(n_docs)])
    _bump(con, "total_len", "?", [int(total_len)])
    if not was_empty:
        [(n_rows,)] = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchall()
        _bump(con, "unclustered_rows", "?", [int(n_rows)])


def remove_postings(con: duckdb.DuckDBPyConnection, chunk_ids: Sequence[int] | pa.Array) -> None:
    """Retire the postings of ``chunk_ids`` (lazily, see the module docstring) and update ``lex_stats``.

    Call it *before* deleting the ``chunks`` rows: ``n_docs``, ``total_len`` and ``dead_chunks`` change
    by the ``chunks`` rows still present (ids without a row change nothing). The ids must never be
    used for a new chunk again.
    """
    import pyarrow as pa

    ids = chunk_ids if isinstance(chunk_ids, pa.Array) else pa.array(list(chunk_ids), pa.int64())
    if len(ids) == 0:
        return
    con.register(_IDS_VIEW, pa.table({"chunk_id": ids.cast(pa.int64())}))
    try:
        [(n_gone, len_gone)] = con.execute(
            f"""SELECT count(*), coalesce(sum(lex_len), 0) FROM chunks
                WHERE chunk_id IN (SELECT DISTINCT chunk_id FROM {_IDS_VIEW})"""
        ).fetchall()
    finally:
        con.unregister(_IDS_VIEW)
    _bump(con, "n_docs", "?", [-int(n_gone)])
    _bump(con, "total_len", "?", [-int(len_gone)])
    con.execute("INSERT INTO lex_stats VALUES ('dead_chunks', 0) ON CONFLICT DO NOTHING")  # indexes before it
    _bump(con, "dead_chunks", "?", [int(n_gone)])


def lex_stats(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """The ``lex_stats`` table as a dict (``n_docs``, ``total_len``, ``unclustered_rows``, ``dead_chunks``)."""
    return {str(k): float(v) for k, v in con.execute("SELECT k, v FROM lex_stats").fetchall()}


def unclustered_ratio(con: duckdb.DuckDBPyConnection) -> float:
    """Share of postings appended since the last clustering; ``cluster_postings`` when it grows."""
    [(total,)] = con.execute("SELECT count(*) FROM postings").fetchall()
    return lex_stats(con).get("unclustered_rows", 0.0) / total if total else 0.0


def dead_ratio(con: duckdb.DuckDBPyConnection) -> float:
    """Share of the chunks with postings that are dead; ``cluster_postings`` when it grows."""
    stats = lex_stats(con)
    dead = stats.get("dead_chunks", 0.0)
    return dead / (dead + stats.get("n_docs", 0.0)) if dead else 0.0


def needs_clustering(con: duckdb.DuckDBPyConnection, threshold: float = 0.2) -> bool:
    """Many postings appended out of term order, or many dead ones: time for ``cluster_postings``."""
    return unclustered_ratio(con) > threshold or dead_ratio(con) > threshold


def cluster_postings(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite ``postings`` sorted by term id, without dead postings, so queries prune row groups again.

    A maintenance step, not part of add/remove: the lead calls it after a commit when
    ``needs_clustering``. Costs a few seconds per 10M postings; runs inside the caller's transaction.
    """
    con.execute(
        "CREATE OR REPLACE TABLE postings AS "
        "SELECT term_id, chunk_id, tf FROM postings WHERE chunk_id IN (SELECT chunk_id FROM chunks) "
        "ORDER BY term_id, chunk_id"
    )
    con.execute("UPDATE lex_stats SET v = 0 WHERE k IN ('unclustered_rows', 'dead_chunks')")


@dataclass(frozen=True, slots=True)
class ChunkLengths:
    """``lex_len`` of every chunk, indexed by chunk id (-1 where no chunk has that id).

    What BM25 needs from ``chunks`` besides the postings. A searcher that keeps a connection open loads
    it once per committed state (``load``, ~10 ms at 100k chunks), so an unfiltered query reads only the
    postings of its terms instead of joining them with ``chunks``.
    """

    by_id: np.ndarray

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> ChunkLengths:
        got = con.execute("SELECT chunk_id, lex_len FROM chunks").fetchnumpy()
        ids = np.asarray(got["chunk_id"], dtype=np.int64)
        by_id = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
        by_id[ids] = np.asarray(got["lex_len"], dtype=np.int64)
        return cls(by_id)

    def of(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Lengths of ``chunk_ids``; -1 for ids without a chunk (removed chunks whose postings remain)."""
        out = np.full(len(chunk_ids), -1, dtype=np.int64)
        inside = chunk_ids < len(self.by_id)
        out[inside] = self.by_id[chunk_ids[inside]]
        return out


def fetch_postings(con: duckdb.DuckDBPyConnection, term_ids: Sequence[int], *, where_sql: str = "",
                   params: Sequence[object] = (), lengths: ChunkLengths | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The live postings of ``term_ids``: arrays ``(term_ids, chunk_ids, tf, lex_len, keep)``.

    One equality scan per term (literal ids, so DuckDB prunes to the blocks holding each term: 2-3x
    faster than one ``IN`` list). ``lengths``, when the caller keeps them for the current state and no
    filter applies, spare the join with ``chunks``; otherwise the join drops the postings of removed
    chunks and ``keep`` marks the rows that pass ``where_sql``.
    """
    postings = " UNION ALL ".join(
        f"SELECT term_id, chunk_id, tf FROM postings WHERE term_id = {int(key)}"
        for key in sorted(set(term_ids))
    )
    if lengths is not None and not where_sql.strip():
        rows = con.execute(postings).fetchnumpy()
        chunk_ids = np.asarray(rows["chunk_id"], dtype=np.int64)
        lex_len = lengths.of(chunk_ids)
        live = lex_len >= 0  # a removed chunk's postings stay until clustering: they neither count nor score
        term_ids_out = np.asarray(rows["term_id"], dtype=np.int64)[live]
        tf = np.asarray(rows["tf"], dtype=np.float64)[live]
        chunk_ids, lex_len = chunk_ids[live], lex_len[live]
        keep = np.ones(len(chunk_ids), dtype=bool)
    else:  # the join with chunks drops the postings of removed chunks
        where = where_sql if where_sql.strip() else "TRUE"
        rows = con.execute(
            f"SELECT p.term_id, p.chunk_id, p.tf, c.lex_len, coalesce(({where}), FALSE) AS keep "
            f"FROM ({postings}) p JOIN chunks c ON c.chunk_id = p.chunk_id",
            list(params),
        ).fetchnumpy()
        term_ids_out = np.asarray(rows["term_id"], dtype=np.int64)
        tf = np.asarray(rows["tf"], dtype=np.float64)
        chunk_ids = np.asarray(rows["chunk_id"], dtype=np.int64)
        lex_len = np.asarray(rows["lex_len"], dtype=np.int64)
        keep = np.asarray(rows["keep"], dtype=bool)
    return term_ids_out, chunk_ids, tf, lex_len.astype(np.float64), keep
