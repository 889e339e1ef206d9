"""One file's bytes seen as lines: offsets, blank flags and a cheap token estimate per line.

Everything downstream works on line indices (0-based here, 1-based only in ``Chunk``), so that
chunks partition the file's lines and byte spans always point into the original bytes, even when
the file is not valid UTF-8.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import accumulate
from operator import add

# Tokens per non-blank byte. Measured with the MiniLM WordPiece tokenizer on real code: the median is
# ~0.35-0.45 for ASCII code; non-ASCII text (CJK, emoji) costs about one token per character, i.e.
# ~0.35-0.5 per UTF-8 byte, with a long tail. The estimate only steers decisions: every final chunk
# is counted exactly, and one that overflows is split again.
ASCII_TOKENS_PER_BYTE = 0.45
OTHER_TOKENS_PER_BYTE = 0.6


def estimate_tokens(data: bytes) -> int:
    """A cheap token estimate for ``data`` (no tokenizer call)."""
    return _estimate_compact(data.translate(None, b" \t"))


def _estimate_compact(data: bytes) -> int:
    """``estimate_tokens`` of bytes that hold no spaces or tabs."""
    rate = ASCII_TOKENS_PER_BYTE if data.isascii() else OTHER_TOKENS_PER_BYTE
    return int(len(data) * rate) + 1


@dataclass(slots=True)
class SourceLines:
    """Line geometry of one file. ``starts[i]`` is the byte offset of line ``i``."""

    data: bytes
    starts: list[int]
    ends: list[int]
    """Byte offset just past line ``i``'s content (before its newline)."""
    blank: list[bool]
    est_prefix: list[int]
    """``est_prefix[i]`` = estimated tokens of lines ``0..i-1``."""

    @classmethod
    def from_bytes(cls, data: bytes) -> SourceLines:
        # Whole-buffer operations and list comprehensions instead of a per-line loop of method calls:
        # this runs over every line of every file. A line's estimate counts its bytes other than spaces
        # and tabs, so the lines of ``data`` with those deleted give it by length alone.
        lengths = list(map(len, data.split(b"\n")))
        starts = [0, *accumulate(n + 1 for n in lengths[:-1])]
        ends = list(map(add, starts, lengths))
        compact = data.translate(None, b" \t").split(b"\n")
        if data.isascii():
            ests = [int(len(c) * ASCII_TOKENS_PER_BYTE) + 1 if c.strip() else 0 for c in compact]
        else:
            ests = [_estimate_compact(c) if c.strip() else 0 for c in compact]
        blank = [not e for e in ests]  # a non-blank line is estimated at one token at least
        return cls(data=data, starts=starts, ends=ends, blank=blank, est_prefix=[0, *accumulate(ests)])

    def __len__(self) -> int:
        return len(self.starts)

    def estimate(self, first: int, last: int) -> int:
        """Estimated tokens of lines ``first..last`` (inclusive)."""
        return self.est_prefix[last + 1] - self.est_prefix[first]

    def text(self, start_byte: int, end_byte: int) -> str:
        return self.data[start_byte:end_byte].decode("utf-8", errors="replace")

    def line_text(self, line: int) -> str:
        return self.text(self.starts[line], self.ends[line])

    def line_of(self, byte: int) -> int:
        """The line holding byte offset ``byte``."""
        from bisect import bisect_right

        return max(0, bisect_right(self.starts, byte) - 1)

    def trim(self, first: int, last: int) -> tuple[int, int] | None:
        """Drop blank lines at both ends of ``first..last``; ``None`` if all are blank."""
        while first <= last and self.blank[first]:
            first += 1
        while last >= first and self.blank[last]:
            last -= 1
        return (first, last) if first <= last else None


@functools.lru_cache(maxsize=1 << 16)
def module_path(path: str) -> str:
    """``pkg/sub/mod.py`` → ``pkg.sub.mod``: the prefix of every symbol in the file.

    Cached: search grouping asks it for every candidate of every query, the chunker for every chunk.
    """
    p = path.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    head, _, name = p.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return ".".join([*(part for part in head.split("/") if part), stem or name])
