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

from codeindex.chunking.pieces import MAX_CONTEXT_CHARS, Piece, windows
from codeindex.chunking.source import SourceLines, estimate_tokens, module_path
from codeindex.hookspecs import ChunkBudget
from codeindex.models import Chunk

MAX_ROUNDS = 8


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
                 budget: ChunkBudget, resplit: Resplit | None = None) -> list[Chunk]:
    """Turn pieces into chunks whose ``embed_text`` fits ``budget`` (exactly counted).

    A multi-line piece that overflows is cut again by ``resplit`` when the parser gives one (at
    statements, scopes kept), else into line windows at its measured token rate.
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
        for piece, chunk, count in zip(pending, chunks, counts, strict=True):
            chunk.n_tokens = count
            parts = None
            if count > budget.max_tokens and round_no < MAX_ROUNDS - 1:
                if piece.context and piece.units:  # a whole unit: first without the enclosing signatures
                    retry.append(replace(piece, context=()))
                    continue
                parts = _split_again(piece, chunk, count, lines, budget.max_tokens, resplit)
            if parts:
                retry.extend(parts)
            else:
                done.append((piece, chunk))
        pending = retry
    done.sort(key=lambda pc: (pc[1].start_byte, pc[1].end_byte))
    return [c for _, c in done]


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
    header_tokens = estimate_tokens(chunk.embed_text[: len(chunk.embed_text) - len(chunk.text)].encode()) + 4
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
