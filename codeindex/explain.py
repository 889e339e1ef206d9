"""What the index holds, file by file: ``codeindex files`` and ``codeindex why PATH``.

The committed ``files`` table says what is indexed and which files were read but not indexed (binary
content, parse errors: ``skip_reason`` keeps the parser's message). Files that discovery skipped
(ignore rules, default excludes, binary extensions, size) are counted but not stored per path, so
both commands walk the tree as it is now with the same rules ``update`` uses (``changes/discovery.py``)
to name them; for an ignore rule, ``why`` names the file, line and pattern that decided.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codeindex.changes.discovery import (
    BUILD_OUTPUT_DIRS,
    DIR_MARKERS,
    EXCLUDED_DIR_NAMES,
    IGNORE_FILES,
    LOCK_FILES,
    MINIFIED_SUFFIXES,
    VCS_DIRS,
    Discovery,
    base_layers,
    discover,
    with_dir_layers,
)
from codeindex.changes.ignore import deciding_rule
from codeindex.config import Config
from codeindex.errors import NotIndexedError, UsageError
from codeindex.store import db as dbm
from codeindex.store.layout import IndexLayout

SKIP_REASONS: dict[str, str] = {
    "ignored": "matched by an ignore rule (.gitignore, .codeindexignore or .git/info/exclude)",
    "default-exclude": "excluded by default (VCS and tool folders such as node_modules and .venv, virtualenvs, "
                       "caches, build outputs beside their manifest, lock files, minified files); a `!name` "
                       "line in .codeindexignore re-includes it",
    "binary-extension": "has the extension of a binary format (images, archives, compiled code, data, models)",
    "no-language": "no installed parser takes this file (`codeindex plugins` lists the languages)",
    "too-large": "larger than the discovery.max_file_bytes setting",
    "not-regular": "not a regular file (a socket, a device or a pipe)",
    "symlink-outside-root": "a symbolic link to something outside the indexed tree",
    "symlink-dir": "a symbolic link to a directory (never followed, as in git)",
    "symlink-loop": "a symbolic link that loops",
    "symlink-broken": "a symbolic link to nothing",
    "unreadable": "could not be read (permissions, or it vanished while being read)",
    "binary": "its content is binary (a NUL byte near the start)",
    "parse-error": "its parser failed on it",
    "parser-unavailable": "its parser could not be loaded",
}
"""Every skip reason a file can get, and what it means (``codeindex files --reason`` accepts these)."""


@dataclass(slots=True)
class FileRecord:
    """One row of ``codeindex files``: an indexed file, or a skipped file or folder (``path`` ends in /)."""

    path: str
    indexed: bool
    language: str | None = None
    chunks: int = 0
    reason: str | None = None
    """The skip reason (a key of ``SKIP_REASONS``); None for an indexed file."""
    detail: str | None = None
    """The stored message after the reason (the parser's error, for a parse error)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class WhyReport:
    """The answer of ``codeindex why PATH``: is the file in the index, and if not, why not.

    ``state`` is ``indexed``, ``skipped`` (discovery or parsing left it out: ``reason`` says which
    rule, ``detail`` the specifics: the ignore file, line and pattern, or the parser's error),
    ``pending`` (it would be indexed: it is new or changed since the last update) or ``missing``
    (no such file, and not in the index).
    """

    path: str
    state: str
    reason: str | None = None
    detail: str | None = None
    explanation: str = ""
    language: str | None = None
    chunks: int = 0
    changed_since_update: bool = False
    """Indexed, but the file on disk no longer matches what was indexed (run ``codeindex update``)."""
    via: str | None = None
    """When a folder above the file decided (a skipped directory), that folder (ending in ``/``)."""
    notes: list[str] = field(default_factory=list)
    redactions: list[dict[str, object]] = field(default_factory=list)
    """Secrets masked in the indexed text (``line``, ``kind``, ``name``; never the secret itself)."""

    @property
    def indexed(self) -> bool:
        return self.state == "indexed"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "indexed": self.indexed}


def _read_files(layout: IndexLayout) -> list[tuple[str, str | None, int, str | None, int, int]]:
    if not layout.exists():
        raise NotIndexedError(f"no index at {layout.index_dir}")
    with dbm.open_db(layout.db_path, read_only=True) as con:
        dbm.check_schema(con, layout.db_path)
        return con.execute("SELECT path, language, n_chunks, skip_reason, size, mtime_ns FROM files "
                           "ORDER BY path").fetchall()


