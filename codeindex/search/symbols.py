"""Identifier lookups: which queries name a definition, and which stored definitions they name.

An identifier-shaped query is one identifier (``parse_args``, ``Request``), a qualified name
(``Console.print``, ``Class::method``, ``obj->field``, ``pkg.mod.func``) or a path and a name
(``pkg/path.go:Func``, ``app.py:Flask.run``). Its exact definitions rank above every fused
result: an agent asking for ``_OptionParser`` wants ``class _OptionParser``, not the callers that
mention it more often. Pure: the store reads the rows, this module matches and orders them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from codeindex.chunking.source import module_path
from codeindex.store.symbols import SymbolRow

_NAME = r"[A-Za-z_$][\w$]*[?!]?"
_QUALIFIED = re.compile(rf"{_NAME}(?:(?:\.|::|->|#){_NAME})*")
_SEPARATORS = re.compile(r"::|->|#|\.")
_PATH_AND_NAME = re.compile(rf"(?P<path>[\w.\-/]*[\w\-]\.\w+):(?P<name>{_QUALIFIED.pattern})")

TYPE_KINDS = frozenset({"class", "struct", "interface", "trait", "enum", "type", "record", "protocol", "object"})
"""Kinds that define a type: for a bare name they come before functions of the same name (the struct
before its ``impl``, the class before a factory function named like it)."""

CALLABLE_KINDS = frozenset({"function", "method"})

STUB_SUFFIXES = (".pyi", ".d.ts", ".d.mts", ".d.cts")
"""Declaration-only files: their definitions follow the implementation's."""

_TEST_PATH = re.compile(r"(^|/)(tests?|testing|spec|__tests__)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$")


@dataclass(frozen=True, slots=True)
class IdentifierQuery:
    """What an identifier-shaped query asks for: a name, the qualifiers before it, maybe a file."""

    name: str
    qualifiers: tuple[str, ...] = ()
    path: str = ""

    @property
    def dotted(self) -> str:
        return ".".join([*self.qualifiers, self.name])


def parse_identifier(query: str) -> IdentifierQuery | None:
    """The identifier a query names, or ``None`` for words (anything with a space, mostly)."""
    q = query.strip()
    path = ""
    match = _PATH_AND_NAME.fullmatch(q)
    if match:
        path, q = match.group("path"), match.group("name")
    elif not _QUALIFIED.fullmatch(q):
        return None
    parts = [p for p in _SEPARATORS.split(q) if p]
    if not parts:
        return None
    return IdentifierQuery(name=parts[-1], qualifiers=tuple(parts[:-1]), path=path)


def full_symbol(row: SymbolRow) -> str:
    """The chunk-style symbol of a definition: module path, then the in-file qualified name."""
    return f"{module_path(row.path)}.{row.qualified}"


def matches(ident: IdentifierQuery, row: SymbolRow) -> int | None:
    """How well ``row`` matches: 0 exact (case too), 1 ignoring case, ``None`` not at all.

    The name must be the definition's own name; qualifiers must end the definition's full symbol
    (``Console.print`` matches ``rich.console.Console.print``, not ``Console.print_json``); a path
    must end the definition's path at a ``/``.
    """
    if ident.path and not (row.path == ident.path or row.path.endswith("/" + ident.path)):
        return None
    if row.name.lower() != ident.name.lower():
        return None
    exact = row.name == ident.name
    if ident.qualifiers:
        wanted = ident.dotted
        symbol = full_symbol(row)
        if symbol == wanted or symbol.endswith("." + wanted):
            pass
        elif symbol.lower() == wanted.lower() or symbol.lower().endswith("." + wanted.lower()):
            exact = False
        else:
            return None
    return 0 if exact else 1


def rank_definitions(ident: IdentifierQuery, rows: Sequence[SymbolRow],
                     fused_rank: Mapping[SymbolRow, int] | None = None) -> list[SymbolRow]:
    """The definitions ``ident`` names, best first.

    Order: exact case before ignoring case; library paths before tests, implementations before
    stubs (``.pyi``, ``.d.ts``); for a bare name, types before functions before the rest (an
    ``impl`` block, a namespace); of one name defined several times in a file (``@overload`` stubs
    and the implementation), the longest; then how the fused ranking placed the chunk holding the definition
    (``fused_rank``), so of many ``parse_args`` the one the ranking favours comes first; then path
    and line, for a stable order.
    """
    fused_rank = fused_rank or {}
    longest: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.path, row.qualified)
        longest[key] = max(longest.get(key, 0), row.end_line - row.start_line)
    scored = []
    for row in rows:
        quality = matches(ident, row)
        if quality is None:
            continue
        kind_order = 0 if row.kind in TYPE_KINDS else 1 if row.kind in CALLABLE_KINDS else 2
        if ident.qualifiers:
            kind_order = 0  # a qualified name already says which definition it means
        secondary = (bool(_TEST_PATH.search(row.path)), row.path.endswith(STUB_SUFFIXES))
        stub = row.end_line - row.start_line < longest[(row.path, row.qualified)]  # an overload before its body
        scored.append(((quality, *secondary, kind_order, stub, fused_rank.get(row, 1 << 30),
                        row.path, row.start_line), row))
    scored.sort(key=lambda item: item[0])
    return [row for _, row in scored]

