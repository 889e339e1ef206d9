"""Look-ups beside ranked search: a definition by its name, and the lines of an indexed file on disk.

Both answer what an agent asks right after a search: "where is ``parse_config`` defined?" and "show
me lines 40-80 of that hit". Reading goes to the disk, not the stored chunk text, so the lines are
current; the result says when the file changed since it was indexed (its content hash differs).
Only files the index lists as indexed can be read: nothing a user excluded (ignored, secret,
binary) is reachable through the index.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codeindex.changes.merkle import leaf_hash
from codeindex.errors import UsageError

if TYPE_CHECKING:
    import duckdb

MAX_LINES = 400
"""The most lines one read returns (the result says when it was cut)."""
DEFAULT_LINES = 60
"""Lines read from ``start_line`` when no ``end_line`` is given."""


@dataclass(slots=True)
class Definition:
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    match: str
    """``exact`` (the whole qualified name), ``suffix`` (its last dotted parts) or ``case-insensitive``."""
    text: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_DEFINITIONS_SQL = """
WITH matched AS (
    SELECT path, symbol, kind, language, start_line, end_line, text,
           CASE WHEN symbol = $name THEN 0 WHEN ends_with(symbol, '.' || $name) THEN 1 ELSE 2 END AS rank
    FROM chunks
    WHERE symbol = $name OR ends_with(symbol, '.' || $name)
       OR lower(symbol) = lower($name) OR ends_with(lower(symbol), '.' || lower($name))
)
SELECT path, symbol, arg_min(kind, start_line), arg_min(language, start_line), min(start_line), max(end_line),
       arg_min(text, start_line), min(rank) AS best
FROM matched
GROUP BY path, symbol
ORDER BY best, length(symbol) - length(replace(symbol, '.', '')), arg_min(kind, start_line) = 'module', path,
         min(start_line)
LIMIT $k
"""


def find_definitions(con: duckdb.DuckDBPyConnection, name: str, *, k: int) -> list[Definition]:
    """Definitions whose symbol is ``name`` or ends with ``.name`` (``Class.method``, ``pkg.mod.func``).

    A definition split over several chunks is one result spanning them. Exact matches first, then
    the shortest qualified names, modules last.
    """
    name = name.strip()
    if not name:
        raise UsageError("empty symbol name", hint="pass a name such as parse_config or Config.load")
    if k < 1:
        raise UsageError("k must be at least 1")
    rows = con.execute(_DEFINITIONS_SQL, {"name": name, "k": k}).fetchall()
    matches = ("exact", "suffix", "case-insensitive")
    return [Definition(path=r[0], symbol=r[1] or "", kind=r[2] or "", language=r[3] or "", start_line=r[4],
                       end_line=r[5], text=r[6] or "", match=matches[r[7]]) for r in rows]


@dataclass(slots=True)
class Excerpt:
    path: str
    start_line: int
    end_line: int
    total_lines: int
    text: str
    changed_since_indexed: bool
    """The file's content on disk is not what the index holds (an update will catch up)."""
    truncated: bool
    """More lines were asked for than one read returns (``MAX_LINES``)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize_path(path: str) -> str:
    """A root-relative POSIX path, or a usage error for anything that leaves the root."""
    rel = posixpath.normpath(path.strip().replace("\\", "/")) if path.strip() else ""
    if not rel or rel == "." or rel.startswith("/") or rel == ".." or rel.startswith("../"):
        raise UsageError(f"not a path inside the indexed tree: {path!r}",
                         hint="pass a root-relative path as search results give it")
    return rel


def indexed_hash(con: duckdb.DuckDBPyConnection, path: str) -> str:
    """The content hash the index holds for ``path``; a usage error when it is not an indexed file."""
    rows = con.execute("SELECT hash FROM files WHERE path = ? AND skip_reason IS NULL", [path]).fetchall()
    if not rows:
        raise UsageError(f"{path} is not an indexed file",
                         hint="read paths that search or symbol returned (ignored and skipped files are not served)")
    return str(rows[0][0])


def read_excerpt(root: Path, path: str, indexed: str, start_line: int, end_line: int | None, context: int,
                 max_bytes: int) -> Excerpt:
    """Lines ``start_line - context`` .. ``end_line + context`` (1-based, inclusive) of ``root/path`` on disk."""
    if start_line < 1 or (end_line is not None and end_line < start_line) or context < 0:
        raise UsageError(f"bad line range {start_line}-{end_line} (context {context})",
                         hint="lines are 1-based; end_line must not be before start_line")
    full = os.path.realpath(root / path)
    if not full.startswith(os.path.realpath(root) + os.sep):
        raise UsageError(f"{path} leads outside the indexed tree")
    try:
        with open(full, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise UsageError(f"{path} no longer exists on disk",
                         hint="it was deleted or moved since it was indexed; search again in a moment") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = data.decode("utf-8", errors="replace").splitlines()
    first = max(1, start_line - context)
    last = min(len(lines), (end_line if end_line is not None else start_line + DEFAULT_LINES - 1) + context)
    truncated = last - first + 1 > MAX_LINES
    if truncated:
        last = first + MAX_LINES - 1
    return Excerpt(path=path, start_line=first, end_line=max(first - 1, last), total_lines=len(lines),
                   text="\n".join(lines[first - 1 : last]), changed_since_indexed=leaf_hash(data) != indexed,
                   truncated=truncated)
