"""The read connection a searcher keeps between queries: reused, reopened on change, released for writers.

The rules under test (``codeindex/store/reader.py``): a kept connection never serves a state older than
the database on disk, never stands in a writer's way for longer than the idle delay, and the caches
built per state (chunk lengths, vector map) give exactly the results of the uncached queries.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from codeindex import Index
from codeindex.search.ranking import bm25_search
from codeindex.search.state import ChunkPlaces, DefinitionsByName, VectorMap
from codeindex.store import db as dbm
from codeindex.store.lock import writer_lock
from codeindex.store.postings import ChunkLengths
from codeindex.store.reader import ReadConnection, database_stamp, writer_active
from codeindex.store.schema import TABLES
from codeindex.store.symbols import SymbolRow
from tests.crash_helpers import QUERIES, make_tree
from tests.helpers import run_cli

NEW_FUNCTION = "def zanzibarquokka(n: int) -> int:\n    return n * 7\n"


def _reader(index: Index) -> ReadConnection:
    reader: ReadConnection = index._searcher._reader
    return reader


def _hit_paths(index: Index, query: str, mode: str = "lexical") -> set[str]:
    return {h.path for h in index.search(query, k=10, mode=mode)}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "tree", n_generated=4)
    Index(root).rebuild()
    return root


# ---------------------------------------------------------------------------------------------- pure parts


def test_database_stamp_moves_on_write_and_on_rename(tmp_path: Path) -> None:
    db = tmp_path / "meta.duckdb"
    assert database_stamp(db) == (0,) * 8
    db.write_bytes(b"a")
    first = database_stamp(db)
    assert database_stamp(db) == first  # reading changes nothing
    db.write_bytes(b"ab")
    second = database_stamp(db)
    assert second != first
    other = tmp_path / "meta.duckdb.new"
    other.write_bytes(b"ab")
    os.replace(other, db)  # a rebuild's swap: same size, new inode
    assert database_stamp(db) != second
    db.with_name("meta.duckdb.wal").write_bytes(b"w")
    assert database_stamp(db)[4:] != (0, 0, 0, 0)


def test_writer_active_follows_the_lock_holder(tmp_path: Path) -> None:
    assert not writer_active(tmp_path)
    with writer_lock(tmp_path):
        assert writer_active(tmp_path)
    assert not writer_active(tmp_path)  # the lock file stays, emptied


def test_vector_map_lists_every_chunk_of_a_vector_in_id_order() -> None:
    vm = VectorMap(vec_ids=np.array([1, 1, 3, 7, 7, 7]), chunk_ids=np.array([4, 9, 2, 0, 5, 8]))
    assert vm.chunks_of([7, 2, 1, 3, 99]) == [[0, 5, 8], [], [4, 9], [2], []]


def test_chunk_lengths_mark_missing_ids() -> None:
    lengths = ChunkLengths(by_id=np.array([5, -1, 3]))
    assert lengths.of(np.array([2, 0, 1, 10])).tolist() == [3, 5, -1, -1]


def _places_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(TABLES)
    # ids out of order and with a gap, two files interleaved: look-ups must not rely on either
    for chunk_id, path, first, last, symbol, kind in [
        (7, "b.py", 1, 4, "b.f", "function"), (2, "a.py", 1, 9, "a.C", "class"),
        (5, "b.py", 6, 8, "b.g", "function"), (3, "a.py", 11, 12, "a", "module"),
    ]:
        con.execute("INSERT INTO chunks (chunk_id, path, language, start_line, end_line, kind, symbol) "
                    "VALUES (?, ?, 'python', ?, ?, ?, ?)", [chunk_id, path, first, last, kind, symbol])
    con.execute("INSERT INTO symbols VALUES ('a.py', 'C', 'C', 'class', 1, 9), ('b.py', 'f', 'f', 'function', 1, 4),"
                " ('b.py', 'g', 'g', 'function', 6, 8), ('c.py', 'F', 'F', 'function', 1, 2)")
    return con


def test_chunk_places_give_the_rows_asked_in_order_and_skip_unknown_ids() -> None:
    places = ChunkPlaces.load(_places_db())
    assert places.of([5, 100, 2, 4, -1, 7]) == [
        (5, "b.py", 6, 8, "b.g", "function", "python"), (2, "a.py", 1, 9, "a.C", "class", "python"),
        (7, "b.py", 1, 4, "b.f", "function", "python")]
    assert sorted(places.in_paths(["b.py", "nowhere.py", "a.py"])) == [
        (2, "a.py", 1, 9), (3, "a.py", 11, 12), (5, "b.py", 6, 8), (7, "b.py", 1, 4)]


def test_definitions_by_name_answer_like_the_symbol_table() -> None:
    con = _places_db()
    by_name = DefinitionsByName.load(con)
    assert by_name.of(con, [("b.py", "g"), ("a.py", "g"), ("b.py", "g")]) == [
        SymbolRow("b.py", "g", "g", "function", 6, 8)]
    assert by_name.of(con, []) == []
    assert sorted(d.path for d in by_name.named(con, "f")) == ["b.py", "c.py"]  # case ignored, as in SQL
    assert by_name.named(con, "missing") == []


# ---------------------------------------------------------------------------------------------- caches


def test_cached_lengths_give_the_join_results(tree: Path) -> None:
    with dbm.open_db(tree / ".codeindex" / dbm.DB_NAME, read_only=True) as con:
        lengths = ChunkLengths.load(con)
        for query in (*QUERIES, "def return self", "x"):
            assert bm25_search(con, query, 20, lengths=lengths) == bm25_search(con, query, 20)


@pytest.mark.parametrize("mode", ["hybrid", "vector", "lexical"])
@pytest.mark.parametrize("languages", [(), ("python",)])
def test_warm_queries_equal_the_first_query_of_a_state(tree: Path, mode: str, languages: tuple[str, ...]) -> None:
    """The first query of a state uses joins, later ones the cached maps (lengths, vectors, places,
    definitions): same results, same order, with and without a filter."""
    for query in QUERIES:
        first = [r.as_dict() for r in Index(tree).search(query, k=10, mode=mode, languages=languages)]
        index = Index(tree)
        index.search("warm up", k=1, mode=mode)
        index.search("warm up", k=1, mode=mode)
        assert index._searcher._snapshot.warm
        assert [r.as_dict() for r in index.search(query, k=10, mode=mode, languages=languages)] == first
        assert index._searcher._snapshot.chunk_places is not None or not first  # the warm path ran
        index.close()


# ---------------------------------------------------------------------------------------------- lifecycle


def test_connection_is_kept_between_queries_and_closed_by_close(tree: Path) -> None:
    index = Index(tree)
    index.search("parse query string", k=3)
    reader = _reader(index)
    assert reader.is_open
    con_before = reader._con
    index.search("slugify text", k=3)
    assert reader._con is con_before  # not reopened
    index.close()
    assert not reader.is_open
    assert index.search("slugify text", k=3)  # reopens on demand


def test_idle_connection_is_released_by_the_reaper(tree: Path) -> None:
    reader = ReadConnection(tree / ".codeindex" / dbm.DB_NAME, idle_s=0.2)
    with reader.use() as (con, _):
        con.execute("SELECT 1").fetchall()
    reader.release_if_idle(time.monotonic())  # just used: kept
    assert reader.is_open
    deadline = time.monotonic() + 10
    while reader.is_open and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not reader.is_open


def test_no_connection_is_kept_while_a_writer_holds_the_lock(tree: Path) -> None:
    index = Index(tree)
    index.search("parse query string", k=3)
    assert _reader(index).is_open
    with writer_lock(index.index_dir):
        assert index.search("parse query string", k=3)
        assert not _reader(index).is_open
    index.search("parse query string", k=3)
    assert _reader(index).is_open


def test_plain_duckdb_connection_coexists_with_a_kept_one(tree: Path) -> None:
    index = Index(tree)
    index.search("parse query string", k=3)
    assert _reader(index).is_open
    with duckdb.connect(str(index.db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM chunks").fetchall()[0][0] > 0


def test_update_in_this_process_releases_and_search_sees_it(tree: Path) -> None:
    index = Index(tree)
    assert not _hit_paths(index, "zanzibarquokka")
    assert _reader(index).is_open
    (tree / "gen" / "quokka.py").write_text(NEW_FUNCTION)
    index.update()  # its read-write open must close the kept connection first
    assert _hit_paths(index, "zanzibarquokka") == {"gen/quokka.py"}
    assert "gen/quokka.py" in _hit_paths(index, "zanzibarquokka", mode="hybrid")


def test_rebuild_in_this_process_is_seen_by_a_kept_connection(tree: Path) -> None:
    index = Index(tree)
    assert "gen/mod1.py" in _hit_paths(index, "Inventory1")
    (tree / "gen" / "mod1.py").unlink()
    Index(tree).rebuild()
    assert "gen/mod1.py" not in _hit_paths(index, "Inventory1")
    assert "gen/mod1.py" not in {h.path for h in index.search("Inventory1", k=10, mode="hybrid")}


def test_idle_kept_connection_does_not_block_an_update_in_another_process(tree: Path) -> None:
    index = Index(tree)
    before = _hit_paths(index, "zanzibarquokka")
    assert _reader(index).is_open and not before
    (tree / "gen" / "quokka.py").write_text(NEW_FUNCTION)
    done = run_cli("update", str(tree))  # its commit waits at most the idle delay for our connection
    assert done.returncode == 0, done.stderr
    assert _hit_paths(index, "zanzibarquokka") == {"gen/quokka.py"}


def test_rebuild_swap_in_another_process_is_noticed(tree: Path) -> None:
    """A rebuild renames a new file over the one a kept connection reads: the next query reopens."""
    index = Index(tree)
    assert _hit_paths(index, "Inventory1")
    assert _reader(index).is_open
    (tree / "gen" / "mod1.py").unlink()
    (tree / "gen" / "quokka.py").write_text(NEW_FUNCTION)
    done = run_cli("rebuild", str(tree))
    assert done.returncode == 0, done.stderr
    assert "gen/mod1.py" not in _hit_paths(index, "Inventory1")
    assert _hit_paths(index, "zanzibarquokka") == {"gen/quokka.py"}
    assert "gen/quokka.py" in _hit_paths(index, "zanzibarquokka", mode="vector") | \
        _hit_paths(index, "zanzibarquokka n 7", mode="vector")
