"""Code-aware lexical analysis: the tokens of chunks and queries, term ids and postings rows. Pure, no I/O.

Shared by indexing (parse tasks on workers build postings with ``postings_table``) and by queries.

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

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyarrow costs ~0.1 s to import: only postings_table needs it
    import pyarrow as pa

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


_KEY_CACHE: dict[str, int] = {}
_KEY_CACHE_MAX = 1 << 20


def term_key(term: str) -> int:
    """The stored id of a term: the first 8 bytes of its blake2b digest as a signed 64-bit integer.

    Stable across processes, machines and versions (part of the storage format). Cached, since a
    corpus repeats its vocabulary: hashing costs ~0.5 us, a cache hit ~50 ns.
    """
    key = _KEY_CACHE.get(term)
    if key is None:
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        digest = hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest()
        key = _KEY_CACHE[term] = int.from_bytes(digest, "little", signed=True)
    return key


def postings_table(
    chunk_ids: Sequence[int], texts: Sequence[str], paths: Sequence[str], symbols: Sequence[str]
) -> tuple[pa.Table, list[int]]:
    """Analyse chunks into an Arrow table ``(term_id, chunk_id, tf)`` and each chunk's ``lex_len``.

    The indexed document is the chunk text plus its path and symbol, so ``analysis.py`` or a class
    name finds a chunk whose body never spells them. Pure (no database), so it can run on workers.
    """
    import pyarrow as pa

    if not (len(chunk_ids) == len(texts) == len(paths) == len(symbols)):
        raise ValueError("postings_table: chunk_ids, texts, paths and symbols differ in length")
    keys: list[int] = []
    ids: list[int] = []
    tfs: list[int] = []
    lex_lens: list[int] = []
    key_of = term_key
    for chunk_id, text, path, symbol in zip(chunk_ids, texts, paths, symbols, strict=True):
        counts = Counter(code_tokens(f"{text}\n{path}\n{symbol}"))
        keys.extend(map(key_of, counts.keys()))
        tfs.extend(counts.values())
        ids.extend([chunk_id] * len(counts))
        lex_lens.append(counts.total())
    table = pa.table(
        [pa.array(keys, pa.int64()), pa.array(ids, pa.int64()), pa.array(tfs, pa.int32())],
        schema=pa.schema([("term_id", pa.int64()), ("chunk_id", pa.int64()), ("tf", pa.int32())]),
    )
    return table, lex_lens


def clear_caches() -> None:
    """Forget the cached word analyses and term ids (what a fresh worker process starts with)."""
    _analyse_word.cache_clear()
    _KEY_CACHE.clear()
