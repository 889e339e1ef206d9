"""``add_postings`` batches inside one transaction (as a rebuild's commit adds them) keep every posting exact.

A rebuild adds dozens of batches in one transaction. Storage v1 kept a term dictionary with a
primary key and upserts, and DuckDB 2.0 dropped rows from ``INSERT ... ON CONFLICT ... RETURNING``
there; v2 stores hashed term ids, and this test pins that every (term, chunk, tf) survives.
"""

from __future__ import annotations

import random
from collections import Counter

import duckdb
import pytest

from codeindex.search.analysis import code_tokens, postings_table, term_key
from codeindex.store.postings import add_postings
from codeindex.store.schema import POSTINGS_DDL


@pytest.mark.slow
def test_many_batches_in_one_transaction_keep_every_posting() -> None:
    rng = random.Random(3)
    vocab = [f"word{i}" for i in range(30_000)]
    con = duckdb.connect()
    con.execute(POSTINGS_DDL)
    con.execute("CREATE TABLE chunks (chunk_id BIGINT, lex_len INTEGER)")
    con.execute("BEGIN")
    chunk_id = 0
    expected: set[tuple[int, int, int]] = set()
    for _ in range(25):
        texts = [" ".join(rng.choices(vocab, k=300)) for _ in range(64)]
        ids = list(range(chunk_id, chunk_id + len(texts)))
        chunk_id += len(texts)
        table, lens = postings_table(ids, texts, ["p.txt"] * len(texts), [""] * len(texts))
        add_postings(con, table, lens)
        for cid, text in zip(ids, texts, strict=True):
            counts = Counter(code_tokens(f"{text}\np.txt\n"))
            expected.update((term_key(t), cid, n) for t, n in counts.items())
    con.execute("COMMIT")
    stored = set(con.execute("SELECT term_id, chunk_id, tf FROM postings").fetchall())
    assert stored == expected
    assert con.execute("SELECT count(*) FROM postings").fetchall() == [(len(expected),)]


def test_term_key_is_stable_and_spreads() -> None:
    # Part of the storage format: these values must never change between versions.
    assert term_key("parse") == 6495692958074113047  # blake2b-64 of b"parse", little-endian, signed
    assert term_key("parse") != term_key("Parse")
    keys = {term_key(f"t{i}") for i in range(100_000)}
    assert len(keys) == 100_000
    assert min(keys) < 0 < max(keys)  # the whole signed range is used
