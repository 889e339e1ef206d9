"""Recall@10 of the HNSW segment index against exact (flat) search, on real embeddings.

    python -m benchmarks.ann_recall --corpus /work/corpora/medium [--embedder onnx] [--chunks 20000]

Chunks come from a throwaway index of the corpus built with the hashing embedder (fast); their
embedded texts are then embedded once with ``--embedder`` (default: the packaged MiniLM through
ONNX Runtime) and cached under ``--cache`` (``/tmp`` by default), so reruns and parameter sweeps cost
seconds. Queries are held-out chunk vectors (not in the base), the usual proxy for "find code like
this". Prints recall@10 and per-query latency for flat and for HNSW at several M / efSearch values,
including the values ``codeindex/store/segments.py`` uses.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

K = 10


def chunk_texts(corpus: Path, limit: int, index_dir: Path | None = None) -> list[str]:
    """The embed texts of the chunks codeindex makes of ``corpus``: read from ``index_dir`` when it holds
    an index of it, else from a throwaway index built with the hashing embedder."""
    import duckdb

    from codeindex import Index
    from codeindex.engine.pipeline import join_embed_text

    with tempfile.TemporaryDirectory(prefix="ann-recall-") as tmp:
        overrides: dict[str, Any] = {"embedder.backend": "hashing"}
        index = Index(corpus, index_dir=index_dir or Path(tmp) / "idx", **overrides)
        if not index.exists():
            index.rebuild()
        with duckdb.connect(str(index.db_path), read_only=True) as con:
            rows = con.execute("SELECT embed_head, text FROM chunks ORDER BY chunk_id").fetchall()
    texts = sorted({join_embed_text(h, t) for h, t in rows})
    rng = np.random.default_rng(0)
    if len(texts) > limit:
        texts = [texts[i] for i in sorted(rng.choice(len(texts), limit, replace=False))]
    return texts


def load_vectors(corpus: Path, embedder: str, limit: int, cache: Path, index_dir: Path | None = None) -> np.ndarray:
    tag = hashlib.blake2b(f"{corpus.resolve()}|{embedder}|{limit}".encode(), digest_size=6).hexdigest()
    path = cache / f"codeindex-ann-vectors-{tag}.npy"
    if path.exists():
        return np.load(path)
    from codeindex.config import load_config
    from codeindex.embedders.choice import settings_from_config
    from codeindex.embedders.runtime import get_embedder

    texts = chunk_texts(corpus, limit, index_dir)
    model = get_embedder(embedder, settings_from_config(load_config(None, {})))
    parts = []
    started = time.perf_counter()
    for i in range(0, len(texts), 256):
        parts.append(np.asarray(model.embed(texts[i:i + 256]), dtype=np.float32))
    print(f"embedded {len(texts)} chunks with {embedder} in {time.perf_counter() - started:.0f} s -> {path}")
    vectors = np.ascontiguousarray(np.concatenate(parts))
    np.save(path, vectors)
    return vectors


def _timed_search(index: Any, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Top-K ids, searching one query at a time as ``codeindex search`` does; ms per query."""
    ids = np.empty((len(queries), K), dtype=np.int64)
    started = time.perf_counter()
    for i in range(len(queries)):
        _, found = index.search(queries[i:i + 1], K)
        ids[i] = found[0]
    return ids, (time.perf_counter() - started) * 1000 / len(queries)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import faiss

    from codeindex.store import segments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--embedder", default="onnx")
    parser.add_argument("--chunks", type=int, default=20000, help="at most this many chunk vectors")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--index-dir", type=Path, default=None, help="reuse the chunks of an existing index")
    parser.add_argument("--ef", default="16,32,64,128,256", help="efSearch values to sweep")
    parser.add_argument("--m", default="16,32", help="HNSW M values to sweep")
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)

    vectors = load_vectors(args.corpus, args.embedder, args.chunks, args.cache, args.index_dir)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(vectors))
    queries, base = vectors[order[:args.queries]], vectors[order[args.queries:]]
    ids = np.arange(len(base), dtype=np.int64)

    flat = segments.flat_index(base.shape[1])
    flat.add_with_ids(base, ids)
    truth, flat_ms = _timed_search(flat, queries)
    rows: list[dict[str, Any]] = [{"index": "flat", "M": "", "efSearch": "", "recall@10": 1.0,
                                   "ms_per_query": round(flat_ms, 3), "build_s": 0.0}]
    for m in (int(x) for x in args.m.split(",")):
        inner = faiss.IndexHNSWFlat(base.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = segments.HNSW_EF_CONSTRUCTION
        hnsw = faiss.IndexIDMap2(inner)
        started = time.perf_counter()
        hnsw.add_with_ids(base, ids)
        build_s = time.perf_counter() - started
        for ef in (int(x) for x in args.ef.split(",")):
            inner.hnsw.efSearch = ef
            found, ms = _timed_search(hnsw, queries)
            rows.append({"index": "hnsw", "M": m, "efSearch": ef, "recall@10": round(recall(found, truth), 4),
                         "ms_per_query": round(ms, 3), "build_s": round(build_s, 1)})
    print(f"{len(base)} base vectors (dim {base.shape[1]}, {args.embedder}), {len(queries)} held-out queries, "
          f"1 thread; codeindex uses M={segments.HNSW_M}, efSearch={segments.HNSW_EF_SEARCH}, "
          f"efConstruction={segments.HNSW_EF_CONSTRUCTION}")
    print(f"{'index':6} {'M':>3} {'efSearch':>8} {'recall@10':>9} {'ms/query':>9} {'build s':>8}")
    for r in rows:
        print(f"{r['index']:6} {r['M']!s:>3} {r['efSearch']!s:>8} {r['recall@10']:>9.4f} "
              f"{r['ms_per_query']:>9.3f} {r['build_s']:>8.1f}")
    current = next((r for r in rows if r["M"] == segments.HNSW_M and r["efSearch"] == segments.HNSW_EF_SEARCH), None)
    return {"n_base": len(base), "n_queries": len(queries), "rows": rows,
            "recall_at_10_current": current["recall@10"] if current else None}


if __name__ == "__main__":
    main()
