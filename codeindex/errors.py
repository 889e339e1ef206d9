"""Typed exceptions raised by the library; the CLI maps them to exit codes at one boundary.

The taxonomy, by who can fix the problem:

* ``EnvironmentProblem`` (exit 2): the machine said no (permission, read-only filesystem, no space,
  a path that vanished, an unreachable scheduler). The message names the path and the OS reason.
* ``LockedError`` / ``BusyError`` (exit 4): another process holds the index; retry or ``--wait``.
* ``CorruptIndexError`` (exit 5): the index on disk is damaged; the message names what, the hint
  gives the exact repair (``codeindex update`` when stored chunk text allows it, else ``rebuild``).
* Anything else reaching the boundary is a bug of ours (exit 1, "report it").

``classify`` turns the raw exceptions of the OS and of DuckDB into these, so the rule is written once.
"""

from __future__ import annotations

import enum
import errno
import os


class ExitCode(enum.IntEnum):
    """Process exit codes of the ``codeindex`` CLI. Distinct so scripts can react."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    ENVIRONMENT = 2  # an alias: bad input and a refusing environment both need the user to act
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


class EnvironmentProblem(CodeIndexError):
    """The filesystem, the OS or the network refused: the message names the path and the OS reason."""

    exit_code = ExitCode.ENVIRONMENT


class NotIndexedError(CodeIndexError):
    exit_code = ExitCode.NOT_INDEXED
    hint = "run `codeindex rebuild PATH` first"


class LockedError(CodeIndexError):
    exit_code = ExitCode.LOCKED
    hint = "wait for the other writer to finish, or pass --wait"


class BusyError(CodeIndexError):
    """The database stayed in use by another process longer than we wait (not damage: retry)."""

    exit_code = ExitCode.LOCKED
    hint = "another codeindex process holds the database; retry shortly"


REBUILD_HINT = "run `codeindex rebuild PATH` to recreate the index"
REPAIR_HINT = "run `codeindex update --repair PATH`: it rebuilds what is damaged from the stored chunk texts"


class LiveConflictError(LockedError):
    """A second live process (``codeindex serve`` or ``watch``) for an index that already has one."""

    hint = "use the one already running (its pid is above), or stop it first"


class TreeGoneError(CodeIndexError):
    """The tree a live process watches was moved or removed while it ran."""

    exit_code = ExitCode.USAGE
    hint = "move the tree back, or restart `codeindex serve` on its new path"


class CorruptIndexError(CodeIndexError):
    """The index on disk is damaged. ``repairable``: ``codeindex update`` can mend it without a rebuild."""

    exit_code = ExitCode.CORRUPT
    hint = REBUILD_HINT
    unlocated = False
    """True for DuckDB's "corrupt block" errors, which do not say which table the block belongs to: the
    CLI then runs ``verify`` to name it, and the repair it allows."""

    def __init__(self, message: str, hint: str | None = None, *, repairable: bool = False) -> None:
        super().__init__(message, hint if hint is not None else REPAIR_HINT if repairable else None)
        self.repairable = repairable


class SchemaVersionError(CorruptIndexError):
    hint = "upgrade codeindex, or run `codeindex rebuild PATH` to recreate the index with this version"


class EmbedderError(CodeIndexError):
    """A failure inside an embedder backend; the message names the backend."""

    exit_code = ExitCode.EMBEDDER


class ModelMismatchError(EmbedderError):
    hint = "search with the embedder the index was built with, or `codeindex update --embedder NAME` to re-embed"


class PluginError(CodeIndexError):
    exit_code = ExitCode.USAGE


INTERRUPTED_HINT = ("the index is in its previous or its new state, never in between; "
                    "`codeindex update` finishes the work")


class Interrupted(CodeIndexError):
    """Raised by the library where it knows the run committed nothing; the CLI's own interrupt message
    (any other phase) uses ``INTERRUPTED_HINT``."""

    exit_code = ExitCode.INTERRUPTED
    hint = "the index was left in its previous state; run `codeindex update` to finish the work"


# ---------------------------------------------------------------------------------------------- classify

ENVIRONMENT_ERRNOS = frozenset({
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOENT, errno.ENOTDIR,
    errno.EISDIR, errno.EIO, errno.EMFILE, errno.ENFILE, errno.ENAMETOOLONG, errno.ELOOP, errno.EXDEV,
    errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EFBIG,
})
"""OS errors that are the environment's doing, never a bug of ours."""

_OS_REASONS = {  # what DuckDB's and FAISS's messages say where Python would have an errno
    "Permission denied": errno.EACCES, "Read-only file system": errno.EROFS,
    "No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
    "No such file or directory": errno.ENOENT, "Not a directory": errno.ENOTDIR,
    "Input/output error": errno.EIO, "Too many open files": errno.EMFILE, "File too large": errno.EFBIG,
}

