"""Pieces → ``Chunk`` records, with exact token counts and a fix-up for estimates that were wrong.

The model tokenizer is called once per round with every pending text in one batch. Round one
covers all chunks; later rounds only the parts of the (few) chunks whose exact count overflowed the
budget. Over-long multi-line pieces are re-windowed with their measured token rate; a single
over-long line (minified code) is cut by characters at UTF-8 boundaries.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from codeindex.chunking.pieces import MAX_CONTEXT_CHARS, MIN_LINES, Piece, absorbed, affinity, windows
from codeindex.chunking.source import SourceLines, estimate_tokens, module_path
from codeindex.hookspecs import ChunkBudget
from codeindex.models import Chunk

MAX_ROUNDS = 8

JOIN_ROUNDS = 3
"""Rounds of ``_join_small``: a small chunk whose preferred neighbour turned out too full tries the
other one next round (one batched tokenizer call per round, for the few joins proposed)."""


def header(language: str, kind: str, name: str, context: Sequence[str], max_tokens: int | None = None) -> str:
    """The embed-text header: language, kind, in-file name, enclosing signatures. Never the path.

    With ``max_tokens``, outer signatures are dropped while the header is estimated above a third
    of it; the innermost is always kept: it says most, and the code needs the room.
    """
    first = f"{language} {kind} {name}".rstrip()
    lines = [c[:MAX_CONTEXT_CHARS] for c in context]
    text = "\n".join([first, *lines]) + "\n"
    if max_tokens is None:
        return text
    while len(lines) > 1 and estimate_tokens(text.encode()) > max_tokens // 3:
        lines = lines[1:]
        text = "\n".join([first, *lines]) + "\n"
    est = estimate_tokens(text.encode())
    if lines and est > max_tokens // 3:  # a tiny budget: even the innermost signature is cut short
        keep = max(8, int(len(lines[0]) * (max_tokens // 3) / est))
        text = "\n".join([first, lines[0][:keep]]) + "\n"
    return text


def header_allowance(language: str, context: Sequence[str]) -> int:
    """Estimated tokens a header takes, with slack for the name and the tokenizer's special tokens."""
    return estimate_tokens(header(language, "function", "", context).encode()) + 12


Resplit = Callable[[int, int, float], list[Piece]]
"""``(first, last, limit)`` → lines ``first..last`` split again into pieces estimated within ``limit``
(the room the piece's header leaves, over its measured rate): how a syntax-aware parser cuts an
overflowing piece at statements."""


def build_chunks(pieces: Sequence[Piece], lines: SourceLines, path: str, language: str,
                 budget: ChunkBudget, resplit: Resplit | None = None, join_small: bool = False) -> list[Chunk]:
    """Turn pieces into chunks whose ``embed_text`` fits ``budget`` (exactly counted).

    A multi-line piece that overflows is cut again by ``resplit`` when the parser gives one (at
    statements, scopes kept), else into line windows at its measured token rate. With
    ``join_small`` (parsers whose pieces went through ``pieces.absorb_small``), chunks that are
    still tiny join a neighbour on exact counts (``_join_small``).
    """
    modpath = module_path(path)
    pending = _trimmed(pieces, lines)

    done: list[tuple[Piece, Chunk]] = []
    for round_no in range(MAX_ROUNDS):
        if not pending:
            break
        chunks = [_make_chunk(p, lines, path, language, modpath, budget.max_tokens) for p in pending]
        counts = budget.count_tokens([c.embed_text for c in chunks])
        retry: list[Piece] = []
        last_round = round_no == MAX_ROUNDS - 1
        for piece, chunk, count, members in _overflow_runs(pending, chunks, counts, lines, budget.max_tokens,
                                                           join=not last_round):
            parts = None
            if count > budget.max_tokens and not last_round:
                if piece.context and piece.units:  # a whole unit: first without the enclosing signatures
                    retry.append(replace(piece, context=()))
                    continue
                parts = _split_again(piece, chunk, count, lines, budget.max_tokens, resplit)
                if len(members) > 1 and parts is not None \
                        and [(p.first, p.last) for p in parts] == [(m.first, m.last) for m, _, _ in members]:
                    parts = None  # the run cuts back into its pieces: each is cut on its own instead
            if parts:
                retry.extend(parts)
                continue
            for member, member_chunk, member_count in members:
                member_chunk.n_tokens = member_count
                member_parts = None
                if len(members) > 1:
                    member_parts = _split_again(member, member_chunk, member_count, lines, budget.max_tokens,
                                                resplit)
                if member_parts:
                    retry.extend(member_parts)
                else:
                    done.append((member, member_chunk))
        pending = retry
    done.sort(key=lambda pc: (pc[1].start_byte, pc[1].end_byte))
    if join_small:
        done = _join_small(done, lines, path, language, modpath, budget)
    return [c for _, c in done]


