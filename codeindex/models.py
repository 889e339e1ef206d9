"""Plain data records shared between stages. Picklable, so they travel to Dask workers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FileStat:
    """What ``stat`` says about a file: the fields that gate re-hashing."""

    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file discovery decided to index. ``path`` is POSIX, relative to the indexed root.

    ``path`` is the name the index stores and shows (undecodable bytes escaped, see
    ``changes/names.py``); ``fs_path`` is where to open it when that differs: the real name, or for
    a symlink inside the root the file it resolves to. ``device`` and ``stat.inode`` identify the
    file discovery saw, so a read can refuse anything swapped in since (``changes/read.py``).
    """

    path: str
    language: str
    stat: FileStat
    device: int = 0
    fs_path: str | None = None

    @property
    def open_path(self) -> str:
        """The root-relative path to open."""
        return self.fs_path or self.path


@dataclass(slots=True)
class Chunk:
    """One searchable unit of a file.

    ``text`` is what users see (the code itself); ``embed_text`` is what the model sees: a short
    context header (enclosing signatures) followed by the code. The header deliberately omits the
    file path, so that a chunk's vector key depends on content only and moves re-embed nothing.
    Lines are 1-based and inclusive; bytes are a half-open ``[start_byte, end_byte)`` range.
    """

    path: str
    language: str
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    kind: str
    symbol: str
    text: str
    embed_text: str
    n_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Definition:
    """One definition in a file (function, method, class, ...): a row of the symbol table.

    ``name`` is the definition's own name (``print``), ``qualified`` its name inside the file
    (``Console.print``); the file's module path prefixes it to give the chunk-style symbol. Lines are
    1-based and inclusive and span decorators or ``export`` wrappers, not comments above.
    """

    name: str
    qualified: str
    kind: str
    start_line: int
    end_line: int


@dataclass(slots=True)
class ParseResult:
    """Chunks and definitions of one file, or the reason it was skipped."""

    path: str
    content_hash: str
    parser_id: str
    chunks: list[Chunk] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    skip_reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    redactions: list[tuple[int, str, str]] = field(default_factory=list)
    """Secrets masked before parsing: (line, kind, variable name), never the value (``secrets.py``)."""
