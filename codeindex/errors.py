"""Typed exceptions raised by the library; the CLI maps them to exit codes at one boundary."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes of the ``codeindex`` CLI. Distinct so scripts can react."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    NOT_INDEXED = 3
    LOCKED = 4
    CORRUPT = 5
    EMBEDDER = 6
    INTERRUPTED = 130


class CodeIndexError(Exception):
    """Base class: a message for the user plus a hint of what to try next."""

    exit_code: ExitCode = ExitCode.INTERNAL
    hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class UsageError(CodeIndexError):
    exit_code = ExitCode.USAGE


class NotIndexedError(CodeIndexError):
    exit_code = ExitCode.NOT_INDEXED
    hint = "run `codeindex rebuild PATH` first"


class LockedError(CodeIndexError):
    exit_code = ExitCode.LOCKED
    hint = "wait for the other writer to finish, or pass --wait"


class LiveConflictError(LockedError):
    """A second live process (``codeindex serve`` or ``watch``) for an index that already has one."""

    hint = "use the one already running (its pid is above), or stop it first"


class TreeGoneError(CodeIndexError):
    """The tree a live process watches was moved or removed while it ran."""

    exit_code = ExitCode.USAGE
    hint = "move the tree back, or restart `codeindex serve` on its new path"


class CorruptIndexError(CodeIndexError):
    exit_code = ExitCode.CORRUPT
    hint = "run `codeindex rebuild PATH` to recreate the index"


class SchemaVersionError(CorruptIndexError):
    hint = "upgrade codeindex, or run `codeindex rebuild PATH` to recreate the index with this version"


class EmbedderError(CodeIndexError):
    """A failure inside an embedder backend; the message names the backend."""

    exit_code = ExitCode.EMBEDDER


class ModelMismatchError(EmbedderError):
    hint = "search with the embedder the index was built with, or `codeindex update --embedder NAME` to re-embed"


class PluginError(CodeIndexError):
    exit_code = ExitCode.USAGE


class Interrupted(CodeIndexError):
    exit_code = ExitCode.INTERRUPTED
    hint = "the index was left in its previous state; run `codeindex update` to finish the work"


def error_lines(exc: CodeIndexError) -> list[str]:
    """The one-line message and its hint, as the CLI prints them (and ``codeindex serve`` returns them)."""
    lines = [f"codeindex: error: {exc}"]
    if exc.hint:
        lines.append(f"hint: {exc.hint}")
    return lines
