"""The incremental BM25 index in DuckDB, checked against a plain-Python BM25 over the same documents."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeindex.search.analysis import postings_table, query_tokens, term_frequencies, term_key
from codeindex.search.ranking import bm25_search
from codeindex.store.postings import (
    ChunkLengths,
    add_postings,
    cluster_postings,
    dead_ratio,
    lex_stats,
    needs_clustering,
    remove_postings,
    unclustered_ratio,
)
from codeindex.store.schema import POSTINGS_DDL

# The lead's chunks table, reduced to the columns the lexical index and filters read.
CHUNKS_DDL = """
CREATE TABLE chunks (chunk_id BIGINT PRIMARY KEY, path VARCHAR, language VARCHAR, kind VARCHAR,
                     symbol VARCHAR, text VARCHAR, lex_len INTEGER)
"""

Doc = tuple[str, str, str, str]  # (path, language, symbol, text)

DOCS: dict[int, Doc] = {
    1: ("src/io/reader.py", "python", "parse_file", "def parse_file(path):\n    return open(path).read()"),
    2: ("web/app.js", "javascript", "parseFile", "function parseFile(x) { return JSON.parse(x) }"),
    3: ("docs/notes.md", "markdown", "", "Here we parse the file, then parse it again, and again parse."),
    4: ("srv/main.go", "go", "HTTPServer2", "type HTTPServer2 struct { addr string }\n// ERR_42 means busy"),
    5: ("src/io/writer.py", "python", "write_file",
        "def write_file(path, data):\n    open(path, 'w').write(data)"),
    6: ("lib/util.rs", "rust", "tokens", "fn tokens(s: &str) -> Vec<String> { s.split(' ').collect() }"),
}


def new_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(CHUNKS_DDL)
    con.execute(POSTINGS_DDL)
    return con


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = new_con()
    yield connection
    connection.close()


def add_docs(con: duckdb.DuckDBPyConnection, docs: Mapping[int, Doc]) -> None:
    """What the lead's write stage does: postings and chunks rows, in one transaction."""
    if not docs:
        return
    ids = list(docs)
    table, lex_lens = postings_table(
        ids, [d[3] for d in docs.values()], [d[0] for d in docs.values()], [d[2] for d in docs.values()]
    )
    con.execute("BEGIN")
    add_postings(con, table, lex_lens)
    for (chunk_id, (path, language, symbol, text)), lex_len in zip(docs.items(), lex_lens, strict=True):
        con.execute(
            "INSERT INTO chunks VALUES (?, ?, ?, 'block', ?, ?, ?)",
            [chunk_id, path, language, symbol, text, lex_len],
        )
    con.execute("COMMIT")


def remove_docs(con: duckdb.DuckDBPyConnection, ids: list[int]) -> None:
    """The documented order: postings first (reads chunks.lex_len), then the chunks rows."""
    con.execute("BEGIN")
    remove_postings(con, ids)
    con.execute("DELETE FROM chunks WHERE chunk_id IN (SELECT unnest(?))", [ids])
    con.execute("COMMIT")


def reference_bm25(docs: Mapping[int, Doc], query: str, k1: float = 1.2, b: float = 0.75) -> dict[int, float]:
    """Okapi BM25 written out plainly, over the same document text (chunk text, path, symbol)."""
    analysed = {
        i: term_frequencies(f"{text}\n{path}\n{symbol}") for i, (path, _, symbol, text) in docs.items()
    }
    n = len(docs)
    avgdl = sum(length for _, length in analysed.values()) / n
    scores: dict[int, float] = {}
    for term in query_tokens(query):
        df = sum(1 for tf, _ in analysed.values() if term in tf)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for doc_id, (tf, length) in analysed.items():
            if term in tf:
                f = tf[term]
                scores[doc_id] = scores.get(doc_id, 0.0) + idf * f * (k1 + 1) / (
                    f + k1 * (1 - b + b * length / avgdl)
                )
    return scores


def assert_matches_reference(results: list[tuple[int, float]], expected: dict[int, float], k: int) -> None:
    want = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:k]
    assert [doc for doc, _ in results] == [doc for doc, _ in want]
    for (_, got), (_, ref) in zip(results, want, strict=True):
        assert got == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize(
    "query", ["parse file", "parseFile", "parse_file", "http server", "err_42", "open path", "nothing here"]
)
def test_scores_match_reference_bm25(con: duckdb.DuckDBPyConnection, query: str) -> None:
    add_docs(con, DOCS)
    assert_matches_reference(bm25_search(con, query, 10), reference_bm25(DOCS, query), 10)


