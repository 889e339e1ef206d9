"""A parsed file's definitions: what the symbol table stores, and what tells the splitter a unit fits.

Candidates are the nodes of the unit and declaration types (a tree-sitter query finds them in C;
tests hand in built trees). Each is named by the splitter's own ``unit_of``, so a definition is
named exactly like the chunk of the same unit; its span grows over the wrappers around it
(decorators, ``export``, ``template``) and nesting gives qualified names (``Console.print``,
``Outer.Inner.method``) and the ``method`` kind inside class-like units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from codeindex.chunking.build import header
from codeindex.chunking.pieces import Whole
from codeindex.chunking.source import SourceLines
from codeindex.chunking.syntax import CLASSLIKE, Unit, UnitCount
from codeindex.models import Definition

RATE_RANGE = (0.5, 4.0)
"""Units estimated between these multiples of the limit are counted exactly (``unit_counts``): below,
the estimate is never that wrong; above, the unit is split whatever the count says."""


def last_row(node: Any) -> int:
    """0-based last row a node covers (a node ending at column 0 really ends on the row before)."""
    row, column = node.end_point
    return int(row - 1 if column == 0 and row > node.start_point[0] else row)


def find_definitions(candidates: Iterable[Any], unit_of: Callable[[Any], Unit | None],
                     wrappers: frozenset[str]) -> list[tuple[Any, Definition]]:
    """``(outer node, Definition)`` for every candidate that is a named unit, in document order.

    The outer node is the unit's node or the outermost wrapper around it (its span, decorators
    included, is the definition's). A unit without a real name (named after its node type, like an
    anonymous C struct) is left out: nobody looks it up.
    """
    found: list[tuple[Any, Unit]] = []
    for node in candidates:
        unit = unit_of(node)
        if unit is None or unit.anonymous:
            continue
        outer = node
        while outer.parent is not None and outer.parent.type in wrappers:
            outer = outer.parent
        found.append((outer, unit))
    found.sort(key=lambda pair: (pair[0].start_byte, -pair[0].end_byte))
    out: list[tuple[Any, Definition]] = []
    stack: list[tuple[int, Definition]] = []  # (end byte, definition) of the enclosing definitions
    seen: set[tuple[int, int]] = set()
    for outer, unit in found:
        span = (outer.start_byte, outer.end_byte)
        if span in seen:
            continue
        seen.add(span)
        while stack and stack[-1][0] <= outer.start_byte:
            stack.pop()
        parent = stack[-1][1] if stack else None
        kind = "method" if unit.kind == "function" and parent is not None and parent.kind in CLASSLIKE else unit.kind
        qualified = f"{parent.qualified}.{unit.name}" if parent is not None else unit.name
        definition = Definition(name=unit.name.rsplit(".", 1)[-1], qualified=qualified, kind=kind,
                                start_line=outer.start_point[0] + 1, end_line=last_row(outer) + 1)
        out.append((outer, definition))
        stack.append((outer.end_byte, definition))
    return out


def unit_counts(found: Sequence[tuple[Any, Definition]], lines: SourceLines, limit: int, language: str,
                count_tokens: Callable[[Sequence[str]], list[int]]) -> dict[tuple[int, int], UnitCount]:
    """Exact token counts of the units near the limit, as chunks of their own, by their node's byte span.

    The estimate is a bytes rate: prose in docstrings costs fewer tokens than it says, dense
    punctuation more. Deciding "does this unit fit" on the estimate alone split definitions that fit
    (``Context.meta`` in click: 225 tokens, estimated 320). One batched tokenizer call per file.
    """
    low, high = RATE_RANGE[0] * limit, RATE_RANGE[1] * limit
    wanted: list[tuple[tuple[int, int], int, str]] = []
    for node, definition in found:
        first, last = definition.start_line - 1, definition.end_line - 1
        est = lines.estimate(first, last)
        if low <= est <= high:
            text = lines.text(lines.starts[first], lines.ends[last])
            wanted.append(((node.start_byte, node.end_byte), est,
                           header(language, definition.kind, definition.qualified, ()) + text))
    if not wanted:
        return {}
    counts = count_tokens([text for _, _, text in wanted])
    return {span: UnitCount(count, est) for (span, est, _), count in zip(wanted, counts, strict=True)}


def wholes(found: Sequence[tuple[Any, Definition]], counts: Mapping[tuple[int, int], UnitCount],
           lines: SourceLines, limit: int, max_tokens: int) -> list[Whole]:
    """The definitions that fit the budget as one chunk, outermost first, for ``pieces.keep_whole``.

    A definition fits by its exact count when ``unit_counts`` made one (those near the limit), else
    by its estimate (those far below it).
    """
    out: list[Whole] = []
    for node, definition in found:
        first, last = definition.start_line - 1, definition.end_line - 1
        count = counts.get((node.start_byte, node.end_byte))
        fits = count.tokens <= max_tokens if count is not None else lines.estimate(first, last) <= limit
        if fits:
            out.append(Whole(first, last, definition.kind, definition.qualified))
    out.sort(key=lambda w: (w.first, -w.last))
    return out


def definitions_from_chunks(chunks: Sequence[Any], unit_kinds: frozenset[str]) -> list[Definition]:
    """Definitions a parser without its own report implies: each named unit chunk, split pieces joined.

    The fallback for third-party parsers that implement only ``chunk``: a chunk whose kind is a
    unit kind names one definition (its in-file name is the symbol after the module path).
    """
    from codeindex.chunking.source import module_path

    spans: dict[tuple[str, str], list[int]] = {}
    for chunk in chunks:
        if chunk.kind not in unit_kinds:
            continue
        prefix = module_path(chunk.path)
        if not chunk.symbol.startswith(prefix + "."):
            continue
        qualified = chunk.symbol[len(prefix) + 1:]
        span = spans.setdefault((qualified, chunk.kind), [chunk.start_line, chunk.end_line])
        span[0], span[1] = min(span[0], chunk.start_line), max(span[1], chunk.end_line)
    return [Definition(name=q.rsplit(".", 1)[-1], qualified=q, kind=k, start_line=a, end_line=b)
            for (q, k), (a, b) in sorted(spans.items(), key=lambda item: item[1][0])]
