"""Search filters: language, kind, path globs and symbol, as one SQL clause over ``chunks c``.

A path pattern matches as in .gitignore: a file, or a directory and everything under it
(``--path src/click`` and ``--path src/click/`` both mean the whole folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from codeindex.globs import path_glob_regex


def where_clause(languages: Sequence[str], paths: Sequence[str], exclude_paths: Sequence[str],
                 kinds: Sequence[str], symbol: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if languages:
        clauses.append(f"c.language IN ({', '.join('?' * len(languages))})")
        params.extend(languages)
    if kinds:
        clauses.append(f"c.kind IN ({', '.join('?' * len(kinds))})")
        params.extend(kinds)
    if paths:
        clauses.append("(" + " OR ".join("regexp_full_match(c.path, ?)" for _ in paths) + ")")
        params.extend(path_regex(p) for p in paths)
    for pattern in exclude_paths:
        clauses.append("NOT regexp_full_match(c.path, ?)")
        params.append(path_regex(pattern))
    if symbol:
        clauses.append("lower(c.symbol) LIKE ?")
        params.append(f"%{symbol.lower()}%")
    return " AND ".join(clauses), params


def path_regex(pattern: str) -> str:
    """The regex of a path filter: what ``globs.path_glob_regex`` matches, and everything below a matching directory."""
    cleaned = pattern.strip()
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    cleaned = cleaned.rstrip("/") or "**"
    return path_glob_regex(cleaned) + "(?:/.*)?"
