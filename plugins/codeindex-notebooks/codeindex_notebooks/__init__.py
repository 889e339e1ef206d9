"""Jupyter notebooks for codeindex, chunked by cell: an example of a third-party parser plugin.

Each cell's source is chunked by the built-in parsers (Python for code cells, markdown for markdown
cells); the chunks' line and byte spans are then mapped back onto the ``source`` lines of the cell in
the ``.ipynb`` JSON, so a search hit opens the notebook at the right place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import codeindex
from codeindex.chunking.source import SourceLines, module_path
from codeindex.hookspecs import ChunkBudget, LanguageSpec
from codeindex.models import Chunk
from codeindex.parsers.text import TextParser
from codeindex.parsers.treesitter import TreeSitterParser

__version__ = "0.1.0"


def _source_lines(lines: SourceLines, n_cells: int) -> list[int]:
    """For each cell in order, the file line of its ``"source"`` key (nbformat writes one per cell)."""
    found = []
    for i in range(len(lines)):
        if b'"source":' in lines.data[lines.starts[i]:lines.ends[i]]:
            found.append(i)
    if len(found) != n_cells:
        raise ValueError(f"expected {n_cells} cell sources, found {len(found)} (not nbformat layout?)")
    return found


class NotebookParser:
    """Chunks ``.ipynb`` files cell by cell."""

    name = "notebooks"
    version = __version__

    def languages(self) -> Sequence[LanguageSpec]:
        return (LanguageSpec("ipynb", (".ipynb",)),)

    def config_hash(self, language: str) -> str:
        return "cells-v1:" + TreeSitterParser().config_hash("python")

    def chunk(self, source: bytes, path: str, language: str, budget: ChunkBudget) -> list[Chunk]:
        try:
            notebook = json.loads(source)
            cells = notebook["cells"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a notebook: {exc}") from exc
        lines = SourceLines.from_bytes(source)
        anchors = _source_lines(lines, len(cells))
        base = module_path(path).replace(".", "/")
        out: list[Chunk] = []
        for index, (cell, anchor) in enumerate(zip(cells, anchors, strict=True)):
            src = cell.get("source", "")
            parts = src if isinstance(src, list) else [src]
            text = "".join(parts)
            if not text.strip():
                continue
            # In nbformat, a list-valued source has one JSON string per line, one per file line after the key.
            per_line = isinstance(src, list) and b"[" in source[lines.starts[anchor]:lines.ends[anchor]]
            if cell.get("cell_type") == "code":
                chunks = TreeSitterParser().chunk(text.encode(), f"{base}/cell{index}.py", "python", budget)
            else:
                chunks = TextParser().chunk(text.encode(), f"{base}/cell{index}.md", "markdown", budget)
            for c in chunks:
                first = anchor + c.start_line if per_line else anchor
                last = anchor + c.end_line if per_line else anchor
                last = min(last, len(lines) - 1)
                out.append(replace(c, path=path, language="python" if cell.get("cell_type") == "code"
                                   else "markdown", start_line=first + 1, end_line=last + 1,
                                   start_byte=lines.starts[first], end_byte=lines.ends[last]))
        return out


@codeindex.hookimpl
def codeindex_parsers() -> list[NotebookParser]:
    return [NotebookParser()]
