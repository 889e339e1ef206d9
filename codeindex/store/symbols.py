"""The symbol table: every definition of every indexed file (``symbols`` in ``store/schema.py``).

One row per definition: the path, the definition's own ``name`` (``print``), its ``qualified`` name
inside the file (``Console.print``), kind and 1-based inclusive lines. The module path is not stored:
``chunking.source.module_path(path)`` gives it, so a move only rewrites ``path``.

Kept like the chunks, in the commit's transaction (``replace_symbols``): the rows of re-parsed and
deleted files go, moved files' rows follow their file, new rows come from the parse tasks' staged
Parquet parts. Searches read it (``definitions_named``, ``definitions_of``) with the same
connection as the chunks, so both always describe one committed state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from codeindex.models import Definition
from codeindex.store.db import parquet_paths, register_list

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

COLUMNS = ("path", "name", "qualified", "kind", "start_line", "end_line")


@dataclass(frozen=True, slots=True)
class SymbolRow:
    """A definition as stored: where it is and what it is called."""

    path: str
    name: str
    qualified: str
    kind: str
    start_line: int
    end_line: int


def symbols_table(rows: Sequence[tuple[str, Definition]]) -> pa.Table:
    """``(path, Definition)`` pairs → the Arrow rows of the ``symbols`` table (the staged form)."""
    import pyarrow as pa

    return pa.table({
        "path": pa.array([p for p, _ in rows], pa.string()),
        "name": pa.array([d.name for _, d in rows], pa.string()),
        "qualified": pa.array([d.qualified for _, d in rows], pa.string()),
        "kind": pa.array([d.kind for _, d in rows], pa.string()),
        "start_line": pa.array([d.start_line for _, d in rows], pa.int32()),
        "end_line": pa.array([d.end_line for _, d in rows], pa.int32()),
    })


def replace_symbols(con: duckdb.DuckDBPyConnection, removed: Sequence[str], moved: Sequence[tuple[str, str]],
                    parts: Sequence[Path]) -> None:
    """Inside the commit's transaction: moved files' rows follow them, ``removed`` paths (re-parsed or
    deleted) lose theirs, the staged ``parts`` are inserted.

    Moves go first: a path can be a move's source and, in the same run, a new file that was parsed.
    """
    if moved:
        import pyarrow as pa

        con.register("moved_symbols", pa.table({"old": pa.array([o for o, _ in moved], pa.string()),
                                                "new": pa.array([n for _, n in moved], pa.string())}))
        con.execute("UPDATE symbols SET path = m.new FROM moved_symbols m WHERE symbols.path = m.old")
    if removed:
        register_list(con, "removed_symbols", "path", list(removed))
        con.execute("DELETE FROM symbols WHERE path IN (SELECT path FROM removed_symbols)")
    if parts:
        con.execute(f"INSERT INTO symbols SELECT {', '.join(COLUMNS)} FROM read_parquet(?)",
                    [parquet_paths(parts)])


def definitions_named(con: duckdb.DuckDBPyConnection, name: str) -> list[SymbolRow]:
    """Definitions whose own name is ``name``, ignoring case (the caller ranks exact case first)."""
    rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM symbols WHERE lower(name) = lower(?)", [name]).fetchall()
    return [SymbolRow(*r) for r in rows]


def definitions_of(con: duckdb.DuckDBPyConnection, pairs: Sequence[tuple[str, str]]) -> list[SymbolRow]:
    """The definitions named ``qualified`` inside ``path``, for each ``(path, qualified)`` of ``pairs``.

    What grouping needs to tell which definition a piece belongs to: only the definitions the pieces
    are named after, not every definition of their files (1,577 rows for a typical query's files,
    9 ms to read and build, against a few dozen).
    """
    if not pairs:
        return []
    wanted = sorted(set(pairs))
    rows = con.execute(f"SELECT {', '.join('s.' + c for c in COLUMNS)} FROM symbols s JOIN "
                       "(SELECT unnest(?::VARCHAR[]) AS path, unnest(?::VARCHAR[]) AS qualified) w "
                       "ON s.path = w.path AND s.qualified = w.qualified ORDER BY s.rowid",
                       [[p for p, _ in wanted], [q for _, q in wanted]]).fetchall()
    return [SymbolRow(*r) for r in rows]
