"""Search: vector (FAISS segments) and lexical (BM25 over postings) results fused by reciprocal rank.

Chunk rows are the authority: a vector id maps to result rows only through ``chunks``, so a
tombstoned vector or a deleted file can never appear in results.

Per-query cost is kept to the query itself: the read connection stays open between searches
(``store/reader.py`` says when it is closed so that writers are never blocked for long), and what a
committed state says independently of the query (meta, live segments, tombstone counts, BM25
statistics, chunk lengths, the vector -> chunk map) is read once per state, recognised by the
database file's stamp. Loaded segments are reloaded only when the live-segment list changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from codeindex.config import Config
from codeindex.embedders.choice import settings_from_config
from codeindex.errors import CorruptIndexError, ModelMismatchError, NotIndexedError, UsageError
from codeindex.search.filters import where_clause
from codeindex.search.ranking import RRF_K, bm25_search, fusion_weights, rrf
from codeindex.search.state import Snapshot
from codeindex.store import db as dbm
from codeindex.store.integrity import DamagedSegment, SegmentRecord, damage_error, load_segment, segment_problem
from codeindex.store.reader import ReadConnection, Stamp

MODES = ("hybrid", "vector", "lexical")

VANISHED_RETRIES = 4
"""Times a search re-reads the committed state after a segment it was about to load vanished."""
DB_RETRIES = 2
"""Times a search reopens the database after a read that failed (damage fails every time)."""

log = logging.getLogger("codeindex.search")


@dataclass(slots=True)
class SearchResult:
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    score: float
    text: str
    chunk_id: int
    vector_rank: int | None = None
    lexical_rank: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Searcher:
    """Answers searches on one index; keep it (``Index`` does) so that connection and caches are reused.

    ``keep_connection=False`` closes the database after every query (what a one-shot process wants).
    """

    def __init__(self, index_dir: Path, config: Config, *, keep_connection: bool = True) -> None:
        self.index_dir = index_dir
        self.config = config
        self._reader = ReadConnection(index_dir / dbm.DB_NAME, keep=keep_connection)
        self._snapshot: Snapshot | None = None
        self._segments: dict[str, Any] = {}
        self._embedder: Any = None
        self._embedder_key: tuple[str, str] | None = None
        self._selectors: dict[str, tuple[tuple[str, int], Any, Any]] = {}

    # ------------------------------------------------------------------ vector side

    def _load_segments(self, records: Sequence[SegmentRecord]) -> list[Any]:
        """The live segments, loaded once each after their checksum is checked (``store/integrity.py``).

        Raises ``FileNotFoundError`` for a file that is gone: a writer deletes the segments it replaced
        right after its commit, so ``search`` then reads the new committed state and tries again.
        """
        import faiss

        # One query at a time gains nothing from OpenMP threads, and their spin-waiting costs 2-3x on a
        # busy machine (measured: 6.0 -> 2.5 ms per 65k-vector HNSW segment).
        faiss.omp_set_num_threads(1)
        wanted = {rec.file for rec in records}
        for name in list(self._segments):
            if name not in wanted:
                del self._segments[name]
        out = []
        for rec in records:
            if rec.file not in self._segments:
                self._segments[rec.file] = load_segment(self.index_dir, rec)
            out.append(self._segments[rec.file])
        return out

    def _query_vector(self, query: str, meta: dict[str, str], embedder: str | None) -> np.ndarray:
        from codeindex.embedders.runtime import get_embedder
        from codeindex.plugins import get_plugin_manager

        backend = embedder or meta["embedder_backend"]
        settings = settings_from_config(self.config, meta.get("embedder_model", ""))
        if embedder is not None:
            model_id = get_plugin_manager().embedder_backend(backend).identify(settings)[0]
            if backend != meta["embedder_backend"] or model_id != meta["model_id"]:
                raise ModelMismatchError(
                    f"the index was built with {meta['embedder_backend']}:{meta['model_id']}, "
                    f"not {backend}:{model_id}; vectors of two models are not comparable")
        key = (backend, meta["model_id"])
        if self._embedder is None or self._embedder_key != key:
            self._embedder = get_embedder(backend, settings)
            self._embedder_key = key
        return np.asarray(self._embedder.embed([query]), dtype=np.float32)

    def _dead_selectors(self, con: duckdb.DuckDBPyConnection, snap: Snapshot) -> dict[str, Any]:
        """Per segment file, a FAISS selector excluding its tombstoned ids (none when it has none).

        Searching with the dead excluded keeps ``k`` at what was asked: asking each segment for
        ``k + all dead`` instead made a query slower the more a base segment had been edited (and
        returned tens of thousands of hits to sort in Python). A segment's dead set only grows until
        compaction rewrites it under a new name, so (file, dead count) identifies it: selectors are
        built once per commit that adds tombstones, not per query.
        """
        import faiss

        out: dict[str, Any] = {}
        for rec in snap.segments:
            number, file = rec.segment, rec.file
            n_dead = snap.dead.get(number, 0)
            if not n_dead:
                continue
            key = (file, n_dead)
            cached = self._selectors.get(file)
            if cached is None or cached[0] != key:
                ids = con.execute("SELECT vec_id FROM tombstones WHERE segment = ?", [number]).fetchnumpy()["vec_id"]
                batch = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
                cached = (key, faiss.IDSelectorNot(batch), batch)  # keep the batch alive: Not borrows it
                self._selectors[file] = cached
            out[file] = cached[1]
        live = {rec.file for rec in snap.segments}
        for file in list(self._selectors):
            if file not in live:
                del self._selectors[file]
        return out

    def _vector_candidates(self, con: duckdb.DuckDBPyConnection, snap: Snapshot, query: str, n: int, where: str,
                           params: list[Any], embedder: str | None) -> list[tuple[int, float]]:
        import faiss

        if not snap.segments:
            return []
        files = [rec.file for rec in snap.segments]
        qv = self._query_vector(query, snap.meta, embedder)
        allowed = None
        if where:  # ids of live chunks only: tombstoned vectors are excluded too
            ids = con.execute(f"SELECT DISTINCT c.vec_id FROM chunks c WHERE {where}", params).fetchnumpy()["vec_id"]
            if len(ids) == 0:
                return []
            allowed = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        not_dead = {} if allowed is not None else self._dead_selectors(con, snap)
        hits: list[tuple[float, int]] = []
        for file, index in zip(files, self._load_segments(snap.segments), strict=True):
            kk = min(index.ntotal, n)
            if kk <= 0:
                continue
            selector = allowed if allowed is not None else not_dead.get(file)
            if selector is not None:
                scores, ids = index.search(qv, kk, params=_search_params(index, selector))
            else:
                scores, ids = index.search(qv, kk)
            hits.extend((float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0)
        hits.sort(key=lambda t: (-t[0], t[1]))
        vec_ids = [i for _, i in hits]
        if not vec_ids:
            return []
        vector_map = None if where else snap.vectors(con)
        if vector_map is not None:
            chunk_lists = vector_map.chunks_of(vec_ids)
        else:
            extra = f" AND {where}" if where else ""
            rows = con.execute(f"SELECT c.chunk_id, c.vec_id FROM chunks c WHERE c.vec_id IN "
                               f"(SELECT unnest(?::BIGINT[])){extra}", [vec_ids, *params]).fetchall()
            chunks_of: dict[int, list[int]] = {}
            for chunk_id, vec_id in rows:
                chunks_of.setdefault(vec_id, []).append(chunk_id)
            chunk_lists = [sorted(chunks_of.get(v, ())) for v in vec_ids]
        ranked: list[tuple[int, float]] = []
        for (score, _), chunk_ids in zip(hits, chunk_lists, strict=True):
            ranked.extend((chunk_id, score) for chunk_id in chunk_ids)
        return ranked[:n]

    # ------------------------------------------------------------------ entry point

    def close(self) -> None:
        """Close the database connection now (it is also closed when idle, or when a writer runs)."""
        self._reader.release()

    def _current(self, con: duckdb.DuckDBPyConnection, stamp: Stamp) -> Snapshot:
        snap = self._snapshot
        if snap is None or snap.stamp != stamp:
            snap = self._snapshot = Snapshot.read(con, stamp, self._reader.db_path)
        snap.queries += 1
        return snap

    def _answer(self, con: duckdb.DuckDBPyConnection, snap: Snapshot, query: str, k: int, n: int, mode: str,
                where: str, params: list[Any], embedder: str | None,
                ) -> tuple[list[tuple[int, float]], dict[int, int], dict[int, int], list[Any]]:
        """Ranked (chunk id, score), the vector and lexical ranks, and the result rows of one committed state."""
        vector: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if mode in ("hybrid", "vector"):
            vector = self._vector_candidates(con, snap, query, n, where, params, embedder)
        if mode in ("hybrid", "lexical"):
            lexical = bm25_search(con, query, n, where_sql=where, params=params,
                                  lengths=snap.chunk_lengths(con), stats=snap.lex_stats)
        if mode == "vector":
            ranked = vector[:k]
        elif mode == "lexical":
            ranked = lexical[:k]
        else:
            ranked = rrf([[c for c, _ in vector], [c for c, _ in lexical]], k=RRF_K,
                         weights=fusion_weights(query))[:k]
        v_rank = {c: i + 1 for i, (c, _) in enumerate(vector)}
        l_rank = {c: i + 1 for i, (c, _) in enumerate(lexical)}
        ids = [c for c, _ in ranked]
        if not ids:
            return [], v_rank, l_rank, []
        rows = con.execute("SELECT chunk_id, path, start_line, end_line, symbol, kind, language, text "
                           "FROM chunks WHERE chunk_id IN (SELECT unnest(?::BIGINT[]))", [ids]).fetchall()
        return ranked, v_rank, l_rank, rows

    def _forget_state(self) -> None:
        """Drop the cached state and connection: the next use reads the committed state afresh."""
        self._reader.release()
        self._snapshot = None

    def _still_listed(self, file: str) -> SegmentRecord | None:
        """The committed state's record of ``file`` if, read afresh, it still lists the missing file: damage,
        not a writer that replaced it (a writer deletes a segment only after committing a state without it)."""
        with self._reader.use() as (con, stamp):
            snap = self._current(con, stamp)
        rec = next((r for r in snap.segments if r.file == file), None)
        return rec if rec is not None and not (self.index_dir / file).exists() else None

    def search(self, query: str, *, k: int, mode: str, languages: Sequence[str] = (), paths: Sequence[str] = (),
               exclude_paths: Sequence[str] = (), kinds: Sequence[str] = (), symbol: str | None = None,
               embedder: str | None = None) -> list[SearchResult]:
        if mode not in MODES:
            raise UsageError(f"unknown search mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
        if not query.strip():
            raise UsageError("empty query", hint="pass some words or an identifier")
        if k < 1:
            raise UsageError("k must be at least 1")
        if not self._reader.db_path.exists():
            raise NotIndexedError(f"no index at {self.index_dir}")
        where, params = where_clause(languages, paths, exclude_paths, kinds, symbol)
        n = max(50, 5 * k)
        for attempt in range(VANISHED_RETRIES + 1):
            try:
                with self._reader.use() as (con, stamp):
                    snap = self._current(con, stamp)
                    ranked, v_rank, l_rank, rows = self._answer(con, snap, query, k, n, mode, where, params,
                                                                embedder)
                break
            except FileNotFoundError as exc:  # a writer replaced that segment after we read the state
                missing = Path(exc.filename or "").name
                self._forget_state()
                listed = self._still_listed(missing)
                if listed is not None or attempt == VANISHED_RETRIES:
                    rec = listed or SegmentRecord(-1, missing, 0, "?")
                    raise damage_error([segment_problem(rec, "missing", "segment-missing")],
                                       self.index_dir) from None
                time.sleep(0.01 * 2 ** attempt)
            except DamagedSegment:
                raise
            except (CorruptIndexError, duckdb.Error) as exc:
                # What this process read of the file no longer holds together: a writer changed it under a
                # connection we (or another searcher here) kept. Read it afresh; damage fails again.
                if attempt >= DB_RETRIES:
                    typed = dbm.typed_error(exc, self._reader.db_path) if isinstance(exc, duckdb.Error) else exc
                    if typed is exc:
                        raise
                    raise typed from exc
                log.debug("search: reading %s again after %s", self._reader.db_path, exc)
                self._forget_state()
                dbm.release_readers(self._reader.db_path)
                time.sleep(0.01 * 2 ** attempt)
        if not ranked:
            return []
        by_id = {r[0]: r for r in rows}
        results = []
        for chunk_id, score in ranked:
            r = by_id.get(chunk_id)
            if r is None:
                continue
            results.append(SearchResult(path=r[1], start_line=r[2], end_line=r[3], symbol=r[4] or "", kind=r[5],
                                        language=r[6], score=round(float(score), 6), text=r[7], chunk_id=chunk_id,
                                        vector_rank=v_rank.get(chunk_id), lexical_rank=l_rank.get(chunk_id)))
        return results


def _search_params(index: Any, selector: Any) -> Any:
    """Search parameters carrying ``selector``, of the kind the segment's inner index expects.

    HNSW needs ``SearchParametersHNSW`` to keep its tuned ``efSearch`` (plain ``SearchParameters``
    would not carry it, and passing a selector must not silently change recall).
    """
    import faiss

    from codeindex.store.segments import HNSW_EF_SEARCH

    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from the stubs
        params.efSearch = max(HNSW_EF_SEARCH, inner.hnsw.efSearch)
    else:
        params = faiss.SearchParameters()
    params.sel = selector
    return params
