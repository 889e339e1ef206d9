"""What the secret scanner masked, per file: kind, line and variable name, never the secret.

The ``redactions`` table has one row per masked secret of a file's committed state. Rows change in
the commit transaction with the chunks they describe: a re-parsed or deleted file's rows are
replaced, a moved file's follow it. ``redactions_of`` is what ``codeindex why PATH`` shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from codeindex.secrets import Redaction
from codeindex.store import db as dbm
from codeindex.store.layout import DB_NAME

if TYPE_CHECKING:
    import pyarrow as pa

RedactionRow = tuple[str, int, str, str]  # (path, line, kind, name)


def replace_redactions(con: duckdb.DuckDBPyConnection, *, replaced: Sequence[str],
                       moved: Sequence[tuple[str, str]], rows: Iterable[RedactionRow]) -> None:
    """Inside the commit transaction: drop the rows of ``replaced`` paths (re-parsed or deleted), carry
    moved files' rows to their new path, and insert this run's ``rows``."""
    import pyarrow as pa

    if moved:
        con.register("moved_redacted", pa.table({"old": pa.array([m[0] for m in moved], pa.string()),
                                                 "new": pa.array([m[1] for m in moved], pa.string())}))
        con.execute("UPDATE redactions SET path = m.new FROM moved_redacted m WHERE redactions.path = m.old")
    if replaced:
        dbm.register_list(con, "redacted_paths", "path", list(replaced), pa.string())
        con.execute("DELETE FROM redactions WHERE path IN (SELECT path FROM redacted_paths)")
    table = _table(list(rows))
    if table.num_rows:
        dbm.insert_arrow(con, "redactions", table)


def _table(rows: list[RedactionRow]) -> pa.Table:
    import pyarrow as pa

    return pa.table({"path": pa.array([r[0] for r in rows], pa.string()),
                     "line": pa.array([r[1] for r in rows], pa.int32()),
                     "kind": pa.array([r[2] for r in rows], pa.string()),
                     "name": pa.array([r[3] for r in rows], pa.string())})


def redactions_of(index_dir: Path, path: str) -> list[Redaction]:
    """The secrets masked in ``path`` (root-relative, as the index stores it), by line.

    For ``codeindex why PATH``: say that a file's chunks were redacted and where, without the
    secrets (the index never held them). An empty list for a file with none, or not indexed.
    """
    with dbm.open_db(index_dir / DB_NAME, read_only=True) as con:
        dbm.check_schema(con, index_dir / DB_NAME)
        rows = con.execute("SELECT line, kind, name FROM redactions WHERE path = ? ORDER BY line, kind",
                           [path]).fetchall()
    return [Redaction(int(line), kind, name or "") for line, kind, name in rows]
