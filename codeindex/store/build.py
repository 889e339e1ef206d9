"""What an index folder's databases reference: the live one and a rebuild's resumable one beside it.

A rebuild that replaces an existing index checkpoints into ``build.duckdb`` and renames it over
``meta.duckdb`` only when it is complete, so the old index keeps serving while the new one survives a
kill. Both databases list segment files in the same folder, and no writer may delete a file either
one lists: every orphan removal asks ``kept_segment_files``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from codeindex.errors import CodeIndexError
from codeindex.store import db as dbm
from codeindex.store.layout import BUILD_DB_NAME, DB_NAME

if TYPE_CHECKING:
    import duckdb


def listed_segments(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The segment files the database behind ``con`` lists as live."""
    return {r[0] for r in con.execute("SELECT file FROM segments").fetchall()}


def segment_files(db_path: Path) -> set[str] | None:
    """The segment files the database at ``db_path`` lists; empty if it does not exist, None if unreadable."""
    if not db_path.exists():
        return set()
    try:
        with dbm.open_db(db_path, read_only=True) as con:
            dbm.check_schema(con, db_path)
            return listed_segments(con)
    except CodeIndexError:
        return None


def kept_segment_files(index_dir: Path, *, known: dict[str, set[str]] | None = None) -> set[str] | None:
    """Segment files of the live database and of a resumable build: what orphan removal must keep.

    ``known`` maps a database name (``DB_NAME``, ``BUILD_DB_NAME``) to the files the caller already
    read on its own connection, sparing a second open. None when a database that exists cannot be
    read: then nothing may be removed (a rebuild replaces a damaged index and cleans up after it).
    """
    kept: set[str] = set()
    for name in (DB_NAME, BUILD_DB_NAME):
        files = (known or {}).get(name)
        if files is None:
            files = segment_files(index_dir / name)
        if files is None:
            return None
        kept |= files
    return kept


def build_in_progress(index_dir: Path) -> dict[str, Any] | None:
    """How far the resumable rebuild beside the live index got (None when there is none or it is unreadable)."""
    path = index_dir / BUILD_DB_NAME
    if not path.exists():
        return None
    try:
        with dbm.open_db(path, read_only=True) as con:
            dbm.check_schema(con, path)
            return coverage(con)
    except CodeIndexError:
        return None


def coverage(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Files and chunks a committed state holds, and how many of its chunks have their vector yet."""
    files = dbm.scalar(con, "SELECT count(*) FROM files WHERE skip_reason IS NULL") or 0
    chunks = dbm.scalar(con, "SELECT count(*) FROM chunks") or 0
    pending = dbm.scalar(con, "SELECT count(*) FROM chunks c JOIN vectors v ON v.vec_id = c.vec_id "
                              "WHERE v.segment IS NULL") or 0
    return {"files": int(files), "chunks": int(chunks), "chunks_embedded": int(chunks) - int(pending)}
