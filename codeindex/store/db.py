"""DuckDB access: opening with retry, schema checks, snapshot reads and the commit transaction.

A DuckDB file admits one process at a time once a writer wants it, so nothing holds a connection for
long: a writer opens the database to read its plan inputs, closes it while it parses and embeds, and
opens it again only for the commit transaction. Readers retry briefly while a commit is in progress; a
searcher's kept read connection (``store/reader.py``) is released when a writer runs or when idle.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from codeindex.errors import (
    LOCK_MARKERS,
    BusyError,
    CorruptIndexError,
    NotIndexedError,
    SchemaVersionError,
    classify,
)
from codeindex.store.layout import DB_NAME as DB_NAME  # re-exported: callers say dbm.DB_NAME
from codeindex.store.layout import make_private_file, private_index_error
from codeindex.store.schema import POSTINGS_DDL, SCHEMA_VERSION, TABLES

if TYPE_CHECKING:  # pyarrow costs ~0.2 s to import: a no-op update never needs it
    import pyarrow as pa

MEMORY_LIMIT = "1GB"
BULK_MEMORY_LIMIT = "256MB"
BLOCK_SIZE = 16384
"""Block size of a new database file. DuckDB's default (256 KiB) makes every commit's checkpoint write
whole 256 KiB blocks per touched table: a one-file update wrote ~8.5 MB on a 47k-chunk index. 16 KiB
blocks write ~10x less at the same BM25 latency and ~10% larger file (benchmarks/edit_footprint.py)."""


def duckdb_config(path: Path, **extra: str) -> dict[str, str | bool | int | float | list[str]]:
    """Settings for every connection: two threads, and a memory cap with spilling to a temp directory
    beside the database, so a bulk commit of millions of postings stays flat in memory instead of
    taking DuckDB's default of 80% of RAM."""
    return {"threads": "2", "memory_limit": MEMORY_LIMIT, "temp_directory": str(path.parent / "duckdb-tmp"),
            **extra}


def _is_lock_conflict(exc: Exception) -> bool:
    return any(marker in str(exc) for marker in LOCK_MARKERS)


_OUR_BUGS = ("Connection Error", "Binder Error", "Parser Error")
"""Open failures that come from how we opened the file, not from the file: bugs, reported as such."""


def typed_error(exc: BaseException, path: Path) -> BaseException:
    """What a DuckDB failure on ``path`` means for the user (``errors.classify``), or ``exc`` itself (a bug)."""
    return classify(exc, path) or exc


def _open_error(exc: duckdb.Error, path: Path) -> BaseException:
    """An open that failed for another reason than a lock: the environment, damage, or our own bug."""
    typed = classify(exc, path)
    if typed is not None:
        return typed
    if any(marker in str(exc) for marker in _OUR_BUGS):
        return exc
    return CorruptIndexError(f"cannot open {path}: {str(exc).splitlines()[0]}")


# Read connections that searchers keep open between queries (``store/reader.py``), weakly: a dropped
# ``Index`` closes its connection. Any other open of the same file in this process releases them first.
_readers: weakref.WeakSet[Any] = weakref.WeakSet()
_readers_lock = threading.Lock()


def hold_reader(holder: Any) -> None:
    """Track ``holder`` (an object with ``db_path`` and ``release()``) as keeping a connection open."""
    with _readers_lock:
        _readers.add(holder)


def held_readers() -> list[Any]:
    with _readers_lock:
        return list(_readers)


def release_readers(path: Path, *, but: Any = None) -> None:
    """Close the connections searchers of this process keep open on ``path`` (except ``but``'s).

    DuckDB refuses a second connection to a file with other settings in the same process, and a kept
    connection would serve the pre-rebuild file to a new one; so every open goes through here.
    """
    target = os.path.abspath(path)
    for holder in held_readers():
        if holder is not but and os.path.abspath(holder.db_path) == target:
            holder.release()


def connect(path: Path, *, read_only: bool, timeout_s: float = 30.0, release: bool = True,
            shared: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the database, waiting (with jittered back-off) while another process holds it.

    ``release`` closes the read connections this process's searchers keep on the file first (see
    ``release_readers``); only such a searcher, which releases the others itself, passes False.
    ``shared`` opens with DuckDB's default instance settings and applies ours with ``SET``: a
    connection kept open then does not make a plain ``duckdb.connect(path, read_only=True)`` elsewhere
    in the process fail ("different configuration"), it shares the instance.
    """
    try:
        exists = path.exists()
    except PermissionError:
        raise private_index_error(path.parent) from None
    if read_only and not exists:
        raise NotIndexedError(f"no index at {path.parent}")
    if release:
        release_readers(path)
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            if not shared:
                return duckdb.connect(str(path), read_only=read_only, config=duckdb_config(path))
            con = duckdb.connect(str(path), read_only=read_only)
            for name, value in duckdb_config(path).items():
                con.execute(f"SET {name} = '{value}'")  # our own constants, no user input
            return con
        except duckdb.Error as exc:
            if _is_lock_conflict(exc):
                if time.monotonic() > deadline:
                    raise BusyError(f"{path} stayed busy for {timeout_s:.0f}s (another process holds it): "
                                    f"{str(exc).splitlines()[0]}") from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.2)
                continue
            raise _open_error(exc, path) from exc


@contextlib.contextmanager
def open_db(path: Path, *, read_only: bool, timeout_s: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one phase; DuckDB failures inside the block become typed errors naming ``path``."""
    con = connect(path, read_only=read_only, timeout_s=timeout_s)
    try:
        yield con
    except duckdb.Error as exc:
        typed = typed_error(exc, path)
        if typed is exc:
            raise
        raise typed from exc
    finally:
        with contextlib.suppress(duckdb.Error):  # closing a connection to a damaged file may fail too
            con.close()