def _split_reason(stored: str) -> tuple[str, str | None]:
    reason, _, detail = stored.partition(":")
    return reason.strip(), detail.strip() or None


def _walk(layout: IndexLayout, config: Config) -> Discovery:
    from codeindex.languages import LanguageMap
    from codeindex.plugins import get_plugin_manager

    lang_map = LanguageMap.from_parsers(get_plugin_manager().parsers())
    return discover(layout.root, lang_map.language_of, max_file_bytes=config["discovery.max_file_bytes"],
                    exclude=layout.excluded_names(), max_examples=None)


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def list_files(layout: IndexLayout, config: Config, *, under: str = "", skipped: bool = False,
               reason: str | None = None) -> list[FileRecord]:
    """Indexed files (default), or skipped files and folders with their reasons, sorted by path.

    ``under`` (root-relative) keeps that folder's entries; ``reason`` keeps one skip reason (and
    implies ``skipped``). Skipped entries come from the index (read or parse failures) and from a walk
    of the tree now (discovery's rules).
    """
    if reason is not None and reason not in SKIP_REASONS:
        raise UsageError(f"unknown skip reason {reason!r}", hint="one of: " + ", ".join(SKIP_REASONS))
    rows = _read_files(layout)
    if not (skipped or reason):
        return [FileRecord(p, True, lang, int(n)) for p, lang, n, why, _, _ in rows
                if why is None and _under(p, under)]
    out = []
    for p, lang, n, why, _, _ in rows:
        if why is not None and _under(p, under):
            name, detail = _split_reason(why)
            out.append(FileRecord(p, False, lang, int(n), name, detail))
    for name, paths in _walk(layout, config).skipped_examples.items():
        out.extend(FileRecord(p, False, reason=name) for p in paths if _under(p, under))
    if reason is not None:
        out = [r for r in out if r.reason == reason]
    return sorted(out, key=lambda r: r.path)


def relative_path(layout: IndexLayout, path: str | os.PathLike[str]) -> str:
    """``path`` (absolute, or relative to the indexed root) as a root-relative POSIX path."""
    given = Path(path)
    if not given.is_absolute():
        return given.as_posix().removeprefix("./").rstrip("/") or "."
    for candidate in (Path(os.path.abspath(given)), Path(os.path.realpath(given.parent)) / given.name):
        try:
            return candidate.relative_to(layout.root).as_posix() or "."
        except ValueError:
            continue
    raise UsageError(f"{path} is outside the indexed tree {layout.root}",
                     hint="pass a path inside it, or the root of its own index with --root")


def why(layout: IndexLayout, config: Config, path: str | os.PathLike[str]) -> WhyReport:
    """Whether ``path`` (absolute, or relative to the root) is indexed, and if not which rule says so."""
    rel = relative_path(layout, path)
    if rel == ".":
        raise UsageError("pass a file or a folder inside the tree, not its root")
    full = layout.root / rel
    if _under(str(full), str(layout.index_dir)):
        return WhyReport(rel, "skipped", "index-folder", None, "inside the index folder, which is never indexed")
    rows = {r[0]: r for r in _read_files(layout)}
    exists = os.path.lexists(full)
    if rel in rows:
        _, language, n_chunks, stored, size, mtime_ns = rows[rel]
        if stored is None:
            report = WhyReport(rel, "indexed", language=language, chunks=int(n_chunks),
                               explanation=f"indexed as {language}, {n_chunks} chunk{'s' * (n_chunks != 1)}")
            try:
                st = full.lstat()
                report.changed_since_update = (st.st_size, st.st_mtime_ns) != (size, mtime_ns)
            except OSError:
                report.changed_since_update = True
            if report.changed_since_update:
                report.explanation += ("; the file changed since (or was removed): run `codeindex update`"
                                       if exists else "; the file was removed since: run `codeindex update`")
            from codeindex.store.redactions import redactions_of

            report.redactions = [{"line": r.line, "kind": r.kind, "name": r.name}
                                 for r in redactions_of(layout.index_dir, rel)]
            if report.redactions:
                report.explanation += (f"; {len(report.redactions)} secret{'s' * (len(report.redactions) != 1)} "
                                       "masked before indexing")
            return report
        name, detail = _split_reason(stored)
        return WhyReport(rel, "skipped", name, detail, SKIP_REASONS.get(name, name), language=language)
    if not exists:
        return WhyReport(rel, "missing", explanation="no such file or folder, and not in the index")
    found = _walk(layout, config)
    is_dir = full.is_dir() and not full.is_symlink()
    decided = _skip_of(found, rel, is_dir)
    if decided is None:
        if is_dir:
            n = sum(1 for p in rows if p.startswith(rel + "/") and rows[p][3] is None)
            return WhyReport(rel, "indexed" if n else "pending",
                             explanation=f"a folder; {n} indexed file{'s' * (n != 1)} below it")
        return WhyReport(rel, "pending", explanation="would be indexed: it is new or changed since the last "
                                                     "update; run `codeindex update`")
    reason, entry = decided
    report = WhyReport(rel, "skipped", reason, None, SKIP_REASONS.get(reason, reason),
                       via=entry if entry.rstrip("/") != rel else None)
    report.detail = _detail(layout, config, reason, entry)
    if report.via:
        report.explanation = f"inside {report.via}, which is skipped: {report.explanation}"
    return report


