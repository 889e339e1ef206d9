"""Search quality as an agent meets it: hand-written questions and identifier lookups on one real codebase.

The docstring benchmark (``search_quality.py``) asks with a function's own summary, and the fusion
weights were tuned on it. This one asks the way a developer or an agent does ("where is the scrypt
or pbkdf2 key derivation done for stored passwords", ``MapAdapter.match``,
``werkzeug/wsgi.py:get_host``), on a codebase no ranking rule was tuned on. The questions and their
answers (definitions, checked against the source before anything runs) are in
``benchmarks/questions/<name>.json``.

    python -m benchmarks --scenarios agent_quality --corpus /work/corpora/medium [--baseline /work/base]
    python -m benchmarks.agent_quality --corpus /work/corpora/medium [--baseline DIR] [--peer]

The codebase is copied and indexed with the default model; every question runs in hybrid, vector
and lexical mode (and reranked by the example reranker plugin, installed for the run). A result
hits a question when it is in an answer's file and overlaps its lines, an identifier when it holds
the definition's first line. Figures per set (``natural``,
``identifiers``): hit@1, hit@5 and MRR@10. ``--baseline`` runs another checkout of codeindex the
same way in the same run (its own index and query process); ``--peer`` adds mcp-vector-search
(``benchmarks/peer.py``'s venv, same model) on the same questions.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO_ROOT, BenchmarkError, copy_corpus

QUESTIONS = Path(__file__).parent / "questions" / "werkzeug.json"
MODES = ("hybrid", "vector", "lexical")
RERANK_PLUGIN = REPO_ROOT / "plugins" / "codeindex-rerank-example"
RERANKER = "term-coverage"
K = 10

QUERY = r"""
import json, sys
from codeindex import Index
root, spec_path, out_path = sys.argv[1:4]
spec = json.load(open(spec_path))
index = Index(root)
out = {}
for mode, reranker in spec["modes"]:
    extra = {"reranker": reranker} if reranker else {}
    label = mode + ("+" + reranker if reranker else "")
    out[label] = [[[r.path, r.start_line, r.end_line] for r in index.search(q, k=spec["k"], mode=mode, **extra)]
                  for q in spec["queries"]]
json.dump(out, open(out_path, "w"))
"""


@dataclass(frozen=True, slots=True)
class Answer:
    path: str
    first: int
    last: int


def load_questions(path: Path = QUESTIONS) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def python_definitions(source: str) -> dict[str, list[tuple[int, int]]]:
    """Qualified name (``Class.method``) → spans (decorators included) of every def and class."""
    out: dict[str, list[tuple[int, int]]] = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                out.setdefault(name, []).append((first, child.end_lineno or child.lineno))
                walk(child, name + ".")
            elif not isinstance(child, (ast.Lambda,)):
                walk(child, prefix)  # defs under if/try blocks keep the enclosing prefix

    walk(ast.parse(source), "")
    return out


def resolve(root: Path, answers: Sequence[str]) -> list[Answer]:
    """``path:Qualified.name`` → the definition's lines in the source; the longest of several (overloads)."""
    out: list[Answer] = []
    cache: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for answer in answers:
        path, _, name = answer.partition(":")
        if path not in cache:
            file = root / path
            if not file.is_file():
                raise BenchmarkError(f"answer {answer}: no file {path} in {root}")
            cache[path] = python_definitions(file.read_text(encoding="utf-8"))
        spans = cache[path].get(name)
        if not spans:
            raise BenchmarkError(f"answer {answer}: no definition {name} in {path}")
        first, last = max(spans, key=lambda s: s[1] - s[0])
        out.append(Answer(path, first, last))
    return out


def rank(answers: Sequence[Answer], hits: Sequence[Sequence[Any]], strict: bool = False) -> int | None:
    """1-based rank of the first hit overlapping an answer (``strict``: holding its first line), or None."""
    for i, (path, first, last) in enumerate(hits, 1):
        for a in answers:
            if a.path == path and (first <= a.first <= last if strict else first <= a.last and last >= a.first):
                return i
    return None


STRICT = {"natural": False, "identifiers": True}
"""A question's answer is found by any piece of it; an identifier's only by the piece holding its
signature (the definition itself, not one of its methods)."""


def score(ranks: Sequence[int | None]) -> dict[str, float]:
    n = max(1, len(ranks))
    return {"hit1": sum(r == 1 for r in ranks) / n,
            "hit5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr10": sum(1.0 / r for r in ranks if r is not None and r <= K) / n}


