"""The commit's bulk load: staged Parquet batches read by DuckDB itself, postings sorted in one pass."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from codeindex import Index
from codeindex.errors import UsageError
from codeindex.search.analysis import postings_table
from codeindex.store.db import parquet_paths
from codeindex.store.postings import add_postings, cluster_postings, lex_stats, load_postings_parts
from codeindex.store.schema import POSTINGS_DDL


def test_parquet_paths_read_only_the_named_file(tmp_path: Path) -> None:
    # Each pair: a directory whose name DuckDB would expand as a glob, and a neighbour it would match.
    pairs = [("a*", "ab"), ("x[1]", "x1"), ("q?", "qq")]
    for n, (globby, neighbour) in enumerate(pairs):
        for name, rows in ((globby, n + 1), (neighbour, 10 + n)):
            (tmp_path / name).mkdir()
            pq.write_table(pa.table({"v": list(range(rows))}), tmp_path / name / "p.parquet")
    con = duckdb.connect()
    for n, (globby, _) in enumerate(pairs):
        [file] = parquet_paths([tmp_path / globby / "p.parquet"])
        assert con.execute("SELECT count(*) FROM read_parquet(?)", [[file]]).fetchall() == [(n + 1,)]


def _batches(tmp_path: Path, n_batches: int, first_id: int = 0) -> tuple[list[Path], list[Path], list]:
    """Staged chunk and postings parts as the pipeline writes them, plus the same batches in memory."""
    rng = random.Random(first_id)
    vocab = [f"word{i}" for i in range(2_000)]
    chunk_parts, postings_parts, batches = [], [], []
    chunk_id = first_id
    for b in range(n_batches):
        texts = [" ".join(rng.choices(vocab, k=rng.randint(5, 80))) for _ in range(40)]
        ids = list(range(chunk_id, chunk_id + len(texts)))
        chunk_id += len(texts)
        table, lens = postings_table(ids, texts, ["p.txt"] * len(texts), [""] * len(texts))
        cpart, ppart = tmp_path / f"chunks-{first_id}-{b}.parquet", tmp_path / f"postings-{first_id}-{b}.parquet"
        pq.write_table(pa.table({"chunk_id": pa.array(ids, pa.int64()), "lex_len": pa.array(lens, pa.int32())}),
                       cpart)
        pq.write_table(table, ppart)
        chunk_parts.append(cpart)
        postings_parts.append(ppart)
        batches.append((table, lens))
    return chunk_parts, postings_parts, batches


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(POSTINGS_DDL)
    con.execute("CREATE TABLE chunks (chunk_id BIGINT, lex_len INTEGER)")
    return con


def _stored(con: duckdb.DuckDBPyConnection) -> list[tuple[int, int, int]]:
    return con.execute("SELECT term_id, chunk_id, tf FROM postings ORDER BY rowid").fetchall()


def test_load_postings_parts_equals_batches_then_clustering(tmp_path: Path) -> None:
    chunk_parts, postings_parts, batches = _batches(tmp_path, 6)
    by_batches, bulk = _con(), _con()
    for table, lens in batches:
        add_postings(by_batches, table, lens)
    by_batches.execute("INSERT INTO chunks SELECT chunk_id, lex_len FROM read_parquet(?)",
                       [parquet_paths(chunk_parts)])  # clustering keeps the postings of live chunks
    cluster_postings(by_batches)
    bulk.execute("BEGIN")
    load_postings_parts(bulk, [str(p) for p in postings_parts], [str(c) for c in chunk_parts])
    bulk.execute("COMMIT")
    stored = _stored(bulk)
    assert stored == _stored(by_batches)
    assert stored == sorted(stored)  # stored in term order: queries prune row groups
    stats = lex_stats(bulk)
    assert stats == {**lex_stats(by_batches), "unclustered_rows": 0.0}
    assert stats["n_docs"] == 6 * 40


def test_load_postings_parts_into_a_filled_table_counts_unclustered_rows(tmp_path: Path) -> None:
    first_chunks, first_postings, _ = _batches(tmp_path, 2)
    more_chunks, more_postings, more = _batches(tmp_path, 3, first_id=10_000)
    con = _con()
    load_postings_parts(con, [str(p) for p in first_postings], [str(c) for c in first_chunks])
    before = lex_stats(con)
    load_postings_parts(con, [str(p) for p in more_postings], [str(c) for c in more_chunks])
    after = lex_stats(con)
    assert after["unclustered_rows"] == sum(table.num_rows for table, _ in more)
    assert after["n_docs"] == before["n_docs"] + 3 * 40
    assert after["total_len"] == before["total_len"] + sum(sum(lens) for _, lens in more)


def test_rebuild_and_update_under_an_index_dir_named_like_a_glob(scenario, tmp_path: Path) -> None:
    root = scenario("e2e_repo")
    plain, globby = tmp_path / "idx-plain", tmp_path / "idx[1]*"
    (tmp_path / "idx1-neighbour").mkdir()  # what "idx[1]*" would match as a pattern
    for index_dir in (plain, globby):
        Index(root, index_dir=index_dir).rebuild(scheduler="sync", embedder="hashing")
    edited = next(p for p in sorted(root.rglob("*.py")) if ".codeindex" not in p.parts)
    edited.write_text(edited.read_text() + "\n\ndef added_after_rebuild():\n    return 42\n")
    for index_dir in (plain, globby):
        Index(root, index_dir=index_dir).update(scheduler="sync", embedder="hashing")

    def dump(d: Path) -> tuple[list[tuple], list[tuple]]:
        con = duckdb.connect(str(d / "meta.duckdb"), read_only=True)
        try:
            chunks = con.execute("SELECT path, start_line, end_line, symbol, lex_len FROM chunks ORDER BY 1, 2")
            return chunks.fetchall(), con.execute("SELECT * FROM lex_stats ORDER BY k").fetchall()
        finally:
            con.close()

    assert dump(globby) == dump(plain)
    con = duckdb.connect(str(globby / "meta.duckdb"), read_only=True)
    try:  # the new function is indexed (a two-line function shares a chunk with its neighbour: look it up)
        assert con.execute("SELECT count(*) FROM symbols WHERE name = 'added_after_rebuild'").fetchall() == [(1,)]
    finally:
        con.close()


def test_an_index_dir_with_a_question_mark_is_a_clear_error(scenario, tmp_path: Path) -> None:
    root = scenario("e2e_repo")
    with pytest.raises(UsageError, match="contains '\\?'"):
        Index(root, index_dir=tmp_path / "what?")
