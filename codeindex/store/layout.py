"""Where one index keeps its files: the layout object the engine is handed instead of the API.

``.codeindex/`` at the indexed root by default, or any folder given with ``--index-dir``:
``meta.duckdb`` (the database), ``seg-<n>.faiss`` (vector segments), ``staging/`` (a run's
uncommitted parts), ``lock`` (the writer lock), ``live.lock`` (held by a running ``codeindex serve`` or
``watch``), ``duckdb-tmp/`` (spill space) and a ``.gitignore`` holding ``*``, so that the index never
shows up in ``git status`` nor goes into a commit by ``git add .``.

``find_index_root`` is how commands that use an existing index find it from a subdirectory: they walk
up from the working directory, as git does for ``.git``.

The index is private to its owner, whatever the modes of the sources it holds: it can hold text of
files other users may not read (a 0600 key, a private checkout), and a search must not become a way
around their modes. The folder is ``0700`` (the barrier: nothing inside is reachable by another
user), and the files codeindex writes itself (database, segments, lock) are ``0600``; files DuckDB
creates on its own (its WAL, spill files) follow the umask inside the private folder. Matching the
most restrictive source instead would make an index's mode change as files come and go; sharing an
index between users is not supported (each user builds their own).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from codeindex.errors import EnvironmentProblem, UsageError, environment_problem

DB_NAME = "meta.duckdb"
INDEX_DIR_NAME = ".codeindex"
GITIGNORE = "# written by codeindex: the index is a build artifact, never committed\n*\n"


def find_index_root(start: Path) -> Path | None:
    """The nearest of ``start`` and its parents holding an index (``.codeindex/meta.duckdb``), or None.

    Stops at the filesystem root. ``start`` need not exist (a file path that was deleted still finds
    the index above it).
    """
    here = Path(os.path.abspath(start))
    for folder in (here, *here.parents):
        try:
            if (folder / INDEX_DIR_NAME / DB_NAME).is_file():
                return folder
        except PermissionError:  # another user's private index: Index says so (check_access)
            return folder
    return None


def make_index_dir(index_dir: Path) -> None:
    """Create the index folder (and parents) with a ``.gitignore`` of ``*`` inside, if not there yet.

    The ``.gitignore`` ignores the folder itself too (git reads it from inside the folder), so nothing
    outside the index has to be told about it.
    """
    ensure_private_dir(index_dir)
    ignore = index_dir / ".gitignore"
    if not ignore.exists():
        with contextlib.suppress(OSError):  # a read-only folder: the index still works, only git would see it
            ignore.write_text(GITIGNORE)
            make_private_file(ignore)


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def ensure_private_dir(index_dir: Path) -> None:
    """Create the index folder ``0700``, or narrow an existing one of ours to ``0700``.

    A folder that is not ours to narrow (another user's, or a shared one with the sticky bit such as
    ``/tmp``) is refused: the index cannot be kept private there.
    """
    if not index_dir.exists():
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another writer made it a moment ago: narrowed below
            index_dir.mkdir(mode=PRIVATE_DIR_MODE)
    st = index_dir.stat()
    if stat.S_IMODE(st.st_mode) & 0o077 == 0:
        return
    if st.st_uid != os.geteuid() or st.st_mode & stat.S_ISVTX:
        raise UsageError(f"cannot keep the index private in {index_dir}: it is a shared folder "
                         f"(mode {stat.S_IMODE(st.st_mode):o}, owner uid {st.st_uid})",
                         hint="pass --index-dir with a folder of your own (it is made 0700)")
    os.chmod(index_dir, PRIVATE_DIR_MODE)


def private_index_error(index_dir: Path) -> UsageError:
    """The error for an index another user built: it is private to them (see the module docstring)."""
    try:
        owner = f" (uid {index_dir.stat().st_uid})"
    except OSError:
        owner = ""
    return UsageError(f"permission denied: the index in {index_dir} is private to the user who built it{owner}",
                      hint="indexes are readable by their owner only; build your own with --index-dir")


def check_access(index_dir: Path) -> None:
    """Raise ``private_index_error`` for an existing index folder of another user this process may not
    enter. Our own folder is not refused for lacking write access (a read-only filesystem, say): reads
    work there, and a write fails naming the path and the OS reason (exit 2)."""
    if not index_dir.is_dir():
        return
    if index_dir.stat().st_uid != os.geteuid():
        if not os.access(index_dir, os.R_OK | os.W_OK | os.X_OK):
            raise private_index_error(index_dir)
    elif not os.access(index_dir, os.R_OK | os.X_OK):
        raise environment_problem(PermissionError(errno.EACCES, os.strerror(errno.EACCES)), index_dir,
                                  "read the index folder")


def owning_tree(path: Path) -> Path | None:
    """The nearest folder above ``path`` that holds an index (``.codeindex/meta.duckdb``), if any.

    ``codeindex update`` in a subfolder of an indexed tree then updates that tree, as git commands do
    in a subfolder of a repository, instead of starting a second index nested inside the first.
    """
    for parent in path.parents:
        try:
            if (parent / INDEX_DIR_NAME / DB_NAME).exists():
                return parent
        except OSError:  # an ancestor we may not look into: no index of ours above it
            return None
    return None


def refuse_broad_root(root: Path) -> None:
    """Raise for a root no one means to index by accident: ``/`` or the home folder.

    Both walk everything a user has (and ``/`` every mounted filesystem) and put a ``.codeindex``
    where it does not belong; ``--force`` says it is meant.
    """
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        home = None
    if root == Path(root.anchor):
        what = "the filesystem root"
    elif root == home:
        what = "your home folder"
    else:
        return
    raise UsageError(f"refusing to index {root} ({what}): it holds far more than one source tree",
                     hint="pass the folder of a project, or --force if you really mean it")


def make_private_file(path: Path | int) -> None:
    """Narrow a file codeindex wrote (a path or an open descriptor) to ``0600``."""
    if isinstance(path, int):
        os.fchmod(path, PRIVATE_FILE_MODE)
    else:
        os.chmod(path, PRIVATE_FILE_MODE)


@dataclass(frozen=True, slots=True)
class IndexLayout:
    """The source tree's root and the index folder, both absolute."""

    root: Path
    index_dir: Path
    root_identity: tuple[int, int] | None = field(default=None, compare=False)
    """(device, inode) of the root when the layout was made: ``check_root`` notices a moved tree."""

    def __post_init__(self) -> None:
        if self.root_identity is None:
            try:
                st = os.stat(self.root)
            except OSError:
                return
            object.__setattr__(self, "root_identity", (st.st_dev, st.st_ino))

    def check_root(self) -> None:
        """Raise ``EnvironmentProblem`` if the tree was moved or deleted since this layout was made.

        Called before every commit: a run whose tree vanished under it read nothing (or half), and
        committing that would delete files from the index that still exist elsewhere.
        """
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            raise EnvironmentProblem(f"the indexed tree {self.root} vanished while codeindex ran (moved or "
                                     "deleted?): nothing was committed",
                                     hint="run codeindex again on the tree where it is now") from None
        except OSError as exc:
            raise environment_problem(exc, self.root, "read the indexed tree") from exc
        if self.root_identity is not None and (st.st_dev, st.st_ino) != self.root_identity:
            raise EnvironmentProblem(f"the indexed tree {self.root} was replaced by another directory while "
                                     "codeindex ran (moved?): nothing was committed",
                                     hint="run codeindex again on the tree where it is now")

    @property
    def db_path(self) -> Path:
        return self.index_dir / DB_NAME

    def exists(self) -> bool:
        return self.db_path.exists()

    def excluded_names(self) -> set[str]:
        """Root-relative paths discovery must never walk into: the index folder, wherever it sits in the
        tree (any other folder named ``.codeindex`` is skipped by discovery as ``index-dir``)."""
        try:
            inside = self.index_dir.relative_to(self.root)
        except ValueError:
            return set()  # outside the tree: nothing to leave out
        return {inside.as_posix()} if inside.parts else set()

    def new_staging_dir(self) -> Path:
        """A fresh folder for one run's uncommitted parts (removed when the run ends, whatever happens)."""
        staging = self.index_dir / "staging" / uuid.uuid4().hex[:12]
        try:  # never parents=True above the index folder: a tree moved mid-run must not be recreated
            staging.parent.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
            staging.mkdir(mode=PRIVATE_DIR_MODE)
        except OSError as exc:
            raise environment_problem(exc, staging, "create the staging folder") from exc
        return staging

    def clean_staging(self) -> None:
        """Remove every run's staging folder (what a crashed run left behind)."""
        shutil.rmtree(self.index_dir / "staging", ignore_errors=True)
