"""``python -m benchmarks``: measure codeindex against its bounds (and a peer) on any source tree.

    python -m benchmarks --scenarios rebuild,noop,edit1 --corpus DIR [--embedder NAME] [--json OUT]
                         [--smoke] [--repeat N] [--write-docs]
    python -m benchmarks compare A.json B.json     # per-figure B/A
    python -m benchmarks docs A.json [B.json ...]  # regenerate the results block of docs/benchmarks.md

Scenarios: see ``benchmarks.scenarios.SCENARIOS`` (``all`` runs every one). The corpus is never
modified: scenarios work on copies under ``--workdir`` (a temporary directory by default).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO_ROOT, BenchmarkError, Context, corpus_manifest, machine_info, versions
from benchmarks.report import compare, scenario_table, write_docs
from benchmarks.scenarios import SCENARIOS, SMOKE_DEFAULT

DOCS_PATH = REPO_ROOT / "docs" / "benchmarks.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="rebuild,noop,edit1",
                    help=f"comma-separated, or 'all'; known: {', '.join(SCENARIOS)}")
    ap.add_argument("--corpus", type=Path, required=True, help="any source tree (it is copied, never changed)")
    ap.add_argument("--embedder", default=None, help="embedder backend (default onnx; hashing in --smoke)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here "
                    "(default bench-results/<date>-<corpus>.json)")
    ap.add_argument("--smoke", action="store_true",
                    help="every scenario quickly: hashing embedder, repeat 1, small samples; peer only if "
                         "its venv exists")
    ap.add_argument("--repeat", type=int, default=None, help="repeats of cheap timings (default 3, smoke 1)")
    ap.add_argument("--rebuild-repeat", type=int, default=1, help="repeats of the full rebuild (default 1)")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch space for corpus copies")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies")
    ap.add_argument("--indexed", type=Path, default=None,
                    help="an indexed copy of the corpus to use instead of building one (for corpora whose "
                         "rebuild takes hours); scenarios restore what they change in it")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout of codeindex (e.g. /work/base) that agent_quality and chunk_shape run "
                         "beside this one, in the same run")
    ap.add_argument("--peer", action="store_true", help="agent_quality also runs mcp-vector-search on its questions")
    ap.add_argument("--write-docs", action="store_true", help="write this run's table into docs/benchmarks.md")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    corpus: Path = args.corpus.expanduser().resolve()
    if not corpus.is_dir():
        raise SystemExit(f"not a directory: {corpus}")
    if args.scenarios == "all":
        names = SMOKE_DEFAULT if args.smoke else list(SCENARIOS)
    else:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    repeat = args.repeat or (1 if args.smoke else 3)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="codeindex-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(corpus=corpus, work=work, embedder=args.embedder, repeat=repeat, smoke=args.smoke,
                  rebuild_repeat=args.rebuild_repeat,
                  baseline=args.baseline.expanduser().resolve() if args.baseline else None, peer=args.peer)
    if args.indexed is not None:
        adopt_prebuilt(ctx, args.indexed.expanduser().resolve())
    data: dict[str, Any] = {
        "schema": 1,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "corpus": {"path": str(corpus), **corpus_manifest(corpus)},
        "args": {"scenarios": names, "embedder": ctx.backend, "repeat": repeat, "smoke": args.smoke,
                 "baseline": str(ctx.baseline) if ctx.baseline else None, "peer": args.peer,
                 "rebuild_repeat": args.rebuild_repeat, "indexed": str(args.indexed) if args.indexed else None},
        "results": {},
        "errors": {},
        "seconds": {},
    }
    print(f"corpus {corpus} ({data['corpus']['files']} files, manifest {data['corpus']['manifest_sha256'][:12]}), "
          f"embedder {ctx.backend}, repeat {repeat}, scratch {work}")
    try:
        for name in names:
            if name == "peer" and args.smoke:
                from benchmarks.peer import peer_python

                if peer_python(ctx.cache_dir) is None:
                    data["errors"][name] = "skipped in smoke mode: no peer venv under .bench-cache/"
                    print(f"== {name}: skipped (no peer venv; run the peer scenario once without --smoke)")
                    continue
            start = time.perf_counter()
            try:
                figures = SCENARIOS[name](ctx)
            except (BenchmarkError, OSError, ValueError, KeyError, RuntimeError) as exc:
                data["errors"][name] = f"{type(exc).__name__}: {exc}"
                print(f"== {name}: FAILED: {exc}")
                logging.debug("%s", traceback.format_exc())
                continue
            finally:
                data["seconds"][name] = time.perf_counter() - start
            data["results"][name] = figures
            ctx.results[name] = figures
            print(scenario_table(name, figures), flush=True)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return data


def adopt_prebuilt(ctx: Context, tree: Path) -> None:
    """Use ``tree`` (already indexed with ``ctx.backend``, with nothing pending) as the scenarios' index."""
    from codeindex import Index
    from codeindex.errors import CodeIndexError

    try:
        index = Index(tree)
        status = index.status()
        pending = index.staleness()
    except CodeIndexError as exc:
        raise SystemExit(f"--indexed {tree}: {exc}") from exc
    if status["embedder"] != ctx.backend:
        raise SystemExit(f"--indexed {tree} was built with {status['embedder']}, not {ctx.backend}")
    if any(pending.values()):
        raise SystemExit(f"--indexed {tree} is not up to date ({pending}): run `codeindex update` on it first")
    ctx.adopt_indexed(ctx.backend, tree, status["last_run"] or {})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    if argv[:1] == ["compare"]:
        if len(argv) != 3:
            raise SystemExit("usage: python -m benchmarks compare A.json B.json")
        print(compare(Path(argv[1]), Path(argv[2])))
        return 0
    if argv[:1] == ["docs"]:
        write_docs(DOCS_PATH, [json.loads(Path(p).read_text()) for p in argv[1:]])
        print(f"wrote {DOCS_PATH}")
        return 0
    args = parse_args(argv)
    data = run(args)
    out: Path = args.json or REPO_ROOT / "bench-results" / (
        f"{data['date'][:19].replace(':', '')}-{args.corpus.resolve().name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"results: {out}")
    if data["errors"]:
        print("errors: " + "; ".join(f"{k}: {v}" for k, v in data["errors"].items()))
    if args.write_docs:
        write_docs(DOCS_PATH, [data])
        print(f"wrote {DOCS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
