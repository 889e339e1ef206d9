"""Search latency at scale: warm ``Index.search`` per mode and a cold ``codeindex search`` process.

    python -m benchmarks.search_latency --corpus DIR [--embedder hashing|onnx] [--chunks N]
                                        [--index-dir DIR] [--queries 60] [--cold-runs 5] [--updates 10]

Builds (or reuses, when ``--index-dir`` already holds an index of the corpus) an index of the corpus,
then measures, in one run and on the same index, side by side:

* warm, kept connection: one ``Index`` object, ``search(q, k=10)`` per mode (hybrid/vector/lexical),
  query embedding included, after three warm-up queries; p50/p95 in ms. This is what ``Index`` does;
* warm, connection per query: the same with ``Searcher(keep_connection=False)``, which opens and
  closes the database around every query (what every search did before, and what a search does
  while a writer runs): the ratio is what keeping the connection buys;
* cold: ``python -m codeindex.cli search q --json`` as a fresh process, median wall time, and its
  breakdown from a probe process (interpreter start, codeindex imports, faiss import, embedder load,
  first search). Cold processes run with a bytecode cache, as an installed package has (the first,
  untimed run writes it even when ``PYTHONDONTWRITEBYTECODE`` is set here);
* ``--updates N``: then N one-file edits each followed by ``update``, and the warm figures again, so
  any degradation from incremental writes is a ratio measured side by side. The edits are reverted
  at the end (one more update).

``--chunks`` only reports whether the index is in the asked range; the corpus decides the count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from codeindex import Index
from codeindex.store import db as dbm

MODES = ("hybrid", "vector", "lexical")
NATURAL = ("read the configuration file", "retry a failed http request", "parse command line arguments",
           "open a database connection", "compute a hash of a file", "sort a list of items by key",
           "handle a timeout error", "serialize an object to json", "log an error message",
           "start a background thread")

# Run in a fresh interpreter: each step timed on its own, nothing imported before it is timed.
_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import codeindex.cli, codeindex.index, codeindex.search.searcher
t1 = time.perf_counter()
import faiss
t2 = time.perf_counter()
from pathlib import Path
from codeindex.embedders.runtime import get_embedder
from codeindex.embedders.choice import settings_from_config
from codeindex.store import db as dbm
root, index_dir, query = sys.argv[1:4]
index = codeindex.index.Index(root, index_dir=index_dir)
with dbm.open_db(index.db_path, read_only=True) as con:
    meta = dbm.get_meta(con)
t3 = time.perf_counter()
get_embedder(meta["embedder_backend"], settings_from_config(index.config, meta.get("embedder_model", "")))
t4 = time.perf_counter()
index.search(query, k=10)
t5 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "faiss_import_s": t2 - t1, "read_meta_s": t3 - t2,
                  "embedder_load_s": t4 - t3, "first_search_s": t5 - t4}))
"""


def pick_queries(db: Path, n: int, seed: int = 0) -> list[str]:
    """Half natural-language phrases, half identifiers that occur in the index (symbol tails)."""
    with dbm.open_db(db, read_only=True) as con:
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


def warm_latency(search: Callable[..., Any], queries: Sequence[str]) -> dict[str, dict[str, float]]:
    """p50/p95 ms per mode of ``search(q, k=10, mode=...)`` after three warm-up queries."""
    out = {}
    for mode in MODES:
        for q in queries[:3]:
            search(q, k=10, mode=mode)
        times = []
        for q in queries:
            started = time.perf_counter()
            search(q, k=10, mode=mode)
            times.append((time.perf_counter() - started) * 1000)
        out[mode] = {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(percentile(times, 0.95), 2)}
    return out


def _cold_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cold_latency(corpus: Path, index_dir: Path, queries: Sequence[str], runs: int) -> dict[str, float]:
    """Median wall time of a ``codeindex search`` process, and the median breakdown of a probe process."""
    env = _cold_env()

    def cli(q: str) -> float:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "codeindex.cli", "--index-dir", str(index_dir), "search", q,
                               "--root", str(corpus), "--json"], capture_output=True, text=True, check=False,
                              env=env)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        return wall

    cli(queries[0])  # untimed: bytecode cache and page cache, as on any machine after the first use
    walls = [cli(q) for q in queries[:runs]]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
    interpreter = time.perf_counter() - started
    parts: dict[str, list[float]] = {}
    for q in queries[:runs]:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(corpus), str(index_dir), q], capture_output=True,
                              text=True, check=False, env=env)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        for key, value in json.loads(proc.stdout).items():
            parts.setdefault(key, []).append(value)
    out = {"wall_s": round(statistics.median(walls), 3), "interpreter_s": round(interpreter, 3)}
    out.update({key: round(statistics.median(values), 3) for key, values in parts.items()})
    return out


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
    from codeindex.search.searcher import Searcher

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
    with dbm.open_db(index.db_path, read_only=True) as con:
        n_chunks = con.execute("SELECT count(*) FROM chunks").fetchall()[0][0]
        segs = con.execute("SELECT index_type, count(*), sum(n_vectors) FROM segments GROUP BY 1").fetchall()
        backend = dbm.get_meta(con).get("embedder_backend", "?")
    queries = pick_queries(index.db_path, args.queries)
    figures: dict[str, Any] = {"chunks": n_chunks, "segments": {t: (int(c), int(v)) for t, c, v in segs},
                               "embedder": backend}
    figures["warm"] = warm_latency(index.search, queries)
    index.close()
    per_query = Searcher(index.index_dir, index.config, keep_connection=False)
    figures["warm_per_query_open"] = warm_latency(per_query.search, queries)
    figures["cold"] = cold_latency(args.corpus, index_dir, queries, args.cold_runs)
    if args.updates:
        restore = one_file_edits(args.corpus, index, args.updates)
        fresh = Index(args.corpus, index_dir=index_dir)
        figures["warm_after_updates"] = warm_latency(fresh.search, queries)
        fresh.close()
        for path, text in restore:
            path.write_text(text)
        index.update()
    print_table(figures, args.chunks)
    return figures


def print_table(figures: dict[str, Any], asked_chunks: int) -> None:
    n_chunks = figures["chunks"]
    near = "near" if 0.5 <= n_chunks / asked_chunks <= 2 else "not near"
    print(f"{n_chunks} chunks ({near} the asked {asked_chunks}), segments {figures['segments']}, "
          f"embedder {figures['embedder']}")
    columns = [("warm", "kept conn"), ("warm_per_query_open", "open/query")]
    if "warm_after_updates" in figures:
        columns.append(("warm_after_updates", "after upd"))
    print(f"{'mode':8}" + "".join(f" {label + ' p50':>15} {label + ' p95':>15}" for _, label in columns))
    for mode in MODES:
        print(f"{mode:8}" + "".join(f" {figures[key][mode]['p50_ms']:>15.2f} {figures[key][mode]['p95_ms']:>15.2f}"
                                    for key, _ in columns))
    cold = figures["cold"]
    print(f"cold `codeindex search` process: median {cold['wall_s']:.3f} s wall; probe breakdown: "
          + ", ".join(f"{key.removesuffix('_s')} {value:.3f}" for key, value in cold.items() if key != "wall_s")
          + " (s)")


if __name__ == "__main__":
    main()
