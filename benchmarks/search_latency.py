"""Search latency at scale: warm ``Index.search`` per mode and a cold ``codeindex search`` process.

    python -m benchmarks.search_latency --corpus DIR [--embedder hashing|onnx] [--chunks N]
                                        [--index-dir DIR] [--queries 60] [--updates 10]

Builds (or reuses, when ``--index-dir`` already holds an index of the corpus) an index of the corpus,
then measures, in one run and on the same index:

* warm: one ``Index`` object, ``search(q, k=10)`` per mode (hybrid/vector/lexical), query embedding
  included, after three warm-up queries; p50/p95 in ms;
* cold: ``python -m codeindex.cli search q --json`` as a fresh process, median wall time;
* ``--updates N``: then N one-file edits each followed by ``update``, and the warm figures again, so
  any degradation from incremental writes (the "BM25 38 ms after 10 updates" report) is a ratio
  measured side by side. The edits are reverted at the end (one more update).

``--chunks`` only reports whether the index is in the asked range; the corpus decides the count.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from codeindex import Index

MODES = ("hybrid", "vector", "lexical")
NATURAL = ("read the configuration file", "retry a failed http request", "parse command line arguments",
           "open a database connection", "compute a hash of a file", "sort a list of items by key",
           "handle a timeout error", "serialize an object to json", "log an error message",
           "start a background thread")


def pick_queries(db: Path, n: int, seed: int = 0) -> list[str]:
    """Half natural-language phrases, half identifiers that occur in the index (symbol tails)."""
    with duckdb.connect(str(db), read_only=True) as con:
        symbols = [r[0] for r in con.execute(
            "SELECT DISTINCT symbol FROM chunks WHERE symbol <> '' ORDER BY symbol LIMIT 50000").fetchall()]
    rng = random.Random(seed)
    idents = [s.rsplit(".", 1)[-1] for s in rng.sample(symbols, min(len(symbols), n // 2))]
    natural = [NATURAL[i % len(NATURAL)] for i in range(n - len(idents))]
    out = [q for pair in zip(natural, idents, strict=False) for q in pair] + natural[len(idents):]
    return out[:n]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def warm_latency(index: Index, queries: Sequence[str]) -> dict[str, dict[str, float]]:
    out = {}
    for mode in MODES:
        for q in queries[:3]:
            index.search(q, k=10, mode=mode)
        times = []
        for q in queries:
            started = time.perf_counter()
            index.search(q, k=10, mode=mode)
            times.append((time.perf_counter() - started) * 1000)
        out[mode] = {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(percentile(times, 0.95), 2)}
    return out


def cold_latency(corpus: Path, index_dir: Path, queries: Sequence[str], runs: int) -> float:
    walls = []
    for q in queries[:runs]:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "codeindex.cli", "--index-dir", str(index_dir), "search", q,
                               "--root", str(corpus), "--json"], capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
    return round(statistics.median(walls), 3)


def one_file_edits(corpus: Path, index: Index, n: int, seed: int = 1) -> list[tuple[Path, str]]:
    """Append a line to ``n`` random Python files, updating after each; returns what to restore."""
    files = sorted(corpus.rglob("*.py"))
    rng = random.Random(seed)
    restore = []
    for i, path in enumerate(rng.sample(files, n)):
        original = path.read_text(errors="replace")
        restore.append((path, original))
        path.write_text(original + f"\n\ndef benchmark_edit_{i}() -> int:\n    return {i}\n")
        index.update()
    return restore


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "onnx"])
    parser.add_argument("--chunks", type=int, default=100_000, help="expected order of magnitude (reported)")
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--updates", type=int, default=0, help="one-file updates before a second measurement")
    args = parser.parse_args(argv)
    index_dir = args.index_dir or Path(tempfile.gettempdir()) / f"codeindex-bench-{args.corpus.name}-{args.embedder}"
    index = Index(args.corpus, index_dir=index_dir, **{"embedder.backend": args.embedder})
    if not index.exists():
        started = time.perf_counter()
        index.rebuild()
        print(f"built {index_dir} in {time.perf_counter() - started:.0f} s")
    with duckdb.connect(str(index.db_path), read_only=True) as con:
        n_chunks = con.execute("SELECT count(*) FROM chunks").fetchall()[0][0]
        segs = con.execute("SELECT index_type, count(*), sum(n_vectors) FROM segments GROUP BY 1").fetchall()
    queries = pick_queries(index.db_path, args.queries)
    figures: dict[str, Any] = {"chunks": n_chunks, "segments": {t: (int(c), int(v)) for t, c, v in segs},
                               "embedder": args.embedder}
    figures["warm"] = warm_latency(index, queries)
    figures["cold_process_s"] = cold_latency(args.corpus, index_dir, queries, args.cold_runs)
    if args.updates:
        restore = one_file_edits(args.corpus, index, args.updates)
        fresh = Index(args.corpus, index_dir=index_dir)
        figures["warm_after_updates"] = warm_latency(fresh, queries)
        for path, text in restore:
            path.write_text(text)
        index.update()
    print(f"{n_chunks} chunks ({'near' if 0.5 <= n_chunks / args.chunks <= 2 else 'not near'} the asked "
          f"{args.chunks}), segments {figures['segments']}, embedder {args.embedder}")
    print(f"{'mode':8} {'p50 ms':>8} {'p95 ms':>8}" + (f" {'p50 after':>10} {'p95 after':>10}" if args.updates else ""))
    for mode in MODES:
        w = figures["warm"][mode]
        line = f"{mode:8} {w['p50_ms']:>8.2f} {w['p95_ms']:>8.2f}"
        if args.updates:
            a = figures["warm_after_updates"][mode]
            line += f" {a['p50_ms']:>10.2f} {a['p95_ms']:>10.2f}"
        print(line)
    print(f"cold `codeindex search` process: median {figures['cold_process_s']:.3f} s over {args.cold_runs} runs")
    return figures


if __name__ == "__main__":
    main()