def _skip_of(found: Discovery, rel: str, is_dir: bool) -> tuple[str, str] | None:
    """The (reason, entry) that left ``rel`` out: its own skip, or the skip of a folder above it."""
    wanted = [rel + "/" if is_dir else rel]
    parts = rel.split("/")
    wanted += ["/".join(parts[:i]) + "/" for i in range(len(parts) - 1, 0, -1)]
    by_path = {p: reason for reason, paths in found.skipped_examples.items() for p in paths}
    for entry in wanted:
        if entry in by_path:
            return by_path[entry], entry
    return None


def _detail(layout: IndexLayout, config: Config, reason: str, entry: str) -> str | None:
    """The specifics of one discovery skip of ``entry`` (a path; a folder ends in ``/``)."""
    is_dir = entry.endswith("/")
    rel = entry.rstrip("/")
    name = rel.rpartition("/")[2]
    full = layout.root / rel
    if reason == "ignored":
        return _ignore_rule(layout.root, rel, is_dir)
    if reason == "too-large":
        try:
            size = full.stat().st_size
        except OSError:
            return None
        limit = config["discovery.max_file_bytes"]
        return f"{size:,} bytes > discovery.max_file_bytes {limit:,} (from {config.source('discovery.max_file_bytes')})"
    if reason == "default-exclude":
        if name in VCS_DIRS:
            return f"{name}/ is a version-control folder"
        if is_dir and (name in EXCLUDED_DIR_NAMES or name.endswith(".egg-info")):
            return f"{name}/ is a tool-owned folder"
        if is_dir and name in BUILD_OUTPUT_DIRS:
            return f"{name}/ sits beside a manifest that builds into it ({', '.join(sorted(BUILD_OUTPUT_DIRS[name]))})"
        if is_dir:
            markers = sorted(m for m in DIR_MARKERS if (full / m).exists())
            if markers:
                return f"{name}/ holds {', '.join(markers)} (a virtualenv or a cache)"
        if name in LOCK_FILES:
            return f"{name} is a lock file"
        if name.endswith(MINIFIED_SUFFIXES):
            return f"{name} is minified or a source map"
    if reason == "binary-extension":
        return f".{name.rpartition('.')[2]} is a binary format"
    return None


def _ignore_rule(root: Path, rel: str, is_dir: bool) -> str | None:
    """``file:line: pattern`` of the ignore rule that decided about ``rel``, as discovery applies them."""
    layers = base_layers(root)
    parts = rel.split("/")
    for depth in range(len(parts)):
        folder = "/".join(parts[:depth])
        abs_dir = str(root / folder) if folder else str(root)
        names = [n for n in IGNORE_FILES if os.path.isfile(os.path.join(abs_dir, n))]
        layers = with_dir_layers(layers, folder, abs_dir, names)
    rule = deciding_rule(layers, rel, is_dir)
    if rule is None:
        return None
    source = rule.source
    with contextlib.suppress(ValueError):  # info/exclude lives outside the tree: keep it absolute
        source = Path(source).relative_to(root).as_posix()
    return f"{source}:{rule.line}: {rule.pattern}"