@pytest.mark.parametrize("query", ["parseFile", "parse_file", "parse file"])
def test_every_spelling_retrieves_both_definitions(con: duckdb.DuckDBPyConnection, query: str) -> None:
    add_docs(con, DOCS)
    top3 = [doc for doc, _ in bm25_search(con, query, 3)]
    assert {1, 2} <= set(top3)


def test_exact_identifier_ranks_first(con: duckdb.DuckDBPyConnection) -> None:
    add_docs(con, DOCS)
    assert bm25_search(con, "parse_file", 1)[0][0] == 1
    assert bm25_search(con, "parseFile", 1)[0][0] == 2
    assert bm25_search(con, "ERR_42", 1)[0][0] == 4


def test_path_and_symbol_are_indexed(con: duckdb.DuckDBPyConnection) -> None:
    add_docs(con, DOCS)
    assert [doc for doc, _ in bm25_search(con, "reader", 5)] == [1]
    assert [doc for doc, _ in bm25_search(con, "util", 5)] == [6]


def test_filters_apply_to_results_not_statistics(con: duckdb.DuckDBPyConnection) -> None:
    add_docs(con, DOCS)
    unfiltered = dict(bm25_search(con, "parse file", 10))
    py_only = bm25_search(con, "parse file", 10, where_sql="c.language = ?", params=["python"])
    assert [doc for doc, _ in py_only] == [1, 5]
    assert all(score == pytest.approx(unfiltered[doc]) for doc, score in py_only)
    globbed = bm25_search(
        con, "file", 10, where_sql="c.path GLOB ? AND c.kind = ?", params=["src/**", "block"]
    )
    assert {doc for doc, _ in globbed} == {1, 5}


def test_empty_index_and_empty_query(con: duckdb.DuckDBPyConnection) -> None:
    assert bm25_search(con, "parse", 5) == []
    add_docs(con, DOCS)
    assert bm25_search(con, "  ()  ", 5) == []
    assert bm25_search(con, "parse", 0) == []


def test_stats_follow_add_and_remove(con: duckdb.DuckDBPyConnection) -> None:
    add_docs(con, DOCS)
    total = sum(term_frequencies(f"{t}\n{p}\n{s}")[1] for p, _, s, t in DOCS.values())
    assert lex_stats(con)["n_docs"] == len(DOCS)
    assert lex_stats(con)["total_len"] == total
    remove_docs(con, [2, 3])
    kept = {i: d for i, d in DOCS.items() if i not in (2, 3)}
    assert lex_stats(con)["n_docs"] == len(kept)
    kept_len = sum(term_frequencies(f"{t}\n{p}\n{s}")[1] for p, _, s, t in kept.values())
    assert lex_stats(con)["total_len"] == kept_len
    # Removal is lazy: the postings stay, counted as dead, and no search counts or returns them ...
    assert lex_stats(con)["dead_chunks"] == 2
    assert dead_ratio(con) == pytest.approx(2 / len(DOCS))
    dead_sql = "SELECT count(*) FROM postings WHERE chunk_id IN (2, 3)"
    assert con.execute(dead_sql).fetchall()[0][0] > 0
    for lengths in (None, ChunkLengths.load(con)):
        hits = bm25_search(con, " ".join(DOCS[2][3].split()[:3] + DOCS[3][3].split()[:3]), 10, lengths=lengths)
        assert {2, 3}.isdisjoint(doc for doc, _ in hits)
    # ... until clustering drops them.
    con.execute("BEGIN")
    cluster_postings(con)
    con.execute("COMMIT")
    assert con.execute(dead_sql).fetchall() == [(0,)]
    assert lex_stats(con)["dead_chunks"] == 0 and dead_ratio(con) == 0


def test_rollback_leaves_no_trace(con: duckdb.DuckDBPyConnection) -> None:
    """add/remove never commit on their own: the caller's ROLLBACK undoes them."""
    add_docs(con, {1: DOCS[1]})
    before = (lex_stats(con), con.execute("SELECT * FROM postings ORDER BY ALL").fetchall())
    table, lex_lens = postings_table([2], [DOCS[2][3]], [DOCS[2][0]], [DOCS[2][2]])
    con.execute("BEGIN")
    add_postings(con, table, lex_lens)
    remove_postings(con, [1])
    con.execute("ROLLBACK")
    assert (lex_stats(con), con.execute("SELECT * FROM postings ORDER BY ALL").fetchall()) == before


