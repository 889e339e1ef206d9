"""``codeindex serve``: the live index as a Model Context Protocol server over stdio.

Built on the official MCP Python SDK (``mcp`` 2.x: ``MCPServer``; pinned ``>=2,<3`` because 2.0
renamed the server class and the result fields this module uses). Five tools, each a thin call
into ``LiveIndex``: ``search``, ``symbol``, ``read``, ``status``, ``update``. Their JSON schemas come
from the signatures and the output models below; the docstrings are the one-line descriptions an
agent reads. The SDK runs each (synchronous) tool in a worker thread, so an update in progress
never blocks the protocol.

Errors: a ``CodeIndexError`` becomes a tool error carrying the CLI's message and hint
(``errors.error_lines``); a bad argument is rejected by the SDK's schema validation as a tool error;
anything else is logged with its traceback and reported as an internal error. No error ends the
server: only the client closing stdin (or a signal) does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from codeindex.errors import CodeIndexError, error_lines
from codeindex.live.service import LiveIndex

log = logging.getLogger("codeindex.live")

T = TypeVar("T")

INSTRUCTIONS = (
    "codeindex keeps a semantic + keyword index of one source tree and keeps it fresh while files change. "
    "Use `search` for code by meaning or identifiers, `symbol` to find where a name is defined, `read` to see "
    "the current lines of a hit. Results are as fresh as the last edit (`fresh` says so); `status` shows what "
    "is indexed and pending."
)


class Hit(BaseModel):
    path: str = Field(description="File path relative to the indexed root.")
    start_line: int = Field(description="First line of the chunk (1-based).")
    end_line: int = Field(description="Last line of the chunk (inclusive).")
    symbol: str = Field(description="Qualified name of the enclosing definition ('' when none).")
    kind: str = Field(description="function, class, method, module, text...")
    language: str
    score: float = Field(description="Fused rank score; higher is better (compare within one result list).")
    snippet: str = Field(description="The chunk's text, cut at 40 lines; `read` gives the current lines.")


class SearchOutput(BaseModel):
    results: list[Hit]
    fresh: bool = Field(description="True when every change seen on disk before the search was indexed.")
    note: str | None = Field(default=None, description="Why the answer may be stale, when it may be.")


class DefinitionOut(BaseModel):
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    match: str = Field(description="exact, suffix (last dotted parts) or case-insensitive.")
    text: str


class SymbolOutput(BaseModel):
    definitions: list[DefinitionOut]
    fresh: bool
    note: str | None = None


class ReadOutput(BaseModel):
    path: str
    start_line: int
    end_line: int
    total_lines: int
    text: str = Field(description="The lines start_line..end_line, as they are on disk now.")
    changed_since_indexed: bool = Field(description="The file differs from what the index holds (being updated).")
    truncated: bool = Field(description="The range was cut at 400 lines.")


class StatusOutput(BaseModel):
    live: dict[str, Any] = Field(description="The watcher and update loop: pending changes, last update, errors.")
    index: dict[str, Any] | None = Field(description="Files, chunks, model, segments, last run of the index.")
    index_error: str | None = None


class UpdateOutput(BaseModel):
    done: bool
    report: dict[str, Any] | None = Field(description="The run report (files added/modified/deleted, chunks...).")
    note: str | None = None


def _call(fn: Callable[[], T]) -> T:
    """Run one tool body; typed errors become tool errors with the CLI's message and hint."""
    try:
        return fn()
    except CodeIndexError as exc:
        raise ToolError("\n".join(error_lines(exc))) from exc
    except Exception as exc:  # our bug: the client learns it happened, the server keeps serving
        log.exception("tool failed")
        raise ToolError(f"codeindex: internal error: {type(exc).__name__}: {exc}\n"
                        "hint: rerun `codeindex -vv serve` for a traceback and report it") from exc


def build_server(live: LiveIndex) -> MCPServer:
    """The MCP server whose tools call ``live``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        our_version = version("codeindex")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without metadata
        our_version = "0"
    server: MCPServer = MCPServer("codeindex", instructions=INSTRUCTIONS, version=our_version, log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only)
    def search(
        query: Annotated[str, Field(min_length=1, description="Words, a question, or identifiers.")],
        k: Annotated[int, Field(ge=1, le=100, description="Number of results.")] = 10,
        mode: Annotated[Literal["hybrid", "vector", "lexical"],
                        Field(description="hybrid: meaning and keywords fused; vector: meaning; lexical: BM25.")]
        = "hybrid",
        language: Annotated[list[str] | None, Field(description="Only these languages, e.g. ['python'].")] = None,
        path: Annotated[str | None, Field(description="Only paths matching this glob, e.g. 'src/**/*.py'.")] = None,
        exclude: Annotated[str | None, Field(description="Drop paths matching this glob, e.g. 'tests/**'.")]
        = None,
        kind: Annotated[list[str] | None, Field(description="Only these chunk kinds: function, class, method...")]
        = None,
        symbol: Annotated[str | None, Field(description="Only chunks whose symbol contains this text.")] = None,
    ) -> SearchOutput:
        """Search the codebase by meaning and keywords; returns path, line range, symbol, score and a snippet."""
        return SearchOutput.model_validate(_call(lambda: live.search(
            query, k=k, mode=mode, languages=language or (), paths=[path] if path else (),
            exclude_paths=[exclude] if exclude else (), kinds=kind or (), symbol=symbol)))

    @server.tool(name="symbol", annotations=read_only)
    def find_symbol(
        name: Annotated[str, Field(min_length=1, description="A name (parse_config) or qualified name "
                                                             "(Config.load, pkg.module.func).")],
        k: Annotated[int, Field(ge=1, le=100, description="Most definitions returned.")] = 10,
    ) -> SymbolOutput:
        """Find where a function, class or method is defined, by exact or qualified name."""
        return SymbolOutput.model_validate(_call(lambda: live.symbol(name, k=k)))

    @server.tool(annotations=read_only)
    def read(
        path: Annotated[str, Field(min_length=1, description="A path as search or symbol returned it.")],
        start_line: Annotated[int, Field(ge=1, description="First line to return (1-based).")] = 1,
        end_line: Annotated[int | None, Field(ge=1, description="Last line (default: 60 lines).")] = None,
        context: Annotated[int, Field(ge=0, le=200, description="Extra lines before and after.")] = 0,
    ) -> ReadOutput:
        """Read lines of an indexed file from disk, flagged when the file changed since it was indexed."""
        return ReadOutput.model_validate(_call(lambda: live.read(path, start_line=start_line, end_line=end_line,
                                                                 context=context)))

    @server.tool(annotations=read_only)
    def status() -> StatusOutput:
        """How fresh the index is (changes pending, last update, watcher errors) and what it holds."""
        return StatusOutput.model_validate(_call(live.status))

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                             open_world_hint=False))
    def update(
        timeout_s: Annotated[float, Field(gt=0, le=3600, description="Most seconds to wait for the run.")] = 600.0,
    ) -> UpdateOutput:
        """Re-scan the whole tree now (the watcher normally keeps it fresh); returns the run summary."""
        return UpdateOutput.model_validate(_call(lambda: live.update(timeout=timeout_s)))

    return server


def serve(live: LiveIndex) -> bool:
    """Serve ``live`` over stdio until the client closes stdin; the loop stops with the server.

    True when the loop finished; False when an update was still running (the caller exits anyway:
    a commit is atomic, so that is as safe as a kill).
    """
    server = build_server(live)
    live.start()
    try:
        server.run("stdio")
    except BaseException:
        live.stop(timeout=1.5)
        raise
    return live.stop(timeout=1.5)
