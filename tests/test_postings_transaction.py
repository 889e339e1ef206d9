"""``add_postings`` batches inside one transaction (as a rebuild's commit adds them) keep every term id.

DuckDB 2.0 drops some rows from ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` when the same
transaction already upserted them; ``add_postings`` looks those up. Before that fix a rebuild of a
2,000-file corpus failed with "NOT NULL constraint failed: postings.term_id".
"""

from __future__ import annotations

import random

import duckdb

from codeindex.store.postings import POSTINGS_DDL, add_postings, postings_table


def test_many_batches_in_one_transaction_keep_postings_and_df_exact() -> None:
    rng = random.Random(3)
    vocab = [f"word{i}" for i in range(30_000)]
    con = duckdb.connect()
    con.execute(POSTINGS_DDL)
    con.execute("CREATE TABLE chunks (chunk_id BIGINT, lex_len INTEGER)")
    con.execute("BEGIN")
    chunk_id = 0
    for _ in range(25):
        texts = [" ".join(rng.choices(vocab, k=300)) for _ in range(64)]
        ids = list(range(chunk_id, chunk_id + len(texts)))
        chunk_id += len(texts)
        table, lens = postings_table(ids, texts, ["p.txt"] * len(texts), [""] * len(texts))
        add_postings(con, table, lens)
    con.execute("COMMIT")
    assert con.execute("SELECT count(*) FROM postings WHERE term_id IS NULL").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) - count(DISTINCT term_id) FROM lex_terms").fetchall() == [(0,)]
    wrong_df = con.execute("""SELECT count(*) FROM lex_terms t JOIN
        (SELECT term_id, count(*) AS n FROM postings GROUP BY term_id) p USING (term_id) WHERE t.df <> p.n""")
    assert wrong_df.fetchall() == [(0,)]