def test_cluster_postings_keeps_results(con: duckdb.DuckDBPyConnection) -> None:
    add_docs(con, {i: DOCS[i] for i in (1, 2, 3)})
    add_docs(con, {i: DOCS[i] for i in (4, 5, 6)})
    assert unclustered_ratio(con) > 0
    before = bm25_search(con, "parse file tokens", 10)
    con.execute("BEGIN")
    cluster_postings(con)
    con.execute("COMMIT")
    assert unclustered_ratio(con) == 0
    assert bm25_search(con, "parse file tokens", 10) == before


def test_postings_table_shape() -> None:
    table, lex_lens = postings_table([7, 8], ["a a b", ""], ["x.py", "y.py"], ["", ""])
    rows = sorted(zip(*(table.column(c).to_pylist() for c in ("term_id", "chunk_id", "tf")), strict=True))
    k = term_key
    assert rows == sorted([(k("a"), 7, 2), (k("b"), 7, 1), (k("py"), 7, 1), (k("py"), 8, 1), (k("x"), 7, 1),
                           (k("y"), 8, 1)])
    assert lex_lens == [5, 2]
    with pytest.raises(ValueError, match="differ in length"):
        postings_table([1], ["a"], [], [""])


# ---------------------------------------------------------------------- incremental == fresh build

WORDS = ["parseFile", "parse_file", "read", "writeData", "HTTPServer", "err_42", "token", "x", "main", "Foo"]
doc_text = st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join)
chunk_ids = st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True)
operation = st.tuples(st.booleans(), chunk_ids, doc_text)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=10), query=doc_text)
def test_incremental_equals_fresh_build(ops: list[tuple[bool, list[int], str]], query: str) -> None:
    """Adds, replacements and removals (some followed by clustering) rank like a fresh build of what is left.

    ``slot`` plays a chunk's place in a file; as in a real update, a replaced chunk gets a new chunk id:
    ids are never reused, which lazy removal relies on.
    """
    incremental = new_con()
    live: dict[int, Doc] = {}  # chunk id -> doc
    id_of_slot: dict[int, int] = {}
    next_id = 0
    for step, (is_add, slots, text) in enumerate(ops):
        gone = [id_of_slot.pop(slot) for slot in slots if slot in id_of_slot]
        remove_docs(incremental, gone)
        for chunk_id in gone:
            live.pop(chunk_id)
        if is_add:  # (re)index these slots under new ids, as an update does
            batch = {}
            for slot in slots:
                id_of_slot[slot] = next_id
                batch[next_id] = (f"f{slot % 3}.py", "python", f"sym{slot}", f"{text} {slot}")
                next_id += 1
            add_docs(incremental, batch)
            live.update(batch)
        if step % 4 == 3 and needs_clustering(incremental, threshold=0.0):
            incremental.execute("BEGIN")
            cluster_postings(incremental)
            incremental.execute("COMMIT")
    fresh = new_con()
    add_docs(fresh, live)
    assert lex_stats(incremental)["n_docs"] == lex_stats(fresh)["n_docs"] == len(live)
    assert lex_stats(incremental)["total_len"] == lex_stats(fresh)["total_len"]
    df_sql = ("SELECT term_id, count(*) FROM postings WHERE chunk_id IN (SELECT chunk_id FROM chunks) "
              "GROUP BY term_id ORDER BY term_id")
    assert incremental.execute(df_sql).fetchall() == fresh.execute(df_sql).fetchall()
    [(dead,)] = incremental.execute(
        "SELECT count(DISTINCT chunk_id) FROM postings WHERE chunk_id NOT IN (SELECT chunk_id FROM chunks)").fetchall()
    assert lex_stats(incremental)["dead_chunks"] == dead
    want = bm25_search(fresh, query, 5)
    for got in (bm25_search(incremental, query, 5), bm25_search(incremental, query, 5,
                                                               lengths=ChunkLengths.load(incremental))):
        assert [doc for doc, _ in got] == [doc for doc, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-9)
    if live:
        assert_matches_reference(got, reference_bm25(live, query), 5)
    incremental.close()
    fresh.close()
