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
  root is indexed under the link's own path (content addressing makes the duplicate cheap), and read
  at the target it resolved to (``SourceFile.fs_path``). Links to directories are never followed
  (``symlink-dir``): following them would index subtrees twice and needs loop detection; git does
  not follow them either. A link that loops is ``symlink-loop``, a dangling one ``symlink-broken``;
  a link into a folder the walk skips (VCS, index) is ``symlink-to-excluded``, one to a credential
  file ``secret-file``.
* Credential files and folders (``secrets.is_secret_file``) are ``secret-file`` unless an ignore
  file re-includes them with a negation, like the other default excludes.
* Indexes: the index's own folder is skipped silently wherever ``exclude`` says it is; any other
  folder named ``.codeindex`` is another index (``index-dir``): its lock file and database would
  otherwise become chunks that change on every run.
* Names that are not UTF-8 are indexed under an escaped name (``names.display_name``) and opened
  under their real one (``fs_path``); ignore rules match the real names, as git matches bytes.
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
from codeindex.changes.names import UNDECODABLE, display_name, is_clean
from codeindex.errors import UsageError
from codeindex.models import FileStat, SourceFile
from codeindex.secrets import SECRET_REASON, is_secret_dir, is_secret_file
from codeindex.store.layout import INDEX_DIR_NAME

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
    max_examples: int | None = MAX_EXAMPLES
    """Paths kept per reason in ``skipped_examples``; None keeps every one (``codeindex files --skipped``)."""

    def skip(self, reason: str, path: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        examples = self.skipped_examples.setdefault(reason, [])
        if self.max_examples is None or len(examples) < self.max_examples:
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


def base_layers(root: Path) -> tuple[Layer, ...]:
    """The ignore layers in force at the root: the repository's ``info/exclude`` (weakest)."""
    info_exclude = _git_info_exclude(root)
    if info_exclude is not None and info_exclude.is_file():
        return (Layer("", RuleSet.from_file(info_exclude)),)
    return ()


def with_dir_layers(layers: tuple[Layer, ...], rel: str, abs_dir: str, names: Collection[str]) -> tuple[Layer, ...]:
    """``layers`` plus the ignore files of directory ``rel`` (``.gitignore``, then the stronger
    ``.codeindexignore``), given the names the directory holds."""
    for ignore_name in IGNORE_FILES:
        if ignore_name in names:
            rules = RuleSet.from_file(Path(abs_dir, ignore_name))
            if rules.rules:
                layers = (*layers, Layer(rel, rules))
    return layers


def discover(root: Path, language_of: Callable[[str], str | None], *, max_file_bytes: int,
             exclude: Collection[str] = (INDEX_DIR_NAME,),
             on_files: Callable[[list[SourceFile]], None] | None = None,
             max_examples: int | None = MAX_EXAMPLES,
             within: Collection[str] | None = None) -> Discovery:
    """Walk ``root`` and return the files to index, sorted by POSIX relative path.

    ``language_of(relpath)`` names a file's language, or returns None for files not to index.
    ``exclude`` lists root-relative paths skipped silently (the index's own directory, wherever it
    sits in the tree); any other directory named ``.codeindex`` is another index, skipped as
    ``index-dir``. ``on_files`` receives each directory's files as soon as they are found (in walk
    order), so a caller can start reading them while the walk goes on (see ``scan.OverlappedScan``).

    Paths are matched against ignore rules under their real names (git compares bytes) and stored
    under their displayed names (``names.display_name``): the two differ only for names that are
    not UTF-8.

    ``within`` (root-relative paths, files or directories; see ``rescan_scope``) restricts the walk to
    those paths and what lies below them: only the directories on the way there are read besides,
    so their ignore files, markers and manifests decide exactly as in a full walk. What lies outside
    is neither listed nor counted as skipped.
    """
    root_str = os.path.realpath(root)
    if not os.path.isdir(root_str):
        raise UsageError(f"{root} is not a directory")
    excluded = frozenset(p.strip("/") for p in exclude)
    result = Discovery(files=[], max_examples=max_examples)
    files = result.files

    scopes = frozenset(within) if within is not None else frozenset()
    on_the_way = frozenset(_ancestors(scopes))
    # (displayed relative dir, real relative dir, ignore layers in force, re-included by a negation,
    # inside the walk's scope)
    stack: list[tuple[str, str, tuple[Layer, ...], bool, bool]] = [
        ("", "", base_layers(Path(root_str)), False, within is None or "" in scopes)]
    while stack:
        rel, os_rel, layers, forced, inside = stack.pop()
        abs_dir = f"{root_str}/{os_rel}" if os_rel else root_str
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
        layers = with_dir_layers(layers, os_rel, abs_dir, names)
        prefix = rel + "/" if rel else ""
        os_prefix = prefix if os_rel is rel else os_rel + "/"
        parent = os_rel.rsplit("/", 1)[-1]
        first_new = len(files)

        for entry in entries:
            name = entry.name
            os_child = os_prefix + name
            if name.isascii() or is_clean(name):
                child = os_child if os_prefix is prefix else prefix + name
            else:
                shown = display_name(name)
                if shown in names:  # spelled like a real neighbour: never mix the two up
                    result.skip(UNDECODABLE, prefix + shown)
                    continue
                child = prefix + shown
            if os_child in excluded or not (inside or child in scopes or child in on_the_way):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name in VCS_DIRS:
                        result.skip("default-exclude", child + "/")
                        continue
                    if name == INDEX_DIR_NAME:
                        result.skip("index-dir", child + "/")
                        continue
                    verdict = decide(layers, os_child, True) if layers else None
                    if verdict:
                        result.skip("ignored", child + "/")
                    elif verdict is None and _dir_default_exclude(name, names):
                        result.skip("default-exclude", child + "/")
                    elif verdict is None and is_secret_dir(name):
                        result.skip(SECRET_REASON, child + "/")
                    else:
                        stack.append((child, os_child, layers, verdict is False, inside or child in scopes))
                    continue
                link_stat: os.stat_result | None = None
                link_target: str | None = None
                if entry.is_symlink():
                    reason, link_stat, link_target = _follow_link(root_str, entry.path)
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
            verdict = decide(layers, os_child, False) if layers else None
            if verdict:
                result.skip("ignored", child)
                continue
            if verdict is None and (name in LOCK_FILES or name.endswith(MINIFIED_SUFFIXES)):
                result.skip("default-exclude", child)
                continue
            dot = name.rfind(".")
            ext = name[dot + 1 :].lower() if dot > 0 else ""
            if ext in BINARY_EXTENSIONS:
                result.skip("binary-extension", child)
                continue
            if verdict is None and is_secret_file(name, ext, parent):
                result.skip(SECRET_REASON, child)
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
            fs_path = link_target if link_target is not None else (None if os_child is child else os_child)
            files.append(SourceFile(child, language, FileStat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns),
                                    st.st_dev, fs_path))
        if on_files is not None and len(files) > first_new:
            on_files(files[first_new:])

    files.sort(key=lambda f: f.path)
    return result


