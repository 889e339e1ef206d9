"""Ranking: Okapi BM25 over the postings, reciprocal-rank fusion of the vector and lexical lists, and
the fusion weights chosen by the query's shape. Pure scoring; the store only fetches postings.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from codeindex.search.analysis import query_tokens, term_key
from codeindex.store.postings import fetch_postings, lex_stats

if TYPE_CHECKING:
    import duckdb

    from codeindex.store.postings import ChunkLengths

K1 = 1.2
"""BM25 term-frequency saturation."""
B = 0.75
"""BM25 length normalisation strength."""

RRF_K = 0
"""Rank damping of the hybrid fusion, ``w / (RRF_K + rank)``. The classic 60 is meant for many rankers
over deep lists; with two rankers judged on their top 10 it blurred the first ranks: on the medium
corpus's 600 docstring queries (MiniLM) hybrid MRR@10 was 0.269 at k=60, below vector alone (0.296),
and 0.308 at k=0 with these weights (``benchmarks/search_quality.py``; it held on both halves of the queries)."""
NATURAL_WEIGHTS = (1.0, 0.6)
"""(vector, lexical) weights for a query in words: the embedding ranks descriptions better. At 0.5 a
chunk second by vector and first by BM25 tied exactly with the vector's first chunk when BM25 did not
list it (1/2 + 0.5/1 = 1/1); a lexical weight just above 0.5 lets the agreeing chunk win, and keeps the
vector's first chunk ahead of anything with weaker lexical support. Chosen on the development sets
(flask questions, ``benchmarks/questions/flask-dev.json``: hit@1 0.656 → 0.688; click and requests
docstrings: MRR@10 0.503 → 0.500; 0.75 and 1.0 gained no more hit@1 and cost docstring MRR), never on
the held-out werkzeug questions."""
IDENTIFIER_WEIGHTS = (0.5, 1.0)
"""(vector, lexical) weights for a query that is one identifier (``parse_file``, ``os.path.join``)."""
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|->)[A-Za-z_$][\w$]*)*")


def fusion_weights(query: str) -> tuple[float, float]:
    """Hybrid weights for ``query``: identifiers lean lexical, everything else leans on vectors.

    An identifier is one token with a code shape: snake_case, camelCase, a dotted or ``::`` path.
    A single plain word ("config") is treated as words.
    """
    q = query.strip()
    if _IDENTIFIER.fullmatch(q) and ("_" in q or "." in q or "::" in q or "->" in q or _has_inner_capital(q)):
        return IDENTIFIER_WEIGHTS
    return NATURAL_WEIGHTS


def _has_inner_capital(word: str) -> bool:
    return any(a.islower() and b.isupper() for a, b in itertools.pairwise(word))


def rrf(
    rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))`` with 1-based ranks.

    RRF needs only ranks, so it fuses BM25 scores and cosine similarities, which live on unrelated
    scales, without calibration. ``k`` damps the advantage of the very first ranks (60 is the value
    from Cormack et al., 2009). An id absent from a ranking contributes nothing from it; an id repeated
    within one ranking counts at its best rank only. Ties go to the id more rankings hold (agreement),
    then to the lower id, so output is deterministic.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    elif len(weights) != len(rankings):
        raise ValueError(f"rrf: {len(weights)} weights for {len(rankings)} rankings")
    if k < 0:
        raise ValueError(f"rrf: k must be >= 0, got {k}")
    scores: dict[int, float] = {}
    held: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[int] = set()
        for rank, doc_id in enumerate(ranking, start=1):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
            held[doc_id] = held.get(doc_id, 0) + 1
    return sorted(scores.items(), key=lambda item: (-round(item[1], 12), -held[item[0]], item[0]))


def bm25_search(
    con: duckdb.DuckDBPyConnection,
    query: str,
    k: int,
    *,
    where_sql: str = "",
    params: Sequence[object] = (),
    lengths: ChunkLengths | None = None,
    stats: Mapping[str, float] | None = None,
) -> list[tuple[int, float]]:
    """Top-``k`` ``(chunk_id, score)`` by Okapi BM25, best first, ties by ascending chunk id.

    ``score(d) = sum over distinct query terms t in d of
    idf(t) * tf * (K1 + 1) / (tf + K1 * (1 - B + B * lex_len(d) / avg_lex_len))`` with
    ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))`` (never negative). ``N``, ``df`` and the average
    length are over the whole index; ``where_sql`` (a boolean SQL expression over ``chunks`` aliased
    ``c``, with ``?`` placeholders bound to ``params``) only filters which chunks are returned.

    DuckDB reads the postings of the query's terms, one equality scan per term (literal ids, so it
    prunes to the blocks holding each term: 2-3x faster than one ``IN`` list); numpy counts ``df`` and
    scores them (summing and ranking ~40k postings in SQL took 2-3x longer). ``lengths`` and ``stats``
    (``lex_stats``), when the caller keeps them for the current state, spare the join with ``chunks``
    and a lookup.
    """
    terms = query_tokens(query)
    if not terms or k <= 0:
        return []
    stats = lex_stats(con) if stats is None else stats
    n_docs = stats.get("n_docs", 0.0)
    total_len = stats.get("total_len", 0.0)
    if n_docs <= 0 or total_len <= 0:
        return []
    fetched = fetch_postings(con, [term_key(t) for t in terms], where_sql=where_sql, params=params, lengths=lengths)
    return _rank(*fetched, n_docs, total_len / n_docs, k)


def _rank(term_ids: np.ndarray, chunk_ids: np.ndarray, tf: np.ndarray, lex_len: np.ndarray, keep: np.ndarray,
          n_docs: float, avg_len: float, k: int) -> list[tuple[int, float]]:
    """BM25 over fetched postings: ``df`` from all rows, scores of the ``keep`` rows summed per chunk,
    top ``k`` by (score desc, chunk id asc). Pure numpy.

    Terms are added one at a time in term-id order, so a chunk's score does not depend on the order
    DuckDB returned its postings in (it changes with clustering): results are bit-for-bit repeatable.
    """
    if not keep.any():
        return []
    keys, term_slot, df = np.unique(term_ids, return_inverse=True, return_counts=True)
    idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
    term_slot, tf, lex_len = term_slot[keep], tf[keep], lex_len[keep]
    uniq, slot = np.unique(chunk_ids[keep], return_inverse=True)
    contrib = idf[term_slot] * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * lex_len / avg_len))
    scores = np.zeros(len(uniq), dtype=np.float64)
    for t in range(len(keys)):
        mine = term_slot == t
        scores += np.bincount(slot[mine], weights=contrib[mine], minlength=len(uniq))
    cand = np.arange(len(uniq))
    if len(cand) > k:  # keep everything tied with the k-th score, then order exactly
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        cand = cand[scores >= kth]
    order = cand[np.lexsort((uniq[cand], -scores[cand]))][:k]
    return [(int(uniq[i]), float(scores[i])) for i in order]