def _join_small(done: list[tuple[Piece, Chunk]], lines: SourceLines, path: str, language: str, modpath: str,
                budget: ChunkBudget) -> list[tuple[Piece, Chunk]]:
    """Chunks of ``MIN_LINES`` lines or fewer joined to a neighbour they belong with, on exact counts.

    ``pieces.absorb_small`` decides on estimates, which are off both ways (prose costs fewer tokens
    than it says): a doc comment or an import line that would fit with its neighbour stayed alone
    when the estimate said it did not. Here the joined text is counted exactly and the join is kept
    only when it fits. Neighbours are tried in ``affinity`` order, the same rule as the estimate
    pass. A chunk that holds no whole unit (the tail of a split function, a doc comment parted from
    the function it documents because both do not fit, the imports before it) and has no neighbour
    it belongs with that takes it, joins the other neighbour, across the definition boundary: alone
    it is a fragment no search wants, beside a neighbour it is a few lines of context; the joined
    chunk keeps the neighbour's identity and header (``pieces.absorbed``). A small whole unit never
    crosses: it is a search result of its own. Each chunk takes part in at most one join per round.
    """
    tried: set[tuple[int, int]] = set()  # (first line, last line) pairs of joins that overflowed
    for _ in range(JOIN_ROUNDS):
        if len(done) < 2:
            break
        proposals: list[tuple[int, int, Piece]] = []  # (index of the earlier chunk, of the later, joined piece)
        taken: set[int] = set()
        for i, (piece, chunk) in enumerate(done):
            if i in taken or piece.start_byte is not None or chunk.end_line - chunk.start_line + 1 > MIN_LINES:
                continue
            options: list[tuple[int, int, int]] = []
            for j, other_is_next in ((i - 1, False), (i + 1, True)):
                if 0 <= j < len(done) and j not in taken and done[j][0].start_byte is None:
                    a, b = (i, j) if other_is_next else (j, i)
                    if (done[a][0].first, done[b][0].last) in tried:
                        continue
                    score = affinity(piece, done[j][0], other_is_next)
                    if score or not piece.units:
                        options.append((-score, done[j][1].n_tokens, j))
            if not options:
                continue
            score, _, j = min(options)
            a, b = min(i, j), max(i, j)
            proposals.append((a, b, absorbed(done[a][0], done[b][0], lines, across=not score)))
            taken.update((a, b))
        if not proposals:
            break
        chunks = [_make_chunk(p, lines, path, language, modpath, budget.max_tokens) for _, _, p in proposals]
        counts = budget.count_tokens([c.embed_text for c in chunks])
        joined: dict[int, tuple[Piece, Chunk]] = {}
        for (a, b, piece), chunk, count in zip(proposals, chunks, counts, strict=True):
            if count <= budget.max_tokens:
                chunk.n_tokens = count
                joined[a] = (piece, chunk)
                joined[b] = joined[a]
            else:
                tried.add((piece.first, piece.last))
        if not joined:
            continue
        out: list[tuple[Piece, Chunk]] = []
        for i, pair in enumerate(done):
            new = joined.get(i)
            if new is None:
                out.append(pair)
            elif not out or out[-1] is not new:
                out.append(new)
        done = out
    return done


Counted = tuple[Piece, Chunk, int]


def _overflow_runs(pending: Sequence[Piece], chunks: Sequence[Chunk], counts: Sequence[int], lines: SourceLines,
                   max_tokens: int, join: bool) -> list[tuple[Piece, Chunk, int, list[Counted]]]:
    """``(piece, chunk, count, members)`` of a round, each run of adjacent overflowing pieces of one
    scope as one piece (with ``join``); ``members`` are what the entry stands for, kept as they are
    when it cannot be cut.

    Dense lines (hex tables, ``macro_rules!`` arms) cost more tokens than estimated, so the first
    groups overflow; each cut again on its own left a tail of two or three lines per group (a
    7-line group of a table → 4 + 3 lines). Cut again as one run, the lines are re-grouped at the
    measured rate and only the run's end can be short. Pieces holding units, byte-cut parts and
    pieces of other scopes never join a run. The run's count is the sum of its pieces' counts less
    the headers they no longer repeat.
    """
    out: list[tuple[Piece, Chunk, int, list[Counted]]] = []
    run: list[Counted] = []

    def flush() -> None:
        if len(run) == 1:
            out.append((*run[0], [run[0]]))
        elif run:
            first, chunk, _ = run[0]
            header_tokens = count_header(chunk)
            total = sum(c for _, _, c in run) - header_tokens * (len(run) - 1)
            out.append((replace(first, last=run[-1][0].last), chunk, total, list(run)))
        run.clear()

    for piece, chunk, count in zip(pending, chunks, counts, strict=True):
        joinable = (join and count > max_tokens and not piece.units and piece.start_byte is None
                    and piece.first < piece.last)
        if joinable and run:
            prev = run[-1][0]
            if not (prev.kind == piece.kind and prev.name == piece.name and prev.context == piece.context
                    and piece.first > prev.last
                    and (piece.first == prev.last + 1 or lines.trim(prev.last + 1, piece.first - 1) is None)):
                flush()
        elif run:
            flush()
        if joinable:
            run.append((piece, chunk, count))
        else:
            out.append((piece, chunk, count, [(piece, chunk, count)]))
    flush()
    return out


