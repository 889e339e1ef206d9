"""Pieces: line ranges on their way to becoming chunks, and the two pure operations on them.

``merge`` joins small neighbours up to the budget; ``windows`` cuts a range that has no usable
structure into line windows. Both work on estimated token counts (``SourceLines.estimate``); the
exact count happens once, on the final texts, in ``codeindex.chunking.build``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codeindex.chunking.source import SourceLines

TRIVIAL = 3
"""Estimated tokens of a gap (``}``, ``end``) too small to deserve a chunk of its own."""

SOLO_SHARE = 4
"""A whole unit estimated above ``limit / SOLO_SHARE`` keeps its own chunk (and its own symbol)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where pieces live: the enclosing unit (or the module) and its signature lines."""

    kind: str = "module"
    name: str = ""
    """In-file name, e.g. ``Outer.method``; empty at module level."""
    context: tuple[str, ...] = ()
    """Signature lines of the enclosing units, outermost first (the header of pieces inside)."""
    outer_context: tuple[str, ...] = ()
    """``context`` without this unit's own signature: used by the piece holding that signature."""
    first_line: int = -1
    """The line the unit starts on; a piece starting at or before it already shows the signature."""

    def context_for(self, first: int) -> tuple[str, ...]:
        return self.outer_context if first <= self.first_line else self.context


@dataclass(slots=True)
class Piece:
    """Lines ``first..last`` (0-based, inclusive) of one future chunk.

    A value: never changed once made (``dataclasses.replace`` makes a changed copy). Not declared
    frozen because a frozen dataclass sets each field through ``object.__setattr__``, which made
    creating pieces (hundreds of thousands on a medium tree) ~20% of splitting.

    ``start_byte``/``end_byte`` are set only for a piece that is part of a single over-long line.
    """

    first: int
    last: int
    kind: str
    name: str
    context: tuple[str, ...]
    units: int = 0
    """How many whole units (functions, classes, ...) the piece holds."""
    solo: bool = False
    """True for a big whole unit or a part of a split unit: never merged with neighbours."""
    start_byte: int | None = None
    end_byte: int | None = None


def gap_piece(first: int, last: int, scope: Scope) -> Piece:
    return Piece(first, last, scope.kind, scope.name, scope.context_for(first))


def merge(pieces: Sequence[Piece], lines: SourceLines, limit: int, scope: Scope) -> list[Piece]:
    """Join adjacent non-solo pieces while the joined lines are estimated within ``limit``.

    A joined piece holding exactly one unit keeps that unit's identity; otherwise it takes the
    scope's (the module, or the class whose members were joined).
    """
    est = lines.est_prefix  # ``lines.estimate`` inlined: this loop sees nearly every piece of every file
    out: list[Piece] = []
    prev: Piece | None = None
    for piece in pieces:
        if prev is not None:
            joined = est[piece.last + 1] - est[prev.first]
            if not prev.solo and not piece.solo and joined <= limit:
                units = prev.units + piece.units
                if units == 1:
                    owner = prev if prev.units else piece
                    kind, name = owner.kind, owner.name
                else:
                    kind, name = scope.kind, scope.name
                prev = out[-1] = _grown(prev, piece.last, kind, name, scope.context_for(prev.first), units)
                continue
            if not piece.units and est[piece.last + 1] - est[piece.first] <= TRIVIAL and joined <= limit:
                # a lone closing brace joins what it closes
                prev = out[-1] = _grown(prev, piece.last, prev.kind, prev.name, prev.context, prev.units)
                continue
        out.append(piece)
        prev = piece
    return out


def _grown(prev: Piece, last: int, kind: str, name: str, context: tuple[str, ...], units: int) -> Piece:
    """``prev`` extended to line ``last``: ``dataclasses.replace`` spelled out, at ~60% of its cost
    (``merge`` does this for most pieces of every file)."""
    return Piece(first=prev.first, last=last, kind=kind, name=name, context=context, units=units,
                 solo=prev.solo, start_byte=prev.start_byte, end_byte=prev.end_byte)


def windows(first: int, last: int, lines: SourceLines, limit: int) -> list[tuple[int, int]]:
    """Greedy line windows over ``first..last``, each estimated within ``limit``.

    A single line estimated above ``limit`` becomes a window of its own; the exact-count stage
    splits it by characters.
    """
    out: list[tuple[int, int]] = []
    start = first
    for line in range(first, last + 1):
        if line > start and lines.estimate(start, line) > limit:
            out.append((start, line - 1))
            start = line
    if start <= last:
        out.append((start, last))
    return out
