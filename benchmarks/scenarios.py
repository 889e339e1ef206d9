"""The scenarios of ``python -m benchmarks``: each returns a flat dict of figures for one corpus.

Every scenario measures its bound or baseline in the same run and reports the ratio; the
``codeindex`` commands a user would type are timed as cold processes (``codeindex_cli``), warm search
through the in-process ``Index`` API. Scenarios that change the shared indexed copy put it back.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    BenchmarkError,
    Context,
    add_spread,
    codeindex_cli,
    last_run,
    percentile,
    pick_edit_file,
    timed,
)

Scenario = Callable[[Context], dict[str, Any]]


# ---------------------------------------------------------------------------------------------- helpers


def _stages(report: dict[str, Any], figures: dict[str, Any], prefix: str = "") -> None:
    for key in ("parse_s", "embed_s", "write_s", "busy_s", "overlap_saved_s"):
        value = report.get("stages", {}).get(key)
        if isinstance(value, (int, float)):
            figures[f"{prefix}stage_{key}"] = float(value)


def embed_only_seconds(root: Path, backend: str) -> tuple[float, int]:
    """Embed exactly the distinct texts the index holds vectors for, in-process, best of one warm run.

    The texts are rebuilt from the stored chunks (header + display text), one per vector, so the
    bound embeds what the rebuild embedded, with the same token-budget batching.
    """
    import duckdb

    from codeindex.config import load_config
    from codeindex.embedders.batching import embed_batched
    from codeindex.embedders.choice import settings_from_config
    from codeindex.embedders.runtime import get_embedder
    from codeindex.engine.pipeline import join_embed_text

    con = duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT any_value(embed_head), any_value(text), any_value(n_tokens) "
                           "FROM chunks GROUP BY vec_id").fetchall()
    finally:
        con.close()
    texts = [join_embed_text(head or "", text or "") for head, text, _ in rows]
    lengths = [int(n or 1) for _, _, n in rows]
    settings = settings_from_config(load_config(root, {}))
    embedder: Any = get_embedder(backend, settings)
    embedder.embed(texts[:4])  # model load and first-call allocations are not part of the bound
    seconds, _ = timed(lambda: embed_batched(embedder, texts, lengths, settings.batch_tokens))
    return seconds, len(texts)


def bare_walk_seconds(root: Path, repeat: int) -> list[float]:
    from benchmarks.hash_bound import bare_walk

    bare_walk(str(root))  # warm the dentry cache like the runs it is compared with
    return [timed(lambda: bare_walk(str(root)))[0] for _ in range(repeat)]


def python_startup_seconds(repeat: int) -> list[float]:
    """A bare ``python -c pass``: the floor of any cold command."""
    import subprocess

    return [timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))[0] for _ in range(repeat)]


def pick_directory(root: Path, *, min_files: int = 5) -> Path:
    """The directory (not the root) holding the most files below it, preferring one at depth >= 2."""
    counts: dict[Path, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        here = Path(dirpath)
        if here == root:
            continue
        n = sum(1 for _ in filenames)
        for parent in [here, *here.relative_to(root).parents]:
            full = root / parent if not parent.is_absolute() else parent
            if full != root:
                counts[full] = counts.get(full, 0) + n
    if not counts:
        raise BenchmarkError(f"no sub-directory under {root}")
    deep = {d: n for d, n in counts.items() if len(d.relative_to(root).parts) >= 2 and n >= min_files}
    pool = deep or counts
    # Most files, but not the whole tree: a directory with <= half the files is a realistic rename.
    total = max(counts.values())
    limited = {d: n for d, n in pool.items() if n <= max(total // 2, min_files)} or pool
    return max(limited, key=lambda d: (limited[d], str(d)))


# ---------------------------------------------------------------------------------------------- scenarios


def _files_indexed(report: dict[str, Any]) -> int:
    """Files the index holds after the run (reports before ``files_indexed`` existed: files handed to parsing,
    which ``files_seen`` then meant)."""
    return int(report.get("files_indexed", report["files_seen"]))


def rebuild(ctx: Context) -> dict[str, Any]:
    """Cold ``codeindex rebuild``; bounds: embed-only of the same texts, and ``--scheduler sync``."""
    backend = ctx.backend
    root = ctx.fresh_copy(f"indexed-{backend}")
    figures: dict[str, Any] = {"embedder": backend}
    runs = [codeindex_cli(["rebuild", str(root), "--embedder", backend, "--json"]) for _ in range(ctx.rebuild_repeat)]
    report = runs[-1].json()
    seconds = add_spread(figures, "seconds", [r.seconds for r in runs])
    figures["engine_wall_s"] = float(report["wall_s"])
    figures["files"] = _files_indexed(report)
    figures["chunks"] = report["chunks_total"]
    figures["chunks_embedded"] = report["chunks_embedded"]
    figures["files_per_s"] = figures["files"] / seconds
    figures["chunks_per_s"] = report["chunks_total"] / seconds
    _stages(report, figures)

    embed_s, n_texts = embed_only_seconds(root, backend)
    figures["embed_only_s"] = embed_s
    figures["embed_only_texts"] = n_texts
    figures["ratio_vs_embed_only"] = seconds / embed_s if embed_s > 0 else float("inf")

    sync = codeindex_cli(["rebuild", str(root), "--embedder", backend, "--scheduler", "sync", "--json"])
    figures["sync_seconds"] = sync.seconds
    figures["ratio_sequential_vs_overlap"] = sync.seconds / seconds
    ctx.adopt_indexed(backend, root, {**report, "cold_seconds": seconds})
    return figures


def noop(ctx: Context) -> dict[str, Any]:
    """Cold ``codeindex update`` with nothing changed, against a bare stat walk of the same tree."""
    root = ctx.indexed()
    figures: dict[str, Any] = {}
    codeindex_cli(["update", str(root), "--json"])  # settle: the first update may re-hash racy files
    runs = [codeindex_cli(["update", str(root), "--json"]) for _ in range(ctx.repeat)]
    reports = [r.json() for r in runs]
    if any(rep["chunks_embedded"] or rep["files_added"] or rep["files_modified"] for rep in reports):
        raise BenchmarkError("no-op update changed something: " + str(reports[-1]))
    seconds = add_spread(figures, "seconds", [r.seconds for r in runs])
    engine = add_spread(figures, "engine_s", [float(rep["wall_s"]) for rep in reports])
    walk = add_spread(figures, "walk_s", bare_walk_seconds(root, ctx.repeat))
    startup = add_spread(figures, "python_startup_s", python_startup_seconds(ctx.repeat))
    figures["files"] = _files_indexed(reports[-1])
    figures["ratio_vs_walk"] = seconds / walk
    figures["engine_ratio_vs_walk"] = engine / walk
    figures["ratio_minus_startup_vs_walk"] = max(seconds - startup, 0.0) / walk
    return figures


def edit1(ctx: Context) -> dict[str, Any]:
    """Cold ``codeindex update`` after appending a function-sized comment to one mid-sized file."""
    root = ctx.indexed()
    target = pick_edit_file(root)
    original = target.read_bytes()
    comment = b"#" if target.suffix == ".py" else b"//"
    times, embedded, engine = [], [], []
    try:
        for i in range(ctx.repeat):
            target.write_bytes(original + b"\n" + comment + f" benchmark edit {i} {time.time_ns()}\n".encode())
            run = codeindex_cli(["update", str(root), "--json"])
            rep = run.json()
            if rep["files_modified"] != 1:
                raise BenchmarkError(f"edit1: expected 1 modified file, run says {rep['files_modified']}")
            times.append(run.seconds)
            engine.append(float(rep["wall_s"]))
            embedded.append(rep["chunks_embedded"])
    finally:
        target.write_bytes(original)
        codeindex_cli(["update", str(root)])
    figures: dict[str, Any] = {"file": target.relative_to(root).as_posix()}
    add_spread(figures, "seconds", times)
    add_spread(figures, "engine_s", engine)
    figures["chunks_embedded"] = max(embedded)
    return figures


def _search_paths(root: Path, query: str, prefix: str) -> list[str]:
    from codeindex import Index

    hits = Index(root).search(query, k=20, mode="lexical", paths=[f"{prefix}/**"])
    return [h.path for h in hits]


def _a_query(directory: Path) -> str:
    """An identifier-ish word from the first readable file in ``directory`` (for path checks)."""
    import re

    for path in sorted(directory.rglob("*")):
        if path.is_file():
            words = re.findall(r"[A-Za-z_][A-Za-z0-9_]{5,}", path.read_text(errors="replace")[:20000])
            if words:
                return max(set(words), key=words.count)
    raise BenchmarkError(f"no words in {directory}")


def rename_dir(ctx: Context) -> dict[str, Any]:
    """Rename a directory of many files; ``update`` must move chunks and re-embed nothing."""
    root = ctx.indexed()
    old = pick_directory(root)
    new = old.with_name(old.name + "_renamed")
    old_rel, new_rel = old.relative_to(root).as_posix(), new.relative_to(root).as_posix()
    query = _a_query(old)
    files = sum(1 for p in old.rglob("*") if p.is_file())
    old.rename(new)
    try:
        run = codeindex_cli(["update", str(root), "--json"])
        row = last_run(root)
        figures: dict[str, Any] = {
            "directory": old_rel, "files_in_directory": files, "seconds": run.seconds,
            "reembedded_chunks": int(row["chunks_embedded"]), "files_moved": int(row["files_moved"]),
            "files_added": int(row["files_added"]), "files_deleted": int(row["files_deleted"]),
            "chunks_reused": int(row["chunks_reused"]),
        }
        figures["hits_under_new_path"] = len(_search_paths(root, query, new_rel))
        figures["hits_under_old_path"] = len(_search_paths(root, query, old_rel))
        figures["paths_ok"] = float(figures["hits_under_new_path"] > 0 and figures["hits_under_old_path"] == 0)
    finally:
        new.rename(old)
        codeindex_cli(["update", str(root)])
    return figures


def delete(ctx: Context) -> dict[str, Any]:
    """Delete a directory of files; ``update`` must drop them and search must never return them."""
    root = ctx.indexed()
    victim = pick_directory(root)
    rel = victim.relative_to(root).as_posix()
    query = _a_query(victim)
    backup = ctx.work / "deleted-backup"
    if backup.exists():
        shutil.rmtree(backup)
    files = sum(1 for p in victim.rglob("*") if p.is_file())
    hits_before = len(_search_paths(root, query, rel))
    shutil.move(str(victim), str(backup))
    try:
        run = codeindex_cli(["update", str(root), "--json"])
        rep = run.json()
        figures: dict[str, Any] = {
            "directory": rel, "files_in_directory": files, "seconds": run.seconds,
            "engine_s": float(rep["wall_s"]), "files_deleted": rep["files_deleted"],
            "chunks_embedded": rep["chunks_embedded"], "hits_before": hits_before,
            "hits_after": len(_search_paths(root, query, rel)),
        }
        figures["deleted_ok"] = float(figures["hits_after"] == 0 and rep["files_deleted"] > 0)
    finally:
        shutil.move(str(backup), str(victim))
        codeindex_cli(["update", str(root)])
    return figures


def search_queries(root: Path, n: int) -> list[str]:
    """Natural-language-ish and identifier queries drawn from the tree (deterministic)."""
    from benchmarks.lexical_latency import make_queries

    texts = []
    for path in sorted(root.rglob("*"))[:2000]:
        if path.is_file() and ".codeindex" not in path.parts and path.stat().st_size < 200_000:
            texts.append(path.read_text(errors="replace")[:4000])
    fixed = ["read the configuration file", "retry a failed http request", "parse command line arguments",
             "compute a hash of the input", "sort items by key", "open a database connection",
             "handle errors and log them", "convert a string to an integer"]
    return fixed + make_queries(texts, max(n - len(fixed), 1))


def search_latency(ctx: Context) -> dict[str, Any]:
    """Warm in-process ``Index.search`` p50/p95 per mode, and a cold ``codeindex search`` process."""
    from codeindex import Index

    root = ctx.indexed()
    n = 30 if ctx.smoke else 200
    queries = search_queries(root, n)
    index = Index(root)
    figures: dict[str, Any] = {"queries": len(queries), "embedder": ctx.backend}
    for mode in ("hybrid", "vector", "lexical"):
        for q in queries[:5]:
            index.search(q, k=10, mode=mode)  # warm: model load, DB pages
        ms = []
        for q in queries:
            start = time.perf_counter()
            index.search(q, k=10, mode=mode)
            ms.append((time.perf_counter() - start) * 1000)
        suffix = "" if mode == "hybrid" else f"_{mode}"
        figures[f"p50_ms{suffix}"] = percentile(ms, 0.5)
        figures[f"p95_ms{suffix}"] = percentile(ms, 0.95)
    index.close()  # the kept read connection would make the cold processes below wait for its idle close
    cold = [codeindex_cli(["search", q, "--root", str(root), "-k", "10", "--json"]).seconds
            for q in queries[:ctx.repeat]]
    add_spread(figures, "cold_cli_s", cold)
    return figures


def peak_rss(ctx: Context) -> dict[str, Any]:
    """Peak RSS summed over a cold ``codeindex rebuild`` and all its children, polled every 50 ms."""
    import subprocess

    import psutil

    from benchmarks.harness import child_env

    backend = ctx.embedder or "hashing"
    root = ctx.fresh_copy("peak-rss")
    cmd = [sys.executable, "-m", "codeindex.cli", "rebuild", str(root), "--embedder", backend]
    peak_total = peak_driver = 0
    peak_procs = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        try:
            procs = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for p in procs:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            if p.pid == proc.pid:
                peak_driver = max(peak_driver, rss)
        peak_total = max(peak_total, total)
        peak_procs = max(peak_procs, len(procs))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchmarkError(f"peak_rss: rebuild exited {proc.returncode}")
    shutil.rmtree(root, ignore_errors=True)
    return {"embedder": backend, "peak_rss_mb": peak_total / 2**20, "driver_peak_rss_mb": peak_driver / 2**20,
            "max_processes": peak_procs, "seconds": seconds}


def gpu(ctx: Context) -> dict[str, Any]:
    """Cold default rebuild on a GPU host: where embed tasks ran, the GPU's busy share, and the same
    rebuild with ``embedder.device=cpu`` side by side. Hosts without a GPU record why and move on."""
    from benchmarks.gpu_busy import GpuSampler, busy_shares

    if not GpuSampler.available():
        raise BenchmarkError("gpu: no GPU on this host (nvidia-smi lists none)")
    backend = ctx.embedder or "onnx"
    root = ctx.fresh_copy("gpu")
    sampler = GpuSampler().start()
    try:
        run = codeindex_cli(["rebuild", str(root), "--embedder", backend, "--json"])
    finally:
        samples = sampler.stop()
    report = run.json()
    stages = report.get("stages", {})
    by_worker: dict[str, float] = stages.get("embed_s_by_worker") or {}
    embed_s = sum(by_worker.values())
    figures: dict[str, Any] = {"embedder": backend, "seconds": run.seconds, "chunks": report["chunks_total"],
                               "chunks_per_s": report["chunks_total"] / run.seconds,
                               "devices": ",".join(stages.get("devices", [])),
                               "embed_workers": ",".join(sorted(by_worker))}
    figures["embed_share_on_gpu_workers"] = (
        sum(s for w, s in by_worker.items() if w.startswith("gpu-")) / embed_s if embed_s else 0.0)
    figures.update(busy_shares(samples))
    _stages(report, figures)
    if "cuda" not in figures["devices"]:
        raise BenchmarkError(f"gpu: the rebuild embedded on {figures['devices'] or 'nothing'}, not a GPU "
                             f"(onnxruntime-gpu installed? embed workers: {figures['embed_workers']})")
    cpu = codeindex_cli(["rebuild", str(root), "--embedder", backend, "--json"],
                        env={"CODEINDEX_EMBEDDER__DEVICE": "cpu"})
    figures["cpu_seconds"] = cpu.seconds
    figures["ratio_cpu_vs_gpu"] = cpu.seconds / run.seconds
    shutil.rmtree(root, ignore_errors=True)
    return figures


def hash_bound(ctx: Context) -> dict[str, Any]:
    """Change detection vs the filesystem floor (``benchmarks.hash_bound``): first hash vs read+blake3."""
    from benchmarks import hash_bound as hb

    figures = hb.main(["--corpus", str(ctx.pristine()), "--repeat", str(max(ctx.repeat, 2))])
    out: dict[str, Any] = {f"detail_{k}": v for k, v in figures.items()}
    out["ratio_vs_read_blake3"] = figures["ratio_d_over_e_median"]
    out["ratio_unchanged_vs_walk"] = figures["ratio_b_over_a_median"]
    out["ratio_one_edit_vs_walk"] = figures["ratio_c_over_a_median"]
    out["files"] = figures["files"]
    return out


def embed_bound(ctx: Context) -> dict[str, Any]:
    """The onnx embedder vs bare ONNX Runtime and naive batching (``benchmarks.embed_bound``)."""
    from benchmarks import embed_bound as eb

    chunks = 200 if ctx.smoke else 2000
    argv = ["--corpus", str(ctx.pristine()), "--chunks", str(chunks), "--repeat", str(max(1, min(ctx.repeat, 3)))]
    if ctx.smoke:
        argv.append("--no-st")
    figures = eb.main(argv)
    out: dict[str, Any] = {f"detail_{k}": v for k, v in figures.items() if isinstance(v, (int, float))}
    out["ratio_vs_bound"] = figures["ratio_b_over_a"]
    out["ratio_vs_naive"] = figures["ratio_b_over_c"]
    if "ratio_b_over_d" in figures:
        out["ratio_vs_sentence_transformers"] = figures["ratio_b_over_d"]
    out["chunks_per_s"] = figures["b_ours"]
    return out


def parse_throughput(ctx: Context) -> dict[str, Any]:
    """Parse + chunk on one core (``benchmarks.parse_throughput``)."""
    from benchmarks import parse_throughput as pt

    return dict(pt.main(["--corpus", str(ctx.pristine())]))


def lexical_latency(ctx: Context) -> dict[str, Any]:
    """BM25 bulk insert and query latency at scale (``benchmarks.lexical_latency``)."""
    from benchmarks import lexical_latency as ll

    chunks = 5_000 if ctx.smoke else 100_000
    return dict(ll.main(["--corpus", str(ctx.pristine()), "--chunks", str(chunks)]))


def _search_quality(ctx: Context) -> dict[str, Any]:
    from benchmarks.search_quality import run_scenario

    return run_scenario(ctx)


def _agent_quality(ctx: Context) -> dict[str, Any]:
    from benchmarks.agent_quality import run_scenario

    return run_scenario(ctx)


def _chunk_shape(ctx: Context) -> dict[str, Any]:
    """Chunk shape of this checkout (and ``--baseline``'s) on the corpus (``benchmarks.chunk_shape``)."""
    from benchmarks import chunk_shape

    return chunk_shape.run(ctx.pristine(), ctx.baseline)


def _peer(ctx: Context) -> dict[str, Any]:
    from benchmarks.peer import run_scenario

    return run_scenario(ctx)


def _live(ctx: Context) -> dict[str, Any]:
    from benchmarks.live import run_scenario

    return run_scenario(ctx, search_queries)


SCENARIOS: dict[str, Scenario] = {
    "rebuild": rebuild,
    "noop": noop,
    "edit1": edit1,
    "rename_dir": rename_dir,
    "delete": delete,
    "search_latency": search_latency,
    "search_quality": _search_quality,
    "agent_quality": _agent_quality,
    "chunk_shape": _chunk_shape,
    "embed_bound": embed_bound,
    "hash_bound": hash_bound,
    "peak_rss": peak_rss,
    "gpu": gpu,
    "parse_throughput": parse_throughput,
    "lexical_latency": lexical_latency,
    "peer": _peer,
    "live": _live,
}
"""Every scenario, in the order ``--scenarios all`` runs them."""

SMOKE_DEFAULT = [name for name in SCENARIOS if name not in ("lexical_latency",)]
