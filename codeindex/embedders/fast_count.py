"""Exact token counts for BERT WordPiece tokenizers, 6-35x faster than ``tokenizers.encode_batch``.

Chunking asks for the exact token count of every chunk (``ChunkBudget.count_tokens``). The Rust
tokenizer builds full encodings (ids, offsets, masks) at ~1-2 MB/s per core, which made it the largest
cost of parse + chunk. A count needs far less: for a BERT configuration (``BertNormalizer``,
``BertPreTokenizer``, ``WordPiece``) and printable ASCII text, the pipeline reduces to

    lowercase → split into runs of ``[0-9a-z]`` and single punctuation chars → wordpieces per word,

and every printable ASCII punctuation character is exactly one token (in the vocabulary, or
``[UNK]``). So a text of plain ASCII costs one ``bytes.translate`` (lowercase, punctuation → space),
one ``bytes.split`` and a ``sum(map(dict.__getitem__, words))`` over a per-process word → wordpieces
dict, all in C: code repeats its words so much that ~99% are found in that dict.

(A line → tokens cache in front of this answers only the lines that recur in a tree, about half, and
costs a Python call for each of the others: measured on a cold pass over real code, counting whole
texts is ~1.6x faster. The line cache is kept for texts outside the fast path, below.)

Anything outside that subset is delegated, never guessed:

- A text holding non-ASCII or control characters, or an added token (``[MASK]``, matched on the raw
  text by the HF tokenizer), is counted line by line (cached), and such a line is cut at ASCII
  whitespace. Tokens never cross ASCII whitespace (every
  normalisation step acts per character and none turns whitespace into something else or joins its
  neighbours), so such a line counts as the sum of its segments. Clean segments take the fast path;
  the others are counted by the HF tokenizer once each and remembered.
- A ``tokenizer.json`` that is not a BERT WordPiece configuration this module understands yields no
  fast counter (``FastWordPieceCounter.from_file`` returns ``None``) and the caller uses HF for all.

A small probe compares both on load, so a configuration detail missed here degrades to HF, not to
wrong counts.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

log = logging.getLogger("codeindex.embedders")

CACHE_LIMIT = 500_000
"""Entries a word or segment cache may hold before it is cleared (a few tens of MB at most)."""

SlowCount = Callable[[Sequence[str]], list[int]]
"""The reference counter: texts → ``len(encode(text).ids)`` with the real tokenizer."""

_PLAIN = bytes(range(0x20, 0x7F)) + b"\t\n\r"
"""Printable ASCII, tab, LF, CR: text made of these alone takes the fast path. (Other ASCII controls
are dropped by the normalizer, which the fast path does not do.)"""
_PUNCT = bytes(c for c in range(0x21, 0x7F) if not chr(c).isalnum())
"""Printable ASCII other than letters and digits: BERT isolates each as a pre-token of its own."""
_ASCII_WS = re.compile(r"[\t\n\r ]+")

PROBE = (
    "",
    "def parse_config(path: str) -> dict[str, Any]:\n    return json.loads(Path(path).read_text())\n",
    "Über naïve café — 中文字符 😀 \x00\x0b\x7f \ufffd x\u00a0y [MASK] a[CLS]b [mask]",
    "unaffordableness " + "x" * 99 + " " + "y" * 101 + " 0xDEADBEEF __init__ ##foo",
)


_Key = TypeVar("_Key", str, bytes)


class _WordCounts(dict[_Key, int], Generic[_Key]):
    """``word → number of wordpieces`` (or line → tokens), filled on first sight of a key."""

    __slots__ = ("count",)

    def __init__(self, count: Callable[[_Key], int]) -> None:
        super().__init__()
        self.count: Callable[[_Key], int] = count

    def __missing__(self, key: _Key) -> int:
        n = self[key] = self.count(key)
        return n


class FastWordPieceCounter:
    """Counts ``len(tokenizer.encode(text).ids)`` (no truncation) for a BERT WordPiece ``tokenizer.json``.

    Build with ``from_file``; call with a batch of texts. Holds per-process caches, so it is not meant
    to be pickled: a ``TokenCounter`` travels by path and builds its own in each process.
    """

    def __init__(self, vocab: set[str], *, lowercase: bool, prefix: str, max_chars: int, overhead: int,
                 added: Sequence[str], slow: SlowCount) -> None:
        self.vocab = vocab
        self.lowercase = lowercase
        self.prefix = prefix
        self.max_chars = max_chars
        self.overhead = overhead
        """Special tokens the post-processor adds to a single sequence ([CLS] and [SEP]: 2)."""
        self.slow = slow
        self._added = re.compile("|".join(re.escape(a) for a in added)) if added else None
        """Finds added tokens (``[CLS]``, ``[MASK]``...): HF matches them in the raw text before anything else."""
        self._added_starts = tuple(sorted({a[0] for a in added}))
        """First characters of the added tokens: a line without any of them (most lines) skips the search."""
        letters = bytes(range(ord("A"), ord("Z") + 1))
        folded = letters.lower() if lowercase else letters
        self._fold = bytes.maketrans(letters + _PUNCT, folded + b" " * len(_PUNCT))
        """Plain ASCII → its lowercase (if the model lowercases) with punctuation turned into spaces."""
        tails = {t[len(prefix):] for t in vocab if t.startswith(prefix) and len(t) > len(prefix)}
        self._pieces = (vocab, _prefixes(vocab)), (tails, _prefixes(tails))
        """(pieces, their prefixes) for a word's first piece, then for its continuations (``##`` dropped)."""
        self._lines = _WordCounts[str](self._count_line)
        self._words = _WordCounts[bytes](lambda word: self.wordpieces(word.decode("ascii")))
        self._segments = _WordCounts[str](self._slow_segment)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_file(cls, tokenizer_json: Path, slow: SlowCount, *, probe: bool = True) -> FastWordPieceCounter | None:
        """A counter for ``tokenizer_json``, or ``None`` if it is not a configuration handled here.

        ``slow`` is the reference counter, used for odd segments and, when ``probe`` is set, to check
        a few hostile texts once; a disagreement logs a warning and returns ``None``.
        """
        try:
            config = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
            counter = cls._from_config(config, slow)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("no fast token counter for %s: %s", tokenizer_json, exc)
            return None
        if counter is None:
            log.debug("no fast token counter for %s: not a BERT WordPiece configuration", tokenizer_json)
            return None
        if probe:
            fast, reference = counter(PROBE), slow(PROBE)
            if fast != reference:
                log.warning("fast token counter disagrees with the tokenizer on %s (%s != %s); using the "
                            "tokenizer", tokenizer_json, fast, reference)
                return None
        return counter

    @classmethod
    def _from_config(cls, config: dict[str, Any], slow: SlowCount) -> FastWordPieceCounter | None:
        normalizer = config.get("normalizer") or {}
        pre = config.get("pre_tokenizer") or {}
        model = config.get("model") or {}
        if normalizer.get("type") != "BertNormalizer" or pre.get("type") != "BertPreTokenizer":
            return None
        if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            return None
        vocab = model["vocab"]
        if model.get("unk_token") not in vocab:
            return None  # HF fails on unknown words then; leave that behaviour to HF
        added: list[str] = []
        for tok in config.get("added_tokens") or []:
            content = str(tok["content"])
            if (tok.get("normalized") or tok.get("single_word") or tok.get("lstrip") or tok.get("rstrip")
                    or not content or any(c.isspace() for c in content)):
                return None  # matched differently from the plain raw-text match assumed here
            added.append(content)
        overhead = _special_overhead(config.get("post_processor"))
        if overhead is None:
            return None
        return cls(set(vocab), lowercase=bool(normalizer.get("lowercase", True)),
                   prefix=str(model.get("continuing_subword_prefix") or "##"),
                   max_chars=int(model.get("max_input_chars_per_word") or 100),
                   overhead=overhead, added=added, slow=slow)

    # ------------------------------------------------------------------ counting

    def __call__(self, texts: Sequence[str]) -> list[int]:
        for cache in (self._lines, self._words, self._segments):
            if len(cache) > CACHE_LIMIT:
                cache.clear()
        line_tokens = self._lines.__getitem__
        base = self.overhead
        counts = []
        for text in texts:
            data = self._plain(text)
            if data is not None:
                counts.append(base + self._count_plain(data))
            else:
                counts.append(base + sum(map(line_tokens, text.split("\n"))))
        return counts

    def _plain(self, text: str) -> bytes | None:
        """``text`` as bytes if it is printable ASCII (plus tab, LF, CR) without an added token, so
        that the fast path applies; ``None`` otherwise."""
        if not text.isascii():
            return None
        data = text.encode("ascii")
        if data.translate(None, _PLAIN):  # something left once the plain bytes are deleted: a control
            return None
        if (self._added is not None and any(c in text for c in self._added_starts)
                and self._added.search(text) is not None):
            return None
        return data

    def _count_line(self, line: str) -> int:
        """Tokens of one line (no special tokens), for the line cache: about half the lines of a tree
        come here once, the others are cache hits."""
        data = self._plain(line)
        if data is not None:
            return self._count_plain(data)
        total = 0
        for segment in _ASCII_WS.split(line):
            if segment:
                plain = self._plain(segment)
                total += self._count_plain(plain) if plain is not None else self._segments[segment]
        return total

    def _count_plain(self, data: bytes) -> int:
        """Tokens of plain ASCII: one per punctuation character, plus the wordpieces of each run of
        letters and digits. After ``_fold`` the runs are what ``split`` returns, and the spaces it
        added are the punctuation characters."""
        folded = data.translate(self._fold)
        return folded.count(b" ") - data.count(b" ") + sum(map(self._words.__getitem__, folded.split()))

    def _slow_segment(self, segment: str) -> int:
        return self.slow([segment])[0] - self.overhead

    def wordpieces(self, word: str) -> int:
        """Greedy longest-match-first WordPiece: how many pieces ``word`` becomes (``[UNK]`` is one).

        Same result as trying ever shorter substrings, but it walks forward while the text is still
        the prefix of some piece, so a word costs about two set lookups per character.
        """
        if len(word) > self.max_chars:
            return 1
        (pieces_set, prefixes), continuation = self._pieces
        if word in pieces_set:
            return 1  # the longest match at the start is the whole word
        count = start = 0
        while start < len(word):
            best = 0
            for end in range(start + 1, len(word) + 1):
                sub = word[start:end]
                if sub not in prefixes:
                    break
                if sub in pieces_set:
                    best = end
            if not best:
                return 1  # nothing matches here: the whole word is [UNK]
            count += 1
            start = best
            pieces_set, prefixes = continuation
        return count


def _prefixes(pieces: set[str]) -> frozenset[str]:
    """Every non-empty prefix of every piece."""
    return frozenset(p[:i] for p in pieces for i in range(1, len(p) + 1))


def _special_overhead(post: dict[str, Any] | None) -> int | None:
    """Tokens the post-processor adds around a single sequence, or ``None`` if unknown."""
    if post is None:
        return 0
    kind = post.get("type")
    if kind == "BertProcessing":
        return 2
    if kind != "TemplateProcessing":
        return None
    specials = post.get("special_tokens") or {}
    total = 0
    for item in post.get("single") or []:
        if "SpecialToken" in item:
            total += len(specials[item["SpecialToken"]["id"]]["ids"])
        elif "Sequence" not in item:
            return None
    return total
