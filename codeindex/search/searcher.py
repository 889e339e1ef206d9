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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from codeindex.config import Config
from codeindex.embedders.choice import settings_from_config
from codeindex.errors import CorruptIndexError, ModelMismatchError, NotIndexedError, UsageError
from codeindex.search.filters import where_clause
from codeindex.search.grouping import GROUPINGS, Group, group_results, in_file_name
from codeindex.search.ranking import RRF_K, bm25_search, fusion_weights, rrf
from codeindex.search.state import PLACE_COLUMNS, Snapshot
from codeindex.search.symbols import IdentifierQuery, parse_identifier, rank_definitions
from codeindex.search.validate import FilterVocabulary, check_k
from codeindex.store import db as dbm
from codeindex.store.integrity import DamagedSegment, SegmentRecord, damage_error, load_segment, segment_problem
from codeindex.store.reader import ReadConnection, Stamp
from codeindex.store.symbols import SymbolRow, definitions_named, definitions_of

MODES = ("hybrid", "vector", "lexical")

VANISHED_RETRIES = 4
"""Times a search re-reads the committed state after a segment it was about to load vanished."""
DB_RETRIES = 2
"""Times a search reopens the database after a read that failed (damage fails every time)."""

log = logging.getLogger("codeindex.search")


@dataclass(slots=True)
class SearchResult:
    """One hit: a chunk of a file. Results come best first.

    ``path`` is relative to the indexed root (POSIX separators); ``start_line``/``end_line`` are 1-based
    and inclusive; ``symbol`` is the enclosing definition's dotted name (empty for text between
    definitions); ``kind`` is the chunk's kind as its parser names it (``function``, ``class``,
    ``method``, ``section``...); ``text`` is the chunk's source text; ``chunk_id`` identifies the chunk
    within one committed state of the index.

    ``score`` depends on the mode, and only orders the results of one query (never compare it across
    modes or queries):

    * ``vector``: the cosine similarity of query and chunk embeddings (inner product of unit
      vectors), at most 1; higher is closer.
    * ``lexical``: the BM25 score of the query's code-aware tokens in the chunk; 0 or more, unbounded.
    * ``hybrid``: the weighted reciprocal-rank fusion of both lists, the sum of ``weight / rank`` over
      the lists that hold the chunk (``search/ranking.py``: weights 1.0 vector / 0.6 lexical for a
      query in words, 0.5 / 1.0 for one identifier), so at most 1.6, for a chunk first in both.

    ``vector_rank`` and ``lexical_rank`` are the chunk's 1-based places in the vector and lexical
    candidate lists (None when it was not a candidate there), so a hybrid hit says why it came up.
    """

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
    exact_definition: bool = False
    """The query named this result's definition (an identifier lookup): ranked above fused results."""
    definition: str | None = None
    """The in-file name of the definition this piece belongs to (``Console.print``), when it has one."""
    definition_lines: list[int] | None = None
    """``[first, last]`` of that definition: all of it, even when this piece is one of several."""
    other_ranges: list[list[int]] = field(default_factory=list)
    """``[first, last]`` of the other pieces grouped into this result (same definition, or same file)."""
    before: list[str] = field(default_factory=list)
    """With ``context=N``: the N lines before ``start_line`` (fewer at the top of the file)."""
    after: list[str] = field(default_factory=list)

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
        self._vocabulary = FilterVocabulary()

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

    def warm(self) -> None:
        """Load what the committed state says now (segments, selectors, chunk lengths, vector map).

        A long-lived process calls this in idle time after a commit, so that no query pays for it.
        """
        if not self._reader.db_path.exists():
            return
        try:
            with self._reader.use() as (con, stamp):
                snap = self._current(con, stamp)
                snap.queries = max(snap.queries, 2)  # warm from now on: the heavy parts load below
                snap.chunk_lengths(con)
                snap.vectors(con)
                snap.places(con)
                snap.definitions(con)
                self._dead_selectors(con, snap)
                self._load_segments(snap.segments)
        except FileNotFoundError:  # a writer replaced a segment meanwhile: the next search reads afresh
            self._forget_state()

    # ------------------------------------------------------------------ look-ups (search/lookup.py)

    def definitions(self, name: str, *, k: int) -> list[Any]:
        """Definitions named ``name`` (exact or qualified), on the kept read connection."""
        from codeindex.search.lookup import find_definitions

        if not self._reader.db_path.exists():
            raise NotIndexedError(f"no index at {self.index_dir}")
        with self._reader.use() as (con, _):
            return find_definitions(con, name, k=k)

    def indexed_hash(self, path: str) -> str:
        """The content hash the index holds for the indexed file ``path`` (a usage error otherwise)."""
        from codeindex.search.lookup import indexed_hash

        if not self._reader.db_path.exists():
            raise NotIndexedError(f"no index at {self.index_dir}")
        with self._reader.use() as (con, _):
            return indexed_hash(con, path)

    # ------------------------------------------------------------------ entry point

    @property
    def coverage(self) -> tuple[int, int] | None:
        """(chunks with vectors, chunks) of the state the last search read, while a build is unfinished.

        None when every chunk has its vector. Read from what the commit recorded (meta and BM25
        statistics), so asking costs nothing.
        """
        snap = self._snapshot
        if snap is None:
            return None
        pending = int(snap.meta.get("chunks_pending", "0") or 0)
        if not pending:
            return None
        chunks = int(snap.lex_stats.get("n_docs", 0))
        return max(0, chunks - pending), chunks

    def close(self) -> None:
        """Close the database connection now (it is also closed when idle, or when a writer runs)."""
        self._reader.release()

    def meta(self) -> dict[str, str]:
        """The ``meta`` table of the state the last search read (empty before the first search)."""
        return dict(self._snapshot.meta) if self._snapshot is not None else {}

    def _current(self, con: duckdb.DuckDBPyConnection, stamp: Stamp) -> Snapshot:
        snap = self._snapshot
        if snap is None or snap.stamp != stamp:
            snap = self._snapshot = Snapshot.read(con, stamp, self._reader.db_path)
        snap.queries += 1
        return snap

    def _answer(self, con: duckdb.DuckDBPyConnection, stamp: Stamp, query: str, k: int, n: int, mode: str,
                where: str, params: list[Any], embedder: str | None, *, group: str, rerank: Any, context: int,
                languages: Sequence[str], kinds: Sequence[str]) -> list[SearchResult]:
        """The results of one committed state: candidates, fusion, exact definitions, reranking, grouping."""
        snap = self._current(con, stamp)
        self._vocabulary.check(con, stamp, languages, kinds)
        vector: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if mode in ("hybrid", "vector"):
            vector = self._vector_candidates(con, snap, query, n, where, params, embedder)
        if mode in ("hybrid", "lexical"):
            lexical = bm25_search(con, query, n, where_sql=where, params=params,
                                  lengths=snap.chunk_lengths(con), stats=snap.lex_stats)
        if mode == "vector":
            ranked = vector
        elif mode == "lexical":
            ranked = lexical
        else:
            ranked = rrf([[c for c, _ in vector], [c for c, _ in lexical]], k=RRF_K,
                         weights=fusion_weights(query))[:n]
        ident = parse_identifier(query) if mode != "vector" else None
        exact = self._definition_chunks(con, snap, ident, [c for c, _ in ranked], where, params) if ident else []
        pinned = set(exact)
        order = exact + [c for c, _ in ranked if c not in pinned]
        if not order:
            return []
        # the candidates' places first; texts only for what a reranker reads and what is returned
        places = snap.places(con)
        if places is not None:
            rows = {r[0]: _Row(*r, "") for r in places.of(order)}
        else:
            rows = {r[0]: _Row(*r) for r in con.execute(
                f"SELECT {', '.join(PLACE_COLUMNS)}, '' FROM chunks WHERE chunk_id IN (SELECT unnest(?::BIGINT[]))",
                [order]).fetchall()}
        rest = [c for c in order[len(exact):] if c in rows]
        if rerank is not None:
            _fill_texts(con, [rows[c] for c in rest[:RERANK_DEPTH]])
            rest = _reranked(rerank, query, rest, rows, dict(ranked))
        hits = [rows[c] for c in [*exact, *rest] if c in rows]
        names = [(p, q) for p, q in {(h.path, in_file_name(h.path, h.symbol)) for h in hits} if q is not None]
        by_name = snap.definitions(con)
        definitions = by_name.of(con, names) if by_name is not None else definitions_of(con, names)
        groups = group_results(hits, definitions, group, k)
        _fill_texts(con, [g.row for g in groups])
        around = {g.row.chunk_id: _context_lines(con, g.row, context) for g in groups} if context else {}
        scores = dict(ranked)
        v_rank = {c: i + 1 for i, (c, _) in enumerate(vector)}
        l_rank = {c: i + 1 for i, (c, _) in enumerate(lexical)}
        return [_result(g, scores, v_rank, l_rank, pinned, around.get(g.row.chunk_id, ([], []))) for g in groups]

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
               embedder: str | None = None, group: str = "definition", context: int = 0,
               reranker: str | None = None) -> list[SearchResult]:
        """The top ``k`` results for ``query``.

        Stages: vector and/or lexical candidates, fused (hybrid); for an identifier-shaped query in
        hybrid or lexical mode, the definitions it names first (``search/symbols.py``); an optional
        reranker plugin over the rest; then grouping (``search/grouping.py``): by default at most one
        result per definition. ``context`` adds that many lines before and after each result.
        """
        if mode not in MODES:
            raise UsageError(f"unknown search mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
        if group not in GROUPINGS:
            raise UsageError(f"unknown grouping {group!r}", hint=f"use one of {', '.join(GROUPINGS)}")
        if not query.strip():
            raise UsageError("empty query", hint="pass some words or an identifier")
        check_k(k)
        if context < 0:
            raise UsageError("context must be 0 or more lines")
        rerank = self._reranker(reranker) if reranker else None
        if not self._reader.db_path.exists():
            raise NotIndexedError(f"no index at {self.index_dir}")
        where, params = where_clause(languages, paths, exclude_paths, kinds, symbol)
        n = max(50, 5 * k) if group == "none" else max(100, 10 * k)  # grouping folds pieces: look deeper
        for attempt in range(VANISHED_RETRIES + 1):
            try:
                with self._reader.use() as (con, stamp):
                    return self._answer(con, stamp, query, k, n, mode, where, params, embedder, group=group,
                                        rerank=rerank, context=context, languages=languages, kinds=kinds)
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
        raise AssertionError("every attempt returns or raises")

    def _definition_chunks(self, con: duckdb.DuckDBPyConnection, snap: Snapshot, ident: IdentifierQuery,
                           fused: Sequence[int], where: str, params: list[Any]) -> list[int]:
        """Chunk ids of the definitions ``ident`` names, best first: each definition's chunk is the one
        holding its first line (its signature or decorator), among the chunks the filters allow."""
        by_name, places = snap.definitions(con), snap.places(con)
        named = by_name.named(con, ident.name) if by_name is not None else definitions_named(con, ident.name)
        if not named:
            return []
        if places is not None and not where:
            spans = places.in_paths(sorted({d.path for d in named}))
        else:
            extra = f" AND {where}" if where else ""
            spans = con.execute(f"SELECT c.chunk_id, c.path, c.start_line, c.end_line FROM chunks c WHERE c.path IN "
                                f"(SELECT unnest(?::VARCHAR[])){extra}",
                                [sorted({d.path for d in named}), *params]).fetchall()
        by_path: dict[str, list[tuple[int, int, int]]] = {}
        for chunk_id, path, first, last in spans:
            by_path.setdefault(path, []).append((first, last, chunk_id))
        chunk_of: dict[SymbolRow, int] = {}
        for d in named:
            for first, last, chunk_id in by_path.get(d.path, ()):
                if first <= d.start_line <= last:
                    chunk_of[d] = chunk_id
                    break
        position = {c: i for i, c in enumerate(fused)}
        fused_rank = {d: position.get(c, len(position)) for d, c in chunk_of.items()}
        out: list[int] = []
        for d in rank_definitions(ident, [d for d in named if d in chunk_of], fused_rank):
            if chunk_of[d] not in out:
                out.append(chunk_of[d])
        return out

    def _reranker(self, name: str) -> Any:
        from codeindex.plugins import get_plugin_manager

        return get_plugin_manager().reranker(name)


@dataclass(slots=True)
class _Row:
    chunk_id: int
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    text: str


def _fill_texts(con: duckdb.DuckDBPyConnection, rows: Sequence[_Row]) -> None:
    """Read the display text of ``rows`` (one query; a result's text is most of its bytes)."""
    wanted = [r.chunk_id for r in rows if not r.text]
    if not wanted:
        return
    texts = dict(con.execute("SELECT chunk_id, text FROM chunks WHERE chunk_id IN (SELECT unnest(?::BIGINT[]))",
                             [wanted]).fetchall())
    for r in rows:
        r.text = texts.get(r.chunk_id, r.text)


RERANK_DEPTH = 50
"""How many fused candidates a reranker sees (after the exact definitions, which it never moves)."""


def _reranked(reranker: Any, query: str, ids: list[int], rows: dict[int, _Row],
              scores: dict[int, float]) -> list[int]:
    """``ids`` with the first ``RERANK_DEPTH`` reordered by the reranker's scores (ties keep their order)."""
    from codeindex.hookspecs import RerankCandidate

    head, tail = ids[:RERANK_DEPTH], ids[RERANK_DEPTH:]
    candidates = [RerankCandidate(chunk_id=c, path=rows[c].path, start_line=rows[c].start_line,
                                  end_line=rows[c].end_line, symbol=rows[c].symbol or "", kind=rows[c].kind,
                                  language=rows[c].language, text=rows[c].text, score=scores.get(c, 0.0))
                  for c in head]
    new_scores = list(reranker.rerank(query, candidates))
    if len(new_scores) != len(head):
        raise UsageError(f"reranker {reranker.name!r} returned {len(new_scores)} scores for {len(head)} candidates")
    order = sorted(range(len(head)), key=lambda i: (-float(new_scores[i]), i))
    return [head[i] for i in order] + tail


def _context_lines(con: duckdb.DuckDBPyConnection, row: _Row, n: int) -> tuple[list[str], list[str]]:
    """The ``n`` lines before and after ``row``, rebuilt from the stored chunks of its file (the
    chunks cover every non-blank line, so a line no chunk holds is blank)."""
    first, last = max(1, row.start_line - n), row.end_line + n
    text_of: dict[int, str] = {}
    for start_line, text in con.execute("SELECT start_line, text FROM chunks WHERE path = ? AND end_line >= ? "
                                        "AND start_line <= ?", [row.path, first, last]).fetchall():
        for i, line in enumerate(text.split("\n")):
            text_of.setdefault(start_line + i, line)
    known_last = max(text_of, default=row.end_line)
    before = [text_of.get(i, "") for i in range(first, row.start_line)]
    after = [text_of.get(i, "") for i in range(row.end_line + 1, min(last, known_last) + 1)]
    return before, after


def _result(group: Group, scores: dict[int, float], v_rank: dict[int, int], l_rank: dict[int, int],
            pinned: set[int], around: tuple[list[str], list[str]]) -> SearchResult:
    r = group.row
    d = group.definition
    return SearchResult(path=r.path, start_line=r.start_line, end_line=r.end_line, symbol=r.symbol or "", kind=r.kind,
                        language=r.language, score=round(float(scores.get(r.chunk_id, 0.0)), 6), text=r.text,
                        chunk_id=r.chunk_id, vector_rank=v_rank.get(r.chunk_id), lexical_rank=l_rank.get(r.chunk_id),
                        exact_definition=r.chunk_id in pinned,
                        definition=d.qualified if d is not None else None,
                        definition_lines=[d.start_line, d.end_line] if d is not None else None,
                        other_ranges=[[a, b] for a, b in group.others], before=around[0], after=around[1])


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
