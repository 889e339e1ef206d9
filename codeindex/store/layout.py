"""Where one index keeps its files: the layout object the engine is handed instead of the API.

``.codeindex/`` at the indexed root by default, or any folder given with ``--index-dir``:
``meta.duckdb`` (the database), ``seg-<n>.faiss`` (vector segments), ``staging/`` (a run's
uncommitted parts), ``lock`` (the writer lock) and ``duckdb-tmp/`` (spill space).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from codeindex.errors import EnvironmentProblem, environment_problem

DB_NAME = "meta.duckdb"
INDEX_DIR_NAME = ".codeindex"


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
        """Top-level names discovery must never walk into: the index folder when it sits in the root."""
        return {self.index_dir.name} if self.index_dir.parent == self.root else {INDEX_DIR_NAME}

    def new_staging_dir(self) -> Path:
        """A fresh folder for one run's uncommitted parts (removed when the run ends, whatever happens)."""
        staging = self.index_dir / "staging" / uuid.uuid4().hex[:12]
        try:  # never parents=True above the index folder: a tree moved mid-run must not be recreated
            staging.parent.mkdir(exist_ok=True)
            staging.mkdir()
        except OSError as exc:
            raise environment_problem(exc, staging, "create the staging folder") from exc
        return staging

    def clean_staging(self) -> None:
        """Remove every run's staging folder (what a crashed run left behind)."""
        shutil.rmtree(self.index_dir / "staging", ignore_errors=True)
