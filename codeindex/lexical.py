"""Code-aware lexical analysis and reciprocal-rank fusion. Pure functions, no I/O.

Why code-aware: source code names one concept many ways (``parseFile``, ``parse_file``,
``parse-file``, the words "parse file" in a comment). A plain word tokenizer sees ``parsefile`` and
``parse_file`` as unrelated terms. Here every identifier yields its whole lowercased form *and* its
parts, so each spelling shares the part terms ``parse`` and ``file`` with the others, while an exact
identifier still earns the extra, rarer whole-identifier term and ranks first.

Rules (documented in ``docs/explanation/search.md``):

* A *word* is a maximal run of Unicode letters, digits and ``_``; words joined by single ``-``
  where the next character is a letter form one kebab-case word (``max-tokens``; ``x-1`` does not).
* Each word is emitted lowercased, whole, then split at ``_``/``-``, at lower→upper case changes
  (``parseFile``), before the last capital of a capital run followed by lowercase (``HTTPServer``)
  and at letter↔digit changes (``utf8``). Parts identical to the whole word are not repeated.
* Nothing is dropped for being short: a one-letter variable is a legitimate query, and BM25's idf
  already makes frequent short terms cheap. Words longer than ``MAX_WORD`` characters (hashes,
  base64 blobs, minified code) are dropped: they bloat the vocabulary and nobody types them.
* No stoplist: language keywords get a low idf from BM25 itself, and "return None" is a fair query.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

MAX_WORD = 64
"""Words longer than this are ignored (see module docstring)."""

# A word: letters/digits/underscore runs, optionally kebab-joined when a letter follows the hyphen.
_WORD = re.compile(r"\w+(?:-(?=[^\W\d_])\w+)*")


@lru_cache(maxsize=1 << 18)
def _analyse_word(word: str) -> tuple[str, ...]:
    """Whole lowercased word followed by its distinct-from-whole parts. Cached: vocabularies repeat."""
    lower = word.lower()
    parts: list[str] = []
    current: list[str] = []
    prev = ""  # class of the previous character: "u" upper, "l" lower/caseless letter, "d" digit
    n = len(word)
    for i, ch in enumerate(word):
        if ch == "_" or ch == "-":
            if current:
                parts.append("".join(current))
                current = []
            prev = ""
            continue
        if ch.isdigit():
            cls = "d"
        elif ch.isupper():
            cls = "u"
        else:
            cls = "l"
        if current:
            boundary = (
                (cls == "d") != (prev == "d")  # letter <-> digit
                or (prev == "l" and cls == "u")  # parse|File
                # HTTP|Server: an upper followed by a lower starts a new part after an upper run
                or (prev == "u" and cls == "u" and i + 1 < n and word[i + 1].islower())
            )
            if boundary:
                parts.append("".join(current))
                current = []
        current.append(ch)
        prev = cls
    if current:
        parts.append("".join(current))
    if len(parts) == 1 and parts[0] == word:
        return (lower,)
    return (lower, *(p.lower() for p in parts))


def code_tokens(text: str) -> list[str]:
    """Lowercased code-aware tokens of ``text``: each word whole, then its parts, in text order.

    >>> code_tokens("parseFile(x)")
    ['parsefile', 'parse', 'file', 'x']
    """
    tokens: list[str] = []
    extend = tokens.extend
    for word in _WORD.findall(text):
        if len(word) <= MAX_WORD:
            extend(_analyse_word(word))
    return tokens


def query_tokens(query: str) -> list[str]:
    """Distinct analysed terms of a query, first occurrence order.

    The same analysis as documents, so "parse file", ``parse_file`` and ``parseFile`` all reach chunks
    containing any of those spellings through the shared part terms. Duplicates are dropped because
    BM25 sums over distinct query terms.
    """
    return list(dict.fromkeys(code_tokens(query)))


def term_frequencies(text: str) -> tuple[dict[str, int], int]:
    """Term frequency per term and the document length in tokens (what BM25 normalises by)."""
    tokens = code_tokens(text)
    return dict(Counter(tokens)), len(tokens)


def rrf(
    rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))`` with 1-based ranks.

    RRF needs only ranks, so it fuses BM25 scores and cosine similarities, which live on unrelated
    scales, without calibration. ``k`` damps the advantage of the very first ranks (60 is the value
    from Cormack et al., 2009). An id absent from a ranking contributes nothing from it; an id repeated
    within one ranking counts at its best rank only. Ties break by ascending id, so output is
    deterministic.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    elif len(weights) != len(rankings):
        raise ValueError(f"rrf: {len(weights)} weights for {len(rankings)} rankings")
    if k < 0:
        raise ValueError(f"rrf: k must be >= 0, got {k}")
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[int] = set()
        for rank, doc_id in enumerate(ranking, start=1):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