_ENV_HINTS = {
    errno.EACCES: "check the permissions of that path, or pass --index-dir to a folder you can write",
    errno.EPERM: "check the permissions of that path, or pass --index-dir to a folder you can write",
    errno.EROFS: "that filesystem is mounted read-only: pass --index-dir to a writable folder",
    errno.ENOSPC: "free some disk space (or pass --index-dir to a roomier disk) and rerun",
    errno.EDQUOT: "your disk quota is used up: free some space and rerun",
    errno.EFBIG: "the file grew past what that filesystem allows: pass --index-dir to another disk",
    errno.ENOENT: "the path vanished while codeindex ran (moved or deleted?): check it and rerun",
    errno.ENOTDIR: "a folder on that path was replaced by a file: check it and rerun",
    errno.EIO: "the device reported an I/O error: check the disk (dmesg) before rerunning",
}

DAMAGE_MARKERS = ("Corrupt database file", "checksum", "not a valid DuckDB database", "is not a valid DuckDB",
                  "database file is corrupt", "Could not read enough bytes", "file is too small",
                  "Failed to load metadata", "invalid block", "Serialization Error", "deserializ")
"""Phrases of DuckDB errors that mean the bytes on disk are not what DuckDB wrote (damage)."""

LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked", "being used by another",
                # another thread of this process holds the file with other settings (a reader while the
                # writer commits, in `codeindex serve`): as transient as another process's lock
                "with a different configuration")
"""Phrases of DuckDB errors that mean another connection holds the file: busy, retried, never damage."""


def os_reason(exc: OSError) -> str:
    """``strerror`` with the errno's symbolic name: "No space left on device (ENOSPC)"."""
    number = exc.errno or _reason_errno(str(exc))
    name = errno.errorcode.get(number or 0, "")
    text = exc.strerror or (os.strerror(number) if number else str(exc))
    return f"{text} ({name})" if name else text


def environment_problem(exc: OSError, path: str | os.PathLike[str] | None = None,
                        doing: str = "use") -> EnvironmentProblem:
    """An ``EnvironmentProblem`` for an OS error: "cannot write PATH: No space left on device (ENOSPC)"."""
    where = os.fspath(path) if path is not None else (exc.filename if exc.filename is not None else None)
    message = f"cannot {doing} {where}: {os_reason(exc)}" if where else f"cannot {doing}: {os_reason(exc)}"
    number = exc.errno or _reason_errno(str(exc)) or 0
    return EnvironmentProblem(message, hint=_ENV_HINTS.get(number, "check that path and rerun"))


def _reason_errno(text: str) -> int | None:
    for phrase, number in _OS_REASONS.items():
        if phrase in text:
            return number
    return None


def classify(exc: BaseException, path: str | os.PathLike[str] | None = None) -> CodeIndexError | None:
    """The typed error a raw OS or DuckDB exception stands for, or None when it is not one we know
    (then it is a bug, reported as such). ``path``: the file being used, when the caller knows it."""
    if isinstance(exc, CodeIndexError):
        return exc
    if isinstance(exc, OSError):
        if exc.errno in ENVIRONMENT_ERRNOS:
            return environment_problem(exc, path)
        if exc.errno is None and _reason_errno(str(exc)) is not None:  # pyarrow's OSErrors carry no errno
            return environment_problem(exc, path)
        return None
    module = type(exc).__module__ or ""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if module.startswith(("duckdb", "_duckdb")):
        where = os.fspath(path) if path is not None else "the index database"
        if any(marker in text for marker in LOCK_MARKERS):
            return BusyError(f"{where} is busy: {first}")
        number = _reason_errno(text)
        if number is not None:
            return EnvironmentProblem(f"cannot use {where}: {first}", hint=_ENV_HINTS.get(number))
        if type(exc).__name__ == "CatalogException" or any(marker in text for marker in DAMAGE_MARKERS):
            damaged = CorruptIndexError(f"{where} is damaged: {first}")
            damaged.unlocated = "Corrupt database file" in text
            return damaged
        return None
    if type(exc).__name__ == "RuntimeError" and "faiss" in text.lower():  # FAISS reports I/O as RuntimeError
        number = _reason_errno(text)
        if number is not None:
            return EnvironmentProblem(f"cannot use {os.fspath(path) if path else 'a vector segment'}: {first}",
                                      hint=_ENV_HINTS.get(number))
    return None


def error_lines(exc: CodeIndexError, hint: str | None = None) -> list[str]:
    """The one-line message and its hint (``hint`` replaces the error's own), as the CLI prints them
    (and ``codeindex serve`` returns them)."""
    lines = [f"codeindex: error: {exc}"]
    hint = exc.hint if hint is None else hint
    if hint:
        lines.append(f"hint: {hint}")
    return lines
