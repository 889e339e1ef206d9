"""The built-in text parser: markdown sections, top-level keys of YAML/TOML/JSON, and line windows.

The language ``text`` has no extensions: the engine uses it as the fallback for any text file whose
extension no parser claims. Sections and keys are found with line scanners, not full parsers, so a
malformed document still chunks (a broken JSON file is just lines).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import codeindex
from codeindex.chunking.build import build_chunks, header_allowance
from codeindex.chunking.pieces import SOLO_SHARE, Piece, Scope, merge, windows
from codeindex.chunking.source import SourceLines
from codeindex.hookspecs import ChunkBudget, LanguageSpec
from codeindex.models import Chunk

PARSER_VERSION = "1.2.0"
"""1.1: small sections are joined in balanced groups (``chunking.pieces.merge``), not greedily.
1.2: overflowing runs of dense lines are cut again as one run (``chunking.build``)."""

SPECS: tuple[LanguageSpec, ...] = (
    LanguageSpec("markdown", (".md", ".markdown", ".mdx", ".rst"), ("README", "CHANGELOG")),
    LanguageSpec("yaml", (".yaml", ".yml")),
    LanguageSpec("toml", (".toml",), ("Pipfile",)),
    LanguageSpec("json", (".json", ".jsonc", ".geojson")),
    LanguageSpec("text", ()),
)

Section = tuple[int, str, str]
"""A region start: ``(line, kind, name)``; it runs to the next start."""

_HEADING = re.compile(rb"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(rb"^ {0,3}(```|~~~)")
_YAML_KEY = re.compile(rb"^(?:\"([^\"]+)\"|'([^']+)'|([^\s#\-:][^:#]*?))\s*:(?:\s|$)")
_TOML_TABLE = re.compile(rb"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
_TOML_KEY = re.compile(rb"^([A-Za-z0-9_\-\"'.]+)\s*=")


def markdown_sections(lines: SourceLines) -> list[Section]:
    """Headings outside code fences; the name is the heading path ``Top / Sub``."""
    out: list[Section] = []
    path: list[tuple[int, str]] = []
    in_fence = False
    for i in range(len(lines)):
        raw = lines.data[lines.starts[i]:lines.ends[i]]
        if _FENCE.match(raw):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING.match(raw)
        if match:
            level = len(match.group(1))
            title = match.group(2).decode("utf-8", errors="replace").strip() or "(untitled)"
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, title))
            out.append((i, "section", " / ".join(t for _, t in path)))
    return out


def yaml_keys(lines: SourceLines) -> list[Section]:
    out: list[Section] = []
    for i in range(len(lines)):
        match = _YAML_KEY.match(lines.data[lines.starts[i]:lines.ends[i]])
        if match:
            key = next(g for g in match.groups() if g is not None)
            out.append((i, "key", key.decode("utf-8", errors="replace").strip()))
    return out


def toml_keys(lines: SourceLines) -> list[Section]:
    out: list[Section] = []
    in_table = False
    for i in range(len(lines)):
        raw = lines.data[lines.starts[i]:lines.ends[i]]
        table = _TOML_TABLE.match(raw)
        if table:
            in_table = True
            out.append((i, "key", table.group(1).decode("utf-8", errors="replace")))
        elif not in_table and (key := _TOML_KEY.match(raw)):
            out.append((i, "key", key.group(1).decode("utf-8", errors="replace").strip("\"'")))
    return out


def json_keys(lines: SourceLines) -> list[Section]:
    """Keys of the top-level object: strings followed by ``:`` at nesting depth 1."""
    out: list[Section] = []
    data = lines.data
    depth = 0
    i = 0
    n = len(data)
    while i < n:
        c = data[i]
        if c == 0x22:  # '"'
            j = i + 1
            while j < n and data[j] != 0x22:
                j += 2 if data[j] == 0x5C else 1
            k = j + 1
            while k < n and data[k] in b" \t\r\n":
                k += 1
            if depth == 1 and k < n and data[k] == 0x3A:  # ':'
                line = lines.line_of(i)
                if not out or out[-1][0] != line:
                    out.append((line, "key", data[i + 1:j].decode("utf-8", errors="replace")))
            i = j + 1
            continue
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
        i += 1
    return out


SCANNERS: dict[str, Callable[[SourceLines], list[Section]]] = {
    "markdown": markdown_sections,
    "yaml": yaml_keys,
    "toml": toml_keys,
    "json": json_keys,
}


def section_pieces(sections: Sequence[Section], lines: SourceLines, limit: int) -> list[Piece]:
    """Regions from section starts (text before the first one is a ``module`` piece); big ones windowed."""
    top = Scope()
    starts = [(0, top.kind, "")] if not sections or sections[0][0] > 0 else []
    starts += list(sections)
    pieces: list[Piece] = []
    for idx, (first, kind, name) in enumerate(starts):
        last = starts[idx + 1][0] - 1 if idx + 1 < len(starts) else len(lines) - 1
        if last < first:
            continue
        units = 0 if kind == top.kind else 1
        est = lines.estimate(first, last)
        if est <= limit:
            pieces.append(Piece(first, last, kind, name, (), units=units,
                                solo=bool(units) and est * SOLO_SHARE > limit))
        else:
            pieces.extend(Piece(a, b, kind, name, (), units=units, solo=True)
                          for a, b in windows(first, last, lines, limit))
    return merge(pieces, lines, limit, top)


class TextParser:
    """Sections and keys for documents and config files; line windows for any other text."""

    name = "text"
    version = PARSER_VERSION

    def languages(self) -> Sequence[LanguageSpec]:
        return SPECS

    def config_hash(self, language: str) -> str:
        if language not in {s.name for s in SPECS}:
            raise ValueError(f"text parser does not handle language {language!r}")
        rule = getattr(SCANNERS.get(language), "__name__", "windows")
        return hashlib.blake2b(f"{language}:{rule}".encode(), digest_size=8).hexdigest()

    def chunk(self, source: bytes, path: str, language: str, budget: ChunkBudget) -> list[Chunk]:
        if language not in {s.name for s in SPECS}:
            raise ValueError(f"text parser does not handle language {language!r}")
        if budget.max_tokens < 16:
            raise ValueError(f"token budget {budget.max_tokens} is too small")
        lines = SourceLines.from_bytes(source)
        limit = max(8, budget.max_tokens - header_allowance(language, ()))
        scanner = SCANNERS.get(language)
        if scanner is None:
            spans = windows(0, len(lines) - 1, lines, limit)
            pieces = [Piece(a, b, "window", "", (), solo=True) for a, b in spans]
        else:
            pieces = section_pieces(scanner(lines), lines, limit)
        return build_chunks(pieces, lines, path, language, budget)


@codeindex.hookimpl
def codeindex_parsers() -> list[TextParser]:
    return [TextParser()]
