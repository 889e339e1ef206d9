"""Result grouping: at most one hit per definition (or per file), the other pieces' lines attached.

A definition too big for one chunk is several pieces, and one good query can match all of them:
``confirm``'s pieces filled a top 3 alone. Grouping keeps the best-ranked piece and lists the
other pieces' line ranges on it. A piece belongs to the definition it is named after (every piece
of a split function carries the function's symbol; a piece holding two whole methods carries
their class's): the symbol table's row of that name whose lines overlap the piece, which tells two
definitions of one name in a file apart. Module-level pieces are each their own group. Pure: rows
in, groups out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from codeindex.chunking.source import module_path
from codeindex.store.symbols import SymbolRow

GROUPINGS = ("definition", "file", "none")


@dataclass(slots=True)
class Group:
    """One result: the best piece (``row``), the others' line ranges, and the definition they share."""

    row: Any
    others: list[tuple[int, int]] = field(default_factory=list)
    definition: SymbolRow | None = None


def in_file_name(path: str, symbol: str) -> str | None:
    """``symbol`` without the module prefix of ``path`` (``Console.print``); None for a module-level piece
    or a symbol of another file."""
    prefix = module_path(path) + "."
    return symbol[len(prefix):] if symbol.startswith(prefix) else None


def owner(definitions: Iterable[SymbolRow], path: str, symbol: str, first: int, last: int) -> SymbolRow | None:
    """The definition a piece (``symbol``, lines ``first..last`` of ``path``) is named after.

    Of the file's definitions with that in-file name: the one overlapping the piece most, else the
    nearest one after it (a long comment above a definition is a piece of its own, named after it).
    ``definitions`` may hold only those of that name (``store/symbols.definitions_of``).
    """
    name = in_file_name(path, symbol)
    if name is None:
        return None
    best: tuple[int, SymbolRow] | None = None
    following: SymbolRow | None = None
    for d in definitions:
        if d.qualified != name:
            continue
        overlap = min(last, d.end_line) - max(first, d.start_line)
        if overlap >= 0 and (best is None or overlap > best[0]):
            best = (overlap, d)
        elif d.start_line > last and (following is None or d.start_line < following.start_line):
            following = d
    return best[1] if best is not None else following


def group_results(rows: Sequence[Any], definitions: Sequence[SymbolRow], by: str, k: int) -> list[Group]:
    """The first ``k`` groups of ``rows`` (best first; each has ``chunk_id``, ``path``, ``symbol``,
    ``kind``, ``start_line``, ``end_line``), grouped ``by`` definition, file or not at all."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}")
    by_path: dict[str, list[SymbolRow]] = {}
    for d in definitions:
        by_path.setdefault(d.path, []).append(d)
    groups: dict[Any, Group] = {}
    out: list[Group] = []
    for row in rows:
        definition = owner(by_path.get(row.path, ()), row.path, row.symbol, row.start_line, row.end_line)
        if by == "file":
            key: Any = row.path
        elif by == "definition" and definition is not None:
            key = (row.path, definition.qualified, definition.start_line)
        elif by == "definition" and row.symbol != module_path(row.path):
            key = (row.path, row.symbol, row.kind)  # named, but not in the symbol table (a section, a key)
        else:
            key = ("chunk", row.chunk_id)
        group = groups.get(key)
        if group is not None:
            group.others.append((row.start_line, row.end_line))
            continue
        if len(out) >= k:
            continue  # later pieces may still belong to a group already shown
        group = groups[key] = Group(row, definition=definition)
        out.append(group)
    for group in out:
        group.others.sort()
    return out
