"""Glob patterns as regexes: the one glob grammar behind ignore files and search's ``--path`` filters.

Both read globs the way gitignore does: ``*`` and ``?`` never cross ``/``, ``[...]`` is a character
class (``[!...]``/``[^...]`` negated), ``**`` spans folders, and a backslash escapes the next character.
The regexes use only syntax Python's ``re`` and DuckDB's RE2 agree on (search filters run in SQL).
"""

from __future__ import annotations

import re


def _char_class(segment: str, i: int) -> tuple[str, int] | None:
    """The regex of the ``[...]`` class starting at ``segment[i]`` and the index after it (None: no
    closing bracket, so ``[`` is a literal)."""
    n = len(segment)
    j = i + 1
    if j < n and segment[j] in "!^":
        j += 1
    if j < n and segment[j] == "]":
        j += 1
    while j < n and segment[j] != "]":
        j += 1
    if j >= n:
        return None
    body = segment[i + 1 : j]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    escaped = "".join(ch if ch == "-" else re.escape(ch) for ch in body)
    return (f"[^/{escaped}]" if negate else f"[{escaped}]"), j + 1


def segment_pieces(segment: str) -> list[str]:
    """Regex pieces of one path segment's glob, split at its ``*`` runs: n runs give n + 1 pieces."""
    pieces: list[str] = []
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        c = segment[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(segment[i + 1]))
            i += 2
            continue
        if c == "*":
            while i < n and segment[i] == "*":
                i += 1
            pieces.append("".join(out))
            out = []
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[" and (cls := _char_class(segment, i)) is not None:
            out.append(cls[0])
            i = cls[1]
            continue
        else:
            out.append(re.escape(c))
        i += 1
    pieces.append("".join(out))
    return pieces


def segment_regex(segment: str) -> str:
    """One path segment of a glob (no ``/`` inside) as a plain regex fragment (``*`` runs as ``[^/]*``).

    For search filters (RE2 in DuckDB). Ignore rules build their own linear-time form from the same
    ``segment_pieces`` (``changes/ignore.py``), with atomic groups RE2 does not have.
    """
    return "[^/]*".join(segment_pieces(segment))


def path_glob_regex(pattern: str) -> str:
    """A whole-path glob as a regex for full matches: ``src/**/*.py``, ``*_test.go``, ``src/[ab]*.py``.

    A pattern without ``/`` matches the file name anywhere (``*.py``), as in .gitignore.
    """
    if "/" not in pattern:
        pattern = "**/" + pattern
    parts: list[str] = []
    segments = pattern.split("/")
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment == "**":
            parts.append(".*" if i == last else "(?:.*/)?")
            continue
        parts.append(segment_regex(segment))
        if i != last:
            parts.append("/")
    return "".join(parts)
