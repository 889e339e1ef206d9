"""Where one index keeps its files: the layout object the engine is handed instead of the API.

``.codeindex/`` at the indexed root by default, or any folder given with ``--index-dir``:
``meta.duckdb`` (the database), ``seg-<n>.faiss`` (vector segments), ``staging/`` (a run's
uncommitted parts), ``lock`` (the writer lock), ``live.lock`` (held by a running ``codeindex serve`` or
``watch``) and ``duckdb-tmp/`` (spill space).
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "meta.duckdb"
INDEX_DIR_NAME = ".codeindex"


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