def count_header(chunk: Chunk) -> int:
    """Estimated tokens of a chunk's embed-text header (and the tokenizer's special tokens)."""
    return estimate_tokens(chunk.embed_text[: len(chunk.embed_text) - len(chunk.text)].encode()) + 4


def _trimmed(pieces: Sequence[Piece], lines: SourceLines) -> list[Piece]:
    """Pieces without blank lines at their edges; all-blank pieces dropped."""
    out: list[Piece] = []
    for piece in pieces:
        if piece.start_byte is None:
            span = lines.trim(piece.first, piece.last)
            if span is None:
                continue
            if span != (piece.first, piece.last):  # most pieces have no blank edges: no copy
                piece = replace(piece, first=span[0], last=span[1])
        out.append(piece)
    return out


def _make_chunk(piece: Piece, lines: SourceLines, path: str, language: str, modpath: str,
                max_tokens: int) -> Chunk:
    if piece.start_byte is not None and piece.end_byte is not None:
        start, end = piece.start_byte, piece.end_byte
    else:
        start, end = lines.starts[piece.first], lines.ends[piece.last]
    text = lines.text(start, end)
    symbol = f"{modpath}.{piece.name}" if piece.name else modpath
    return Chunk(path=path, language=language, start_line=piece.first + 1, end_line=piece.last + 1,
                 start_byte=start, end_byte=end, kind=piece.kind, symbol=symbol, text=text,
                 embed_text=header(language, piece.kind, piece.name, piece.context, max_tokens) + text)


def _split_again(piece: Piece, chunk: Chunk, count: int, lines: SourceLines,
                 max_tokens: int, resplit: Resplit | None) -> list[Piece] | None:
    """Smaller pieces for an overflowing chunk, or ``None`` when it cannot be cut further."""
    header_tokens = count_header(chunk)
    room = max(8, max_tokens - header_tokens)
    if piece.start_byte is None and piece.first < piece.last:
        estimated = max(1, lines.estimate(piece.first, piece.last))
        rate = count / estimated  # how far the estimate was off for this text
        if resplit is not None:
            text_rate = max(1, count - header_tokens) / estimated
            parts = _trimmed(resplit(piece.first, piece.last, room / text_rate * 0.95), lines)
            if len(parts) > 1:
                return parts
        limit = max(1, int(room / rate * 0.9))
        spans = windows(piece.first, piece.last, lines, limit)
        if len(spans) == 1:  # estimates cannot separate them: cut lines in halves
            mid = (piece.first + piece.last) // 2
            spans = [(piece.first, mid), (mid + 1, piece.last)]
        out = []
        for first, last in spans:
            span = lines.trim(first, last)
            if span is not None:
                out.append(replace(piece, first=span[0], last=span[1], solo=True))
        return out
    start = piece.start_byte if piece.start_byte is not None else lines.starts[piece.first]
    end = piece.end_byte if piece.end_byte is not None else lines.ends[piece.first]
    n_parts = max(2, math.ceil(count / room * 1.1))
    cuts = _char_cuts(lines.data, start, end, n_parts)
    if len(cuts) <= 2:
        return None
    return [replace(piece, start_byte=a, end_byte=b, solo=True) for a, b in itertools.pairwise(cuts)]


def _char_cuts(data: bytes, start: int, end: int, n_parts: int) -> list[int]:
    """Byte offsets cutting ``[start, end)`` into ~equal parts, never inside a UTF-8 sequence."""
    cuts = [start]
    step = (end - start) / n_parts
    for i in range(1, n_parts):
        pos = int(start + step * i)
        while pos > cuts[-1] and pos < end and (data[pos] & 0xC0) == 0x80:
            pos -= 1
        if cuts[-1] < pos < end:
            cuts.append(pos)
    cuts.append(end)
    return cuts
