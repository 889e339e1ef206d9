"""Where one index keeps its files: the layout object the engine is handed instead of the API.

``.codeindex/`` at the indexed root by default, or any folder given with ``--index-dir``:
``meta.duckdb`` (the database), ``seg-<n>.faiss`` (vector segments), ``staging/`` (a run's
uncommitted parts), ``lock`` (the writer lock), ``live.lock`` (held by a running ``codeindex serve`` or
``watch``), ``duckdb-tmp/`` (spill space) and a ``.gitignore`` holding ``*``, so that the index never
shows up in ``git status`` nor goes into a commit by ``git add .``.

``find_index_root`` is how commands that use an existing index find it from a subdirectory: they walk
up from the working directory, as git does for ``.git``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

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
        if (folder / INDEX_DIR_NAME / DB_NAME).is_file():
            return folder
    return None


def make_index_dir(index_dir: Path) -> None:
    """Create the index folder (and parents) with a ``.gitignore`` of ``*`` inside, if not there yet.

    The ``.gitignore`` ignores the folder itself too (git reads it from inside the folder), so nothing
    outside the index has to be told about it.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    ignore = index_dir / ".gitignore"
    if not ignore.exists():
        with contextlib.suppress(OSError):  # a read-only folder: the index still works, only git would see it
            ignore.write_text(GITIGNORE)


@dataclass(frozen=True, slots=True)
class IndexLayout:
    """The source tree's root and the index folder, both absolute."""

    root: Path
    index_dir: Path

    @property
    def db_path(self) -> Path:
        return self.index_dir / DB_NAME

    def exists(self) -> bool:
        return self.db_path.exists()

    def excluded_names(self) -> set[str]:
        """Top-level names discovery must never walk into: the index folder when it sits in the root."""
        return {self.index_dir.name} if self.index_dir.parent == self.root else {INDEX_DIR_NAME}

    def new_staging_dir(self) -> Path:
        """A fresh folder for one run's uncommitted parts (removed when the run ends, whatever happens)."""
        staging = self.index_dir / "staging" / uuid.uuid4().hex[:12]
        staging.mkdir(parents=True)
        return staging

    def clean_staging(self) -> None:
        """Remove every run's staging folder (what a crashed run left behind)."""
        shutil.rmtree(self.index_dir / "staging", ignore_errors=True)