def _ancestors(paths: Collection[str]) -> set[str]:
    """Every proper ancestor directory of ``paths`` below the root ("a/b/c" -> "a", "a/b")."""
    out: set[str] = set()
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in out:
            out.add(parent)
            parent = parent.rpartition("/")[0]
    return out


def rescan_scope(path: str) -> str | None:
    """The subtree a change at ``path`` (root-relative) can affect: what a walk ``within`` must cover.

    Usually the path itself. A change to an ignore file, a directory marker or a build manifest
    changes what is indexed beside and below it, so its directory is the scope ("" for the root:
    the whole tree); so does ``.git/info/exclude`` for the whole tree. Anything else inside a VCS
    directory is never indexed: None.
    """
    parts = path.split("/")
    if any(part in VCS_DIRS for part in parts[:-1]) or parts[-1] in VCS_DIRS:
        return "" if path == ".git/info/exclude" else None
    name = parts[-1]
    if name in IGNORE_FILES or name in DIR_MARKERS or name in _MANIFESTS:
        return path.rpartition("/")[0]
    return path


_MANIFESTS = frozenset().union(*BUILD_OUTPUT_DIRS.values())


def _follow_link(root_str: str, link_path: str) -> tuple[str | None, os.stat_result | None, str | None]:
    """Classify a symlink: (skip reason, None, None), or (None, the target file's stat, the target's
    path relative to the root).

    A link is followed to a regular file inside the root only, and never into what the walk itself
    would not enter (a VCS folder, an index folder, ``.ssh``) nor to a credential file: a link must
    not be a way around an exclusion. Ignore rules are not applied to the target (the link is a file
    of its own, matched under its own name).
    """
    target = os.path.realpath(link_path)
    inside = root_str.rstrip("/") + "/"
    if target != root_str and not target.startswith(inside):
        return "symlink-outside-root", None, None
    try:
        st = os.stat(link_path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink-loop", None, None
        if exc.errno == errno.ENOENT:
            return "symlink-broken", None, None
        raise
    if stat_mod.S_ISDIR(st.st_mode):
        return "symlink-dir", None, None
    if not stat_mod.S_ISREG(st.st_mode):
        return "not-regular", None, None
    rel_target = target[len(inside):]
    *dirs, name = rel_target.split("/")
    if any(d in VCS_DIRS or d == INDEX_DIR_NAME or is_secret_dir(d) for d in dirs):
        return "symlink-to-excluded", None, None
    dot = name.rfind(".")
    if is_secret_file(name, name[dot + 1 :].lower() if dot > 0 else "", dirs[-1] if dirs else ""):
        return SECRET_REASON, None, None
    return None, st, rel_target
