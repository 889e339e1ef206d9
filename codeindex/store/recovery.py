"""Clean up after a writer that died mid-run (found when its stale lock is taken over).

A dead writer can leave: a staging folder of Parquet parts, segment files under temporary names or
sealed but never committed, and a half-built ``meta.duckdb.new`` or ``build.duckdb.new``. None is
referenced by committed state, so deleting them is always safe. A rebuild's ``build.duckdb`` stays:
it is a committed, resumable state, and its segments are kept too. The engine (``engine/execute.py``)
does the same at the start of every pipeline run, but an ``update`` that finds nothing to do (the
dead writer had committed) never gets there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from codeindex.store import db as dbm
from codeindex.store.build import kept_segment_files
from codeindex.store.layout import BUILD_DB_NAME
from codeindex.store.segments import remove_orphans


def remove_dead_writer_leftovers(index_dir: Path) -> list[str]:
    """Delete what a dead writer left behind; returns the names removed (for the log)."""
    removed: list[str] = []
    staging = index_dir / "staging"
    if staging.exists():
        shutil.rmtree(staging, ignore_errors=True)
        removed.append("staging/")
    for db_name in (dbm.DB_NAME, BUILD_DB_NAME):
        for stale in (db_name + ".new", db_name + ".new.wal"):
            if (index_dir / stale).exists():
                (index_dir / stale).unlink()
                removed.append(stale)
    kept = kept_segment_files(index_dir)
    if kept is None:
        return removed  # damaged: a rebuild replaces it and removes orphans after its commit
    removed.extend(remove_orphans(index_dir, kept))
    return removed
