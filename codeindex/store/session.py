"""One read-only database session for a run's planning phase.

A run reads the committed state several times before it commits: the snapshot, the live segment
list (to remove orphans), the vector keys it may reuse, the chunk rows of moved files. Each open of
DuckDB costs ~15-30 ms on the edit path, so a run opens one read-only connection on first use, keeps
it through planning and the pipeline (read-only connections do not block searches in other
processes), and closes it before the commit opens the one write session.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from codeindex.store import db as dbm

if TYPE_CHECKING:
    import duckdb


class ReadSession:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._con: duckdb.DuckDBPyConnection | None = None

    def con(self) -> duckdb.DuckDBPyConnection:
        """The session's connection, opened (and its schema checked) on first use."""
        if self._con is None:
            con = dbm.connect(self.db_path, read_only=True)
            try:
                dbm.check_schema(con, self.db_path)
            except BaseException:
                con.close()
                raise
            self._con = con
        return self._con

    def close(self) -> None:
        """End the session (before the commit: the writer needs the file to itself)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> ReadSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
