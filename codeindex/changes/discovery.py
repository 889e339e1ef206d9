"""Find the files to index: one ``os.scandir`` walk, ignore rules as git applies them, default excludes.

Runs on every ``update``, over trees of 20k-100k files, so it does the least I/O it can: one
``scandir`` per directory and one ``lstat`` per candidate file (taken from the ``DirEntry``), and the
cheap name checks come before the stat. File contents are not read here (the binary-content check
happens when files are read for parsing).

Decisions, with reasons:

* Ignore files: nested ``.gitignore`` and ``.codeindexignore`` (same syntax; at the same directory
  ``.codeindexignore`` beats ``.gitignore`` so users can re-include a git-ignored file for indexing
  only), plus the repository's ``info/exclude``. An excluded directory is not descended into, so a
  negation below it cannot re-include anything, exactly as in git. The user-wide
  ``core.excludesFile`` is not read: the index should not depend on who runs it.
* Default excludes: tool-owned directories by name (VCS, ``node_modules``, caches, ``.venv``), any
  directory holding ``pyvenv.cfg`` (a virtualenv, whatever its name) or ``CACHEDIR.TAG`` (the cache
  tagging standard: Cargo's ``target/``, many caches). ``build``/``dist``/``target`` are excluded only
  next to a manifest that produces them (``pyproject.toml``, ``package.json``, ``Cargo.toml``...),
  because plain directories with these names are often real source (Chromium's ``build/``, Go
  packages named ``build``). ``venv`` is not excluded by name (CPython's ``Lib/venv`` is source); the
  ``pyvenv.cfg`` check catches real ones. A negation (``!build/``) in an ignore file overrides a
  default exclude; VCS directories are always skipped.
* Symlinks: never followed out of the root (``symlink-outside-root``). A link to a file inside the
  root is indexed under the link's own path (content addressing makes the duplicate cheap). Links to
  directories are never followed (``symlink-dir``): following them would index subtrees twice and
  needs loop detection; git does not follow them either. A link that loops is ``symlink-loop``, a
  dangling one ``symlink-broken``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_mod
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from codeindex.changes.ignore import Layer, RuleSet, decide
from codeindex.errors import UsageError
from codeindex.models import FileStat, SourceFile

log = logging.getLogger(__name__)

MAX_EXAMPLES = 20
IGNORE_FILES = (".gitignore", ".codeindexignore")  # weakest first

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", ".fossil-settings"})
EXCLUDED_DIR_NAMES = VCS_DIRS | frozenset({
    "node_modules", "bower_components", "__pycache__", ".venv", ".tox", ".nox", ".eggs",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".pytype", ".gradle",
    ".next", ".nuxt", ".parcel-cache", ".svelte-kit", ".turbo", ".terraform", ".ipynb_checkpoints",
})
# Directory names that hold build outputs when (and only when) a manifest that produces them sits beside.
BUILD_OUTPUT_DIRS: dict[str, frozenset[str]] = {
    "build": frozenset({"pyproject.toml", "setup.py", "setup.cfg", "package.json", "build.gradle",
                        "build.gradle.kts", "CMakeLists.txt", "pom.xml"}),
    "dist": frozenset({"pyproject.toml", "setup.py", "setup.cfg", "package.json"}),
    "target": frozenset({"Cargo.toml", "pom.xml", "build.sbt"}),
    "out": frozenset({"package.json", "build.gradle", "build.gradle.kts"}),
}
DIR_MARKERS = frozenset({"pyvenv.cfg", "CACHEDIR.TAG"})
LOCK_FILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock",
    "Cargo.lock", "poetry.lock", "Pipfile.lock", "uv.lock", "pdm.lock", "Gemfile.lock", "composer.lock",
    "go.sum", "flake.lock", "mix.lock", "pubspec.lock", "Podfile.lock", "packages.lock.json",
    "gradle.lockfile", "conda-lock.yml",
})
MINIFIED_SUFFIXES = (".min.js", ".min.mjs", ".min.css", ".map")
_BINARY_EXTENSION_WORDS = (
    # images
    "png jpg jpeg gif bmp ico icns tif tiff webp psd heic avif xcf "
    # archives and packages
    "zip tar gz tgz bz2 xz 7z rar zst lz4 lzma jar war ear whl egg apk ipa dmg iso deb rpm msi cab "
    # compiled code and objects
    "o a so dylib dll exe obj lib pyc pyo pyd class dex wasm bin elc beam rlib pdb idb ko "
    # fonts
    "ttf otf woff woff2 eot "
    # audio and video
    "mp3 mp4 wav flac ogg oga avi mov mkv webm m4a aac wma wmv flv "
    # documents
    "pdf doc docx xls xlsx ppt pptx odt ods odp "
    # data and model blobs
    "db sqlite sqlite3 duckdb parquet feather arrow npy npz pkl pickle h5 hdf5 pt pth onnx "
    "safetensors ckpt tfrecord faiss gguf"
)
BINARY_EXTENSIONS = frozenset(_BINARY_EXTENSION_WORDS.split())


@dataclass
class Discovery:
    """What a walk found: the files to index (sorted by path) and what it skipped, by reason."""

    files: list[SourceFile]
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    unreadable_dirs: dict[str, str] = field(default_factory=dict)
    """Directories the walk could not list (relative path -> OS reason): what the index holds below
    them is kept as it is, never taken for deleted (``changes/plan.py``)."""

    def skip(self, reason: str, path: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        examples = self.skipped_examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(path)


def _dir_default_exclude(name: str, sibling_names: Collection[str]) -> bool:
    if name in EXCLUDED_DIR_NAMES or name.endswith(".egg-info"):
        return True
    manifests = BUILD_OUTPUT_DIRS.get(name)
    return manifests is not None and not manifests.isdisjoint(sibling_names)


def _git_info_exclude(root: Path) -> Path | None:
    """The ``info/exclude`` of the repository at ``root`` (a ``.git`` dir, or a worktree's ``.git`` file)."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git / "info" / "exclude"
    if dot_git.is_file():
        try:
            line = dot_git.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not line.startswith("gitdir:"):
            return None
        git_dir = (root / line[len("gitdir:") :].strip()).resolve()
        common = git_dir / "commondir"
        if common.is_file():
            try:
                git_dir = (git_dir / common.read_text(encoding="utf-8").strip()).resolve()
            except OSError:
                return None
        return git_dir / "info" / "exclude"
    return None


def discover(root: Path, language_of: Callable[[str], str | None], *, max_file_bytes: int,
             exclude: Collection[str] = (".codeindex",),
             on_files: Callable[[list[SourceFile]], None] | None = None) -> Discovery:
    """Walk ``root`` and return the files to index, sorted by POSIX relative path.

    ``language_of(relpath)`` names a file's language, or returns None for files not to index.
    ``exclude`` lists root-relative paths skipped silently (the index's own directory).
    ``on_files`` receives each directory's files as soon as they are found (in walk order), so a
    caller can start reading them while the walk goes on (see ``scan.OverlappedScan``).
    """
    root_str = os.path.realpath(root)
    if not os.path.isdir(root_str):
        raise UsageError(f"{root} is not a directory")
    excluded = frozenset(p.strip("/") for p in exclude)
    result = Discovery(files=[])
    files = result.files

    base_layers: tuple[Layer, ...] = ()
    info_exclude = _git_info_exclude(Path(root_str))
    if info_exclude is not None and info_exclude.is_file():
        base_layers = (Layer("", RuleSet.from_file(info_exclude)),)

    # (relative dir, ignore layers in force, re-included explicitly by a negation)
    stack: list[tuple[str, tuple[Layer, ...], bool]] = [("", base_layers, False)]
    while stack:
        rel, layers, forced = stack.pop()
        abs_dir = f"{root_str}/{rel}" if rel else root_str
        try:
            with os.scandir(abs_dir) as it:
                entries = list(it)
        except OSError as exc:
            if not rel:
                raise UsageError(f"cannot read {root}: {exc}") from exc
            result.skip("unreadable", rel + "/")
            result.unreadable_dirs[rel] = exc.strerror or type(exc).__name__
            continue
        names = {e.name for e in entries}
        if rel and not forced and not DIR_MARKERS.isdisjoint(names):
            result.skip("default-exclude", rel + "/")
            continue
        for ignore_name in IGNORE_FILES:
            if ignore_name in names:
                rules = RuleSet.from_file(Path(abs_dir, ignore_name))
                if rules.rules:
                    layers = (*layers, Layer(rel, rules))
        prefix = rel + "/" if rel else ""
        first_new = len(files)

        for entry in entries:
            name = entry.name
            child = prefix + name
            if child in excluded:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name in VCS_DIRS:
                        result.skip("default-exclude", child + "/")
                        continue
                    verdict = decide(layers, child, True) if layers else None
                    if verdict:
                        result.skip("ignored", child + "/")
                    elif verdict is None and _dir_default_exclude(name, names):
                        result.skip("default-exclude", child + "/")
                    else:
                        stack.append((child, layers, verdict is False))
                    continue
                link_stat: os.stat_result | None = None
                if entry.is_symlink():
                    reason, link_stat = _follow_link(root_str, entry.path)
                    if reason is not None:
                        result.skip(reason, child)
                        continue
                elif not entry.is_file(follow_symlinks=False):
                    result.skip("not-regular", child)
                    continue
            except OSError:
                result.skip("unreadable", child)
                continue

            # The checks below run for every file of the tree: kept inline and cheapest first.
            verdict = decide(layers, child, False) if layers else None
            if verdict:
                result.skip("ignored", child)
                continue
            if verdict is None and (name in LOCK_FILES or name.endswith(MINIFIED_SUFFIXES)):
                result.skip("default-exclude", child)
                continue
            dot = name.rfind(".")
            if dot > 0 and name[dot + 1 :].lower() in BINARY_EXTENSIONS:
                result.skip("binary-extension", child)
                continue
            language = language_of(child)
            if language is None:
                result.skip("no-language", child)
                continue
            try:
                st = link_stat if link_stat is not None else entry.stat(follow_symlinks=False)
            except OSError:
                result.skip("unreadable", child)
                continue
            if st.st_size > max_file_bytes:
                result.skip("too-large", child)
                continue
            files.append(SourceFile(child, language,
                                    FileStat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)))
        if on_files is not None and len(files) > first_new:
            on_files(files[first_new:])

    files.sort(key=lambda f: f.path)
    return result


def _follow_link(root_str: str, link_path: str) -> tuple[str | None, os.stat_result | None]:
    """Classify a symlink; return (skip reason, None) or (None, stat of the target file)."""
    target = os.path.realpath(link_path)
    if target != root_str and not target.startswith(root_str + os.sep):
        return "symlink-outside-root", None
    try:
        st = os.stat(link_path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink-loop", None
        if exc.errno == errno.ENOENT:
            return "symlink-broken", None
        raise
    if stat_mod.S_ISDIR(st.st_mode):
        return "symlink-dir", None
    if not stat_mod.S_ISREG(st.st_mode):
        return "not-regular", None
    return None, st
