"""Pieces: line ranges on their way to becoming chunks, and the two pure operations on them.

``merge`` joins small neighbours up to the budget; ``windows`` cuts a range that has no usable
structure into line windows. Both work on estimated token counts (``SourceLines.estimate``); the
exact count happens once, on the final texts, in ``codeindex.chunking.build``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace

from codeindex.chunking.source import SourceLines

TRIVIAL = 3
"""Estimated tokens of a gap (``}``, ``end``) too small to deserve a chunk of its own."""

MAX_CONTEXT_CHARS = 160
"""Each context line (an enclosing signature) of an embedded header is cut to this many characters."""

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
    head: bool = False
    """True for the first piece of a split unit: it holds the unit's signature, so it may join the
    small piece before it like a whole unit would."""


def gap_piece(first: int, last: int, scope: Scope) -> Piece:
    return Piece(first, last, scope.kind, scope.name, scope.context_for(first))


def merge(pieces: Sequence[Piece], lines: SourceLines, limit: int, scope: Scope) -> list[Piece]:
    """Join adjacent non-solo pieces into groups estimated within ``limit``, of balanced sizes.

    A run of joinable pieces too big for one group is cut into as many groups as greedy packing
    needs, but each group stops near the run's average instead of at the limit: greedy packing left
    a full group and a tiny tail (``ctx.args = args`` / ``return args`` as a chunk of their own).
    A joined piece holding exactly one unit keeps that unit's identity; otherwise it takes the
    scope's (the module, or the class whose members were joined). A lone closing brace (a trivial
    piece) joins what it closes even when that is solo.
    """
    est = lines.est_prefix  # ``lines.estimate`` inlined: this loop sees nearly every piece of every file
    folded: list[Piece] = []
    for piece in pieces:
        if folded and not piece.units and est[piece.last + 1] - est[piece.first] <= TRIVIAL:
            prev = folded[-1]
            if prev.start_byte is None and est[piece.last + 1] - est[prev.first] <= limit:
                folded[-1] = _grown(prev, piece.last, prev.kind, prev.name, prev.context, prev.units)
                continue
        folded.append(piece)
    out: list[Piece] = []
    run: list[Piece] = []
    for piece in folded:
        if piece.solo:
            if run:
                _pack(run, est, limit, scope, out)
                run = []
            out.append(piece)
        else:
            run.append(piece)
    if run:
        _pack(run, est, limit, scope, out)
    return out


def _pack(run: list[Piece], est: list[int], limit: int, scope: Scope, out: list[Piece]) -> None:
    """Append ``run`` (adjacent joinable pieces) to ``out`` as balanced groups within ``limit``."""
    total = est[run[-1].last + 1] - est[run[0].first]
    if len(run) == 1 or total <= limit:
        out.append(_joined(run, scope))
        return
    groups, size = 1, 0  # greedy packing: how many groups the run needs at least
    for piece in run:
        n = est[piece.last + 1] - est[piece.first]
        if size and size + n > limit:
            groups, size = groups + 1, 0
        size += n
    target = total / groups
    group: list[Piece] = []
    size = 0
    for piece in run:
        n = est[piece.last + 1] - est[piece.first]
        if group and (size + n > limit or size + n / 2 > target):
            out.append(_joined(group, scope))
            group, size = [], 0
        group.append(piece)
        size += n
    out.append(_joined(group, scope))


def _joined(group: list[Piece], scope: Scope) -> Piece:
    if len(group) == 1:
        return group[0]
    first, last = group[0], group[-1]
    units = sum(p.units for p in group)
    if units == 1:
        owner = next(p for p in group if p.units)
        kind, name = owner.kind, owner.name
    else:
        kind, name = scope.kind, scope.name
    return _grown(first, last.last, kind, name, scope.context_for(first.first), units)


def absorb_small(pieces: Sequence[Piece], lines: SourceLines, limit: int) -> list[Piece]:
    """Pieces of at most ``MIN_LINES`` lines join a neighbour of the same scope when the joined lines fit.

    The last pass over a file's pieces. A tiny piece is a class header whose body was split off
    (``class CliRunner:``), a decorator and signature before a split body, the tail of a scope or
    an import line between two big functions: alone it is a poor search result and a poor
    embedding. It joins the neighbour it belongs with: the same scope first (same name), then a
    scope it opens or closes (one name inside the other), then module-level neighbours; the smaller
    joined piece wins a tie. A piece with no such neighbour within ``limit`` stays (a file that
    small is one piece anyway).
    """
    est = lines.est_prefix
    items = list(pieces)
    out: list[Piece] = []
    i = 0
    while i < len(items):
        piece = items[i]
        if piece.start_byte is None and _line_count(piece, lines) <= MIN_LINES:
            prev = out[-1] if out else None
            nxt = items[i + 1] if i + 1 < len(items) else None
            options: list[tuple[int, int, str]] = []
            if prev is not None and prev.start_byte is None and est[piece.last + 1] - est[prev.first] <= limit:
                score = affinity(piece, prev, False)
                if score:
                    options.append((-score, est[piece.last + 1] - est[prev.first], "prev"))
            if nxt is not None and nxt.start_byte is None and est[nxt.last + 1] - est[piece.first] <= limit:
                score = affinity(piece, nxt, True)
                if score:
                    options.append((-score, est[nxt.last + 1] - est[piece.first], "next"))
            if options:
                side = min(options)[2]
                if side == "prev":
                    assert prev is not None
                    out.pop()
                    items[i] = absorbed(prev, piece, lines)
                else:
                    assert nxt is not None
                    items[i + 1] = absorbed(piece, nxt, lines)
                    i += 1
                continue
        out.append(piece)
        i += 1
    return out


MIN_LINES = 3
"""A piece of this many lines or fewer (blank edges aside) is too small to be a chunk of its own."""


@dataclass(frozen=True, slots=True)
class Whole:
    """Lines ``first..last`` (0-based, inclusive) of a definition that fits the budget as one chunk."""

    first: int
    last: int
    kind: str
    name: str


def keep_whole(pieces: Sequence[Piece], wholes: Sequence[Whole]) -> list[Piece]:
    """``pieces`` (a partition of the lines, in order) with no cut inside any of ``wholes``.

    The splitter keeps a unit that fits whole when it sees the unit as a unit. Where it does not,
    the tree misled it: a macro call parsed as a function whose "declarator" swallows the next 300
    lines (windowed, as lines without structure), or a unit sharing its first line with a statement
    the parser ended early (two nodes on a line: a cluster without a unit, cut inside). The
    definitions query still finds those units, so their spans are the last word: each cut across
    pieces is taken out whole, as a unit piece of its own, and what the cut pieces hold around it
    stays with them (pieces of two lines or fewer there join a neighbour later, like any small
    piece). ``wholes`` come outermost first (by first line, then longest): a definition inside one
    already taken out is whole with it.
    """
    out = list(pieces)
    if not out:
        return out
    starts = [p.first for p in out]
    for whole in wholes:
        if whole.first < out[0].first or whole.last > out[-1].last:
            continue  # not in these lines (a range cut again)
        i = bisect_right(starts, whole.first) - 1
        j = bisect_right(starts, whole.last) - 1
        if i == j:
            continue
        before, after = out[i], out[j]
        parts: list[Piece] = []
        if before.first < whole.first:
            parts.append(replace(before, last=whole.first - 1))
        parts.append(Piece(whole.first, whole.last, whole.kind, whole.name, before.context, units=1, solo=True))
        if whole.last < after.last:
            parts.append(replace(after, first=whole.last + 1, head=False))
        out[i:j + 1] = parts
        starts = [p.first for p in out]
    return out


def _line_count(piece: Piece, lines: SourceLines) -> int:
    span = lines.trim(piece.first, piece.last)
    return 0 if span is None else span[1] - span[0] + 1


def affinity(small: Piece, other: Piece, other_is_next: bool) -> int:
    """How much ``small`` belongs with ``other``: 3 the same scope, 2 one scope inside the other,
    1 whole units (or module-level lines) side by side in one scope, 0 not at all (the tail of a
    split function and the next function: on estimates they never join; ``build._join_small`` lets
    a fragment holding no unit cross, on exact counts, when nothing it belongs with takes it). The
    first piece of a split unit counts as a whole unit for the small piece right before it. Side by
    side in one scope means the same parent name or the same enclosing signatures: Go methods are
    named ``Recv.Method`` yet sit at module level beside the functions."""
    if small.name == other.name:
        return 3
    if other.name.startswith(small.name + ".") or small.name.startswith(other.name + "."):
        return 2
    other_whole = other.units or not other.name or (other.head and other_is_next)
    if (small.units or not small.name) and other_whole \
            and (small.name.rpartition(".")[0] == other.name.rpartition(".")[0] or small.context == other.context):
        return 1
    return 0


def absorbed(a: Piece, b: Piece, lines: SourceLines, across: bool = False) -> Piece:
    """``a`` and the adjacent ``b`` as one piece. A unit's identity wins over a gap's, else the bigger
    piece's; the context is the first piece's (its first line is the joined piece's). ``across`` a
    definition boundary (pieces of unrelated scopes: the tail of one function and the next) the
    context is the owner's too, the other's would put the owner in a scope it is not in; and the
    piece is the head of a split unit only if ``a`` is (``b``'s signature no longer leads it)."""
    if bool(a.units) != bool(b.units):
        owner = a if a.units else b
    else:
        owner = a if lines.estimate(a.first, a.last) >= lines.estimate(b.first, b.last) else b
    return Piece(a.first, b.last, owner.kind, owner.name, owner.context if across else a.context,
                 a.units + b.units, a.solo or b.solo, head=a.head or (b.head and not across))


def _grown(prev: Piece, last: int, kind: str, name: str, context: tuple[str, ...], units: int) -> Piece:
    """``prev`` extended to line ``last``: ``dataclasses.replace`` spelled out, at ~60% of its cost
    (``merge`` does this for most pieces of every file)."""
    return Piece(first=prev.first, last=last, kind=kind, name=name, context=context, units=units,
                 solo=prev.solo, start_byte=prev.start_byte, end_byte=prev.end_byte, head=prev.head)


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