def create_database(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection to a new database file with codeindex's block size (no schema yet).

    A rebuild's bulk commit (millions of postings sorted by term, every chunk's text) runs here with
    a lower memory cap than other connections: DuckDB spills its sort to ``duckdb-tmp`` instead of
    adding a gigabyte to the peak of the run. (On xl: 88M postings sort in ~40 s at a ~0.6 GB peak.)
    """
    release_readers(path)
    con = duckdb.connect(str(path), config=duckdb_config(path, default_block_size=str(BLOCK_SIZE),
                                                         memory_limit=BULK_MEMORY_LIMIT))
    make_private_file(path)  # the rebuild's fresh file, renamed over meta.duckdb at the swap
    return con


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(TABLES)
    con.execute(POSTINGS_DDL)
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


def check_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Raise a clear error for a database that is not ours, damaged, or from another codeindex version.

    The version only; ``store/integrity.py: check_schema`` also checks the tables are all there."""
    try:
        row = first_row(con, "SELECT v FROM meta WHERE k = 'schema_version'")
    except duckdb.Error as exc:
        typed = classify(exc, path)
        if typed is not None and type(exc).__name__ != "CatalogException":
            raise typed from exc  # damaged blocks, a full disk...: say that, not "not ours"
        raise CorruptIndexError(f"{path} is not a codeindex database ({str(exc).splitlines()[0]})") from exc
    if row is None:
        raise CorruptIndexError(f"{path} is damaged: it records no schema version")
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise CorruptIndexError(f"{path} is damaged: its schema version is {str(row[0])[:40]!r}, not a number") \
            from None
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(f"{path} has schema version {version}; this codeindex reads up to "
                                 f"{SCHEMA_VERSION}")
    if version < SCHEMA_VERSION:
        raise SchemaVersionError(f"{path} has old schema version {version} (this codeindex writes "
                                 f"{SCHEMA_VERSION})", hint="run `codeindex rebuild PATH`")


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row (None if no row). Drains the result, as DuckDB 2 requires."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    rows = con.execute(sql, list(params)).fetchall()
    return tuple(rows[0]) if rows else None


def arrow(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pa.Table:
    """A query's result as an Arrow table without the extra copy the DB-API path makes."""
    return con.sql(sql, params=list(params) or None).to_arrow_table()


def get_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {k: v for k, v in con.execute("SELECT k, v FROM meta").fetchall()}


def set_meta(con: duckdb.DuckDBPyConnection, values: Mapping[str, Any]) -> None:
    """Upsert a handful of meta keys (plain statements: a few rows, no Arrow needed)."""
    for key, value in values.items():
        con.execute("DELETE FROM meta WHERE k = ?", [key])
        con.execute("INSERT INTO meta VALUES (?, ?)", [key, value if isinstance(value, str) else json.dumps(value)])


def insert_row(con: duckdb.DuckDBPyConnection, table_name: str, row: Mapping[str, Any]) -> None:
    """Insert one row with bound parameters (for single records such as a run; bulk data goes through Arrow)."""
    cols = ", ".join(row)
    marks = ", ".join("?" * len(row))
    con.execute(f"INSERT INTO {table_name} ({cols}) VALUES ({marks})", list(row.values()))


def insert_arrow(con: duckdb.DuckDBPyConnection, table_name: str, data: pa.Table) -> None:
    """Bulk insert through Arrow (never executemany: 100x slower); ``data`` names every column.

    Goes through a relation, not ``con.register``: inside a transaction DuckDB keeps each registered
    object alive until the transaction ends, even after ``unregister``. A rebuild's bulk commit
    inserts every chunk and posting in one transaction, and registering them held all of those Arrow
    tables at once: ~4 GB on the xl corpus (1.9M chunks, 88M postings).
    """
    if data.num_rows == 0:
        return
    columns = con.table(table_name).columns
    missing = sorted(set(columns) - set(data.column_names))
    if missing:
        raise ValueError(f"insert_arrow into {table_name}: missing columns {missing}")
    con.from_arrow(data.select(columns)).insert_into(table_name)


def parquet_paths(paths: Sequence[str | Path]) -> list[str]:
    """Paths to pass to DuckDB's ``read_parquet``: absolute, with glob characters escaped.

    DuckDB expands ``*``, ``?`` and ``[...]`` in file names even inside a list, so an index under a
    directory named ``a*`` or ``x[1]`` would also read its neighbours' files. A one-character class
    (``[*]``, ``[[]``) matches that character only. (Not a pyarrow dataset instead: DuckDB scanning
    one held ~2 GB of read-ahead batches for the xl corpus's chunks, ``read_parquet`` ~0.4 GB.)
    """
    escape = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})
    return [os.path.abspath(p).translate(escape) for p in paths]


def register_list(con: duckdb.DuckDBPyConnection, name: str, column: str, values: Sequence[Any],
                  type_: pa.DataType | None = None) -> None:
    """Register a one-column Arrow table for ``IN (SELECT ...)`` joins."""
    import pyarrow as pa

    con.register(name, pa.table({column: pa.array(list(values), type=type_)}))