def _env(tree: Path, extra_path: Sequence[Path] = ()) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *map(str, extra_path)])
    env.update(HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1")
    return env


def index_with(tree: Path, root: Path, backend: str) -> None:
    """``codeindex rebuild`` of ``root`` by the checkout ``tree``."""
    proc = subprocess.run([sys.executable, "-m", "codeindex.cli", "rebuild", str(root), "--embedder", backend],
                          env=_env(tree), cwd=tree, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchmarkError(f"rebuild with {tree} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")


def query_with(tree: Path, root: Path, queries: Sequence[str], modes: Sequence[tuple[str, str | None]],
               work: Path, extra_path: Sequence[Path] = ()) -> dict[str, list[list[Any]]]:
    """Every query in every mode, searched by the checkout ``tree`` in one process (warm model)."""
    spec, out = work / "spec.json", work / "out.json"
    spec.write_text(json.dumps({"queries": list(queries), "modes": [list(m) for m in modes], "k": K}))
    proc = subprocess.run([sys.executable, "-c", QUERY, str(root), str(spec), str(out)], env=_env(tree, extra_path),
                          cwd=work, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchmarkError(f"queries with {tree} failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
    result: dict[str, list[list[Any]]] = json.loads(out.read_text())
    return result


def install_reranker(work: Path) -> Path | None:
    """The example reranker plugin really installed (pip, offline) into a folder for the query process."""
    target = work / "rerank-site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                           "--target", str(target), str(RERANK_PLUGIN)], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}, check=False)
    return target if proc.returncode == 0 else None


def figures_for(side: str, results: dict[str, list[list[Any]]], sets: dict[str, list[list[Answer]]],
                offsets: dict[str, tuple[int, int]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for mode, per_query in results.items():
        for set_name, answers in sets.items():
            start, end = offsets[set_name]
            ranks = [rank(a, hits, STRICT[set_name]) for a, hits in zip(answers, per_query[start:end], strict=True)]
            for metric, value in score(ranks).items():
                out[f"{side}_{set_name}_{mode}_{metric}"] = value
    return out


def run(codebase: Path, work: Path, backend: str, baseline: Path | None = None, peer: bool = False,
        cache_dir: Path | None = None, questions: Path = QUESTIONS) -> dict[str, Any]:
    data = load_questions(questions)
    natural = [q["q"] for q in data["natural"]]
    identifiers = [q["q"] for q in data["identifiers"]]
    sets = {"natural": [resolve(codebase, q["a"]) for q in data["natural"]],
            "identifiers": [resolve(codebase, q["a"]) for q in data["identifiers"]]}
    offsets = {"natural": (0, len(natural)), "identifiers": (len(natural), len(natural) + len(identifiers))}
    queries = natural + identifiers
    figures: dict[str, Any] = {"codebase": data["codebase"], "embedder": backend, "natural_questions": len(natural),
                               "identifier_questions": len(identifiers)}

    ours_root = copy_corpus(codebase, work / "agent-ours")
    index_with(REPO_ROOT, ours_root, backend)
    modes: list[tuple[str, str | None]] = [(m, None) for m in MODES]
    site = install_reranker(work)
    if site is not None:
        modes.append(("hybrid", RERANKER))
    results = query_with(REPO_ROOT, ours_root, queries, modes, work, [site] if site else [])
    figures.update(figures_for("ours", results, sets, offsets))
    figures["detail_ours_hybrid_misses"] = _misses(results["hybrid"], sets, offsets, queries)

    if baseline is not None:
        base_root = copy_corpus(codebase, work / "agent-base")
        index_with(baseline, base_root, backend)
        base = query_with(baseline, base_root, queries, [(m, None) for m in MODES], work)
        figures.update(figures_for("base", base, sets, offsets))
    if peer:
        from benchmarks.peer_quality import peer_results

        peer_out = peer_results(codebase, work, queries, K, cache_dir or REPO_ROOT / ".bench-cache")
        figures.update(figures_for("peer", {"default": peer_out}, sets, offsets))
    return figures


def _misses(per_query: list[list[Any]], sets: dict[str, list[list[Answer]]], offsets: dict[str, tuple[int, int]],
            queries: Sequence[str]) -> list[str]:
    """Queries whose answer is not the first hybrid result, with the rank it got (for reading, not scoring)."""
    out = []
    for set_name, answers in sets.items():
        start, _ = offsets[set_name]
        for i, a in enumerate(answers):
            r = rank(a, per_query[start + i], STRICT[set_name])
            if r != 1:
                out.append(f"{queries[start + i]!r}: {r}")
    return out


def run_scenario(ctx: Any) -> dict[str, Any]:
    """The ``agent_quality`` scenario of ``python -m benchmarks``."""
    data = load_questions()
    codebase = ctx.corpus / data["codebase"]
    if not codebase.is_dir():
        raise BenchmarkError(f"agent_quality needs {data['codebase']} under the corpus ({codebase} is missing)")
    return run(codebase, ctx.work, ctx.backend, getattr(ctx, "baseline", None), getattr(ctx, "peer", False),
               ctx.cache_dir)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.agent_quality", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus holding the questions' codebase")
    ap.add_argument("--embedder", default="onnx")
    ap.add_argument("--baseline", type=Path, default=None)
    ap.add_argument("--peer", action="store_true", help="also run mcp-vector-search (its venv must exist)")
    ap.add_argument("--questions", type=Path, default=QUESTIONS,
                    help="a question file (default: the held-out werkzeug set; questions/flask-dev.json is the "
                         "development set ranking changes were tried on)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)
    data = load_questions(args.questions)
    work = Path(tempfile.mkdtemp(prefix="agent-quality-"))
    try:
        figures = run(args.corpus.resolve() / data["codebase"], work, args.embedder,
                      args.baseline.resolve() if args.baseline else None, args.peer, questions=args.questions)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for key, value in figures.items():
        print(f"  {key:<48} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
