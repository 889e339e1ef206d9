"""Lexical index cost at scale: bulk insert rate, BM25 query latency, one-file incremental update.

    python -m benchmarks.lexical_latency --corpus /work/corpora/large [--chunks 100000]

Chunks are 40-line windows of the corpus files (cycling over the files if there are too few), written
to an on-disk DuckDB in batches as the engine's write stage would. Query latency is measured side by
side on the same data before and after ``cluster_postings``, so the clustering gain is a ratio from
one run.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from codeindex.search.analysis import postings_table
from codeindex.search.ranking import bm25_search
from codeindex.store.postings import add_postings, cluster_postings, remove_postings
from codeindex.store.schema import POSTINGS_DDL

CHUNKS_DDL = """
CREATE TABLE chunks (chunk_id BIGINT PRIMARY KEY, path VARCHAR, language VARCHAR, kind VARCHAR,
                     symbol VARCHAR, text VARCHAR, lex_len INTEGER)
"""
WINDOW = 40
BATCH = 5000
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def load_windows(corpus: Path, n: int) -> tuple[list[str], list[str]]:
    """``n`` (path, text) windows of ``WINDOW`` lines, cycling over the corpus files if needed."""
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    paths: list[str] = []
    texts: list[str] = []
    cycle = 0
    while len(texts) < n and files:
        for file in files:
            try:
                lines = file.read_text(errors="replace").splitlines()
            except OSError:
                continue
            rel = file.relative_to(corpus).as_posix()
            rel = rel if cycle == 0 else f"copy{cycle}/{rel}"
            for start in range(0, len(lines), WINDOW):
                paths.append(rel)
                texts.append("\n".join(lines[start : start + WINDOW]))
                if len(texts) >= n:
                    return paths, texts
        cycle += 1
    return paths, texts


def make_queries(texts: Sequence[str], count: int, seed: int = 7) -> list[str]:
    """Queries of 1-3 identifiers/words drawn from random chunks (so most have matches)."""
    rng = random.Random(seed)
    queries: list[str] = []
    while len(queries) < count:
        words = IDENT.findall(texts[rng.randrange(len(texts))])
        if words:
            queries.append(" ".join(rng.sample(words, min(len(words), rng.choice((1, 2, 3))))))
    return queries


def insert_chunks(con: duckdb.DuckDBPyConnection, ids: Sequence[int], paths: Sequence[str],
                  texts: Sequence[str], lex_lens: Sequence[int]) -> None:
    """Chunk rows as the lead's writer inserts them: through Arrow."""
    n = len(ids)
    rows = pa.table({
        "chunk_id": pa.array(ids, pa.int64()), "path": pa.array(paths, pa.string()),
        "language": pa.array(["text"] * n), "kind": pa.array(["window"] * n), "symbol": pa.array([""] * n),
        "text": pa.array(texts, pa.string()), "lex_len": pa.array(lex_lens, pa.int32()),
    })
    con.register("_rows", rows)
    con.execute("INSERT INTO chunks SELECT * FROM _rows")
    con.unregister("_rows")


def time_queries(con: duckdb.DuckDBPyConnection, queries: Sequence[str], k: int = 10) -> list[float]:
    latencies = []
    for query in queries:
        start = time.perf_counter()
        bm25_search(con, query, k)
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)

    paths, texts = load_windows(args.corpus, args.chunks)
    n = len(texts)
    ids = list(range(n))
    symbols = [""] * n
    figures: dict[str, Any] = {"chunks": n}

    start = time.perf_counter()
    batches = [
        (ids[i : i + BATCH], *postings_table(ids[i : i + BATCH], texts[i : i + BATCH], paths[i : i + BATCH],
                                             symbols[i : i + BATCH]))
        for i in range(0, n, BATCH)
    ]
    figures["analyse_chunks_per_s"] = n / (time.perf_counter() - start)
    n_postings = sum(table.num_rows for _, table, _ in batches)
    figures["postings"] = n_postings

    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "meta.duckdb"))
        con.execute(CHUNKS_DDL)
        con.execute(POSTINGS_DDL)
        start = time.perf_counter()
        con.execute("BEGIN")
        for batch_ids, table, lex_lens in batches:
            add_postings(con, table, lex_lens)
            lo, hi = batch_ids[0], batch_ids[-1] + 1
            insert_chunks(con, batch_ids, paths[lo:hi], texts[lo:hi], lex_lens)
        con.execute("COMMIT")
        insert_s = time.perf_counter() - start
        figures["bulk_insert_postings_rows_per_s"] = n_postings / insert_s
        figures["bulk_insert_s"] = insert_s

        queries = make_queries(texts, args.queries)
        time_queries(con, queries[:20])  # warm caches
        unclustered = time_queries(con, queries)

        start = time.perf_counter()
        con.execute("BEGIN")
        cluster_postings(con)
        con.execute("COMMIT")
        figures["cluster_s"] = time.perf_counter() - start
        time_queries(con, queries[:20])
        clustered = time_queries(con, queries)
        figures.update(
            p50_unclustered_ms=pct(unclustered, 0.5), p95_unclustered_ms=pct(unclustered, 0.95),
            p50_ms=pct(clustered, 0.5), p95_ms=pct(clustered, 0.95),
        )

        # One file's update: remove its ~20 chunks and add them back under new ids, in one transaction.
        by_path: dict[str, list[int]] = {}
        for chunk_id, path in enumerate(paths):
            by_path.setdefault(path, []).append(chunk_id)
        # The ~30 files whose chunk count is closest to 20, a typical source file.
        files = sorted(by_path.values(), key=lambda c: (abs(len(c) - 20), c[0]))[:30]
        rng = random.Random(3)
        next_id = n
        remove_ms, add_ms, total_ms = [], [], []
        for chunk_ids in rng.sample(files, min(10, len(files))):
            new_ids = list(range(next_id, next_id + len(chunk_ids)))
            next_id += len(chunk_ids)
            start = time.perf_counter()
            table, lex_lens = postings_table(new_ids, [texts[i] for i in chunk_ids],
                                             [paths[i] for i in chunk_ids], [""] * len(chunk_ids))
            con.execute("BEGIN")
            t0 = time.perf_counter()
            remove_postings(con, chunk_ids)
            con.execute("DELETE FROM chunks WHERE chunk_id IN (SELECT unnest(?))", [chunk_ids])
            t1 = time.perf_counter()
            add_postings(con, table, lex_lens)
            file_paths, file_texts = [paths[i] for i in chunk_ids], [texts[i] for i in chunk_ids]
            insert_chunks(con, new_ids, file_paths, file_texts, lex_lens)
            t2 = time.perf_counter()
            con.execute("COMMIT")
            total_ms.append((time.perf_counter() - start) * 1000)
            remove_ms.append((t1 - t0) * 1000)
            add_ms.append((t2 - t1) * 1000)
        figures.update(
            update_file_chunks=statistics.median(len(c) for c in files),
            update_files_timed=len(total_ms),
            update_remove_ms=statistics.median(remove_ms), update_add_ms=statistics.median(add_ms),
            update_total_ms=statistics.median(total_ms),
        )
        figures["p50_after_updates_ms"] = pct(time_queries(con, queries), 0.5)
        con.close()

    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:,.2f}" if isinstance(value, float) else f"{name:<{width}}  {value:,}")
    return figures


if __name__ == "__main__":
    main()
