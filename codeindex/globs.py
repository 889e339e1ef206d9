"""Glob patterns as regexes: the one translator behind ignore files and search's ``--path`` filters.

Both read globs the way gitignore does: ``*`` and ``?`` never cross ``/``, ``[...]`` is a character
class (``[!...]``/``[^...]`` negated), ``**`` spans folders, and a backslash escapes the next character.
The regexes use only syntax Python's ``re`` and DuckDB's RE2 agree on (search filters run in SQL).
"""

from __future__ import annotations

import re


def segment_regex(segment: str) -> str:
    """One path segment of a glob (no ``/`` inside) as a regex fragment: ``*``, ``?``, ``[a-z]``, ``[!x]``
    and backslash escapes, as gitignore reads them."""
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        c = segment[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(segment[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and segment[j] in "!^":
                j += 1
            if j < n and segment[j] == "]":
                j += 1
            while j < n and segment[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal '['
                out.append(re.escape(c))
            else:
                body = segment[i + 1 : j]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                escaped = "".join(ch if ch == "-" else re.escape(ch) for ch in body)
                out.append(f"[^/{escaped}]" if negate else f"[{escaped}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


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
