"""Chunk shape on real code, this checkout beside a baseline checkout: parse only, no embedding.

    python -m benchmarks.chunk_shape --corpus /work/corpora/medium [--baseline /work/base]

Each checkout chunks the corpus in its own process (``PYTHONPATH`` set to it), with the default
embedder's token counter and budget, through the pipeline's parse task. Figures per checkout:

- ``share_le3_lines``: chunks of three lines or fewer (the fragments an agent cannot use);
  ``share_le3_lines_light`` counts only those under half the token budget (three lines of a hex
  table can fill a chunk: those are not fragments); ``share_le3_lines_whole_file`` counts those
  that are their file's only chunk (a file that small is legitimately one small chunk). Both are
  parts of ``share_le3_lines``, which stays the plain count;
- ``share_fit_split``: of the definitions whose own text fits the budget as one chunk (header +
  text, counted exactly), the share no single chunk holds whole. Definitions come from this
  checkout's symbol extraction, the same list for both sides;
- ``chunks_per_file``, ``tokens_embedded`` (distinct embedded texts, as the pipeline embeds them),
  and ``parse_cpu_s`` (CPU seconds of the parse task, on a machine other agents share).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO_ROOT

MAX_TOKENS = 256

DUMP = r"""
import hashlib, json, sys, time
from benchmarks.parse_throughput import _context, _load
import codeindex, os
# ask the files, not the import system: the shared editable install resolves missing submodules elsewhere
if os.path.exists(os.path.join(os.path.dirname(codeindex.__file__), "engine", "tasks.py")):
    from codeindex.engine.tasks import parse_batch
else:  # checkouts before the stage layout
    from codeindex.tasks import parse_batch
items = _load(__import__("pathlib").Path(sys.argv[1]))
ctx = _context(int(sys.argv[3]))
start = time.process_time()
out = [parse_batch(items[i:i + 64], ctx) for i in range(0, len(items), 64)]
cpu = time.process_time() - start
chunks, definitions = [], []
for batch in out:
    for r in batch.results:
        for c in r.chunks:
            chunks.append([c.path, c.start_line, c.end_line, c.n_tokens,
                           hashlib.blake2b(c.embed_text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()])
        for d in getattr(r, "definitions", ()):
            definitions.append([r.path, d.qualified, d.kind, d.start_line, d.end_line])
json.dump({"files": len(items), "cpu_s": cpu, "chunks": chunks, "definitions": definitions},
          open(sys.argv[2], "w"))
"""


def dump(tree: Path, corpus: Path, out: Path, max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    """Chunks (and definitions, where the checkout reports them) of ``corpus`` as ``tree`` makes them."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "RAYON_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, "-c", DUMP, str(corpus), str(out), str(max_tokens)], env=env, check=True,
                   cwd=tree)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def fitting_definitions(corpus: Path, definitions: Sequence[Sequence[Any]],
                        max_tokens: int = MAX_TOKENS) -> list[tuple[str, int, int, str]]:
    """``(path, first, last, qualified)`` of the definitions whose header + text fits ``max_tokens`` exactly."""
    from codeindex.chunking.build import header
    from codeindex.engine.tasks import token_counter
    from codeindex.hookspecs import EmbedderSettings
    from codeindex.languages import LanguageMap
    from codeindex.plugins import get_plugin_manager

    count = token_counter("onnx", EmbedderSettings())
    languages = LanguageMap.from_parsers(get_plugin_manager().parsers())
    lines_of: dict[str, list[str]] = {}
    texts: list[str] = []
    rows: list[tuple[str, int, int, str]] = []
    for path, qualified, kind, first, last in definitions:
        if path not in lines_of:
            lines_of[path] = (corpus / path).read_bytes().decode("utf-8", errors="replace").split("\n")
        language = languages.language_of(path) or ""
        texts.append(header(language, kind, qualified, ()) + "\n".join(lines_of[path][first - 1:last]))
        rows.append((path, first, last, qualified))
    counts = count(texts)
    return [row for row, n in zip(rows, counts, strict=True) if n <= max_tokens]


def shape(data: dict[str, Any], fitting: Sequence[tuple[str, int, int, str]],
          max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    chunks = data["chunks"]
    n = max(1, len(chunks))
    small = [c for c in chunks if c[2] - c[1] + 1 <= 3]
    by_path: dict[str, list[tuple[int, int]]] = {}
    for path, first, last, _, _ in chunks:
        by_path.setdefault(path, []).append((first, last))
    whole_file = sum(1 for c in small if len(by_path[c[0]]) == 1)
    split = [d for d in fitting if not any(a <= d[1] and d[2] <= b for a, b in by_path.get(d[0], ()))]
    distinct: dict[str, int] = {}
    for c in chunks:
        distinct.setdefault(c[4], min(c[3], max_tokens))
    return {
        "files": data["files"], "chunks": len(chunks), "chunks_per_file": len(chunks) / max(1, data["files"]),
        "share_le3_lines": len(small) / n,
        "share_le3_lines_light": sum(1 for c in small if c[3] < max_tokens // 2) / n,
        "share_le3_lines_whole_file": whole_file / n,
        "share_one_line": sum(1 for c in chunks if c[1] == c[2]) / n,
        "definitions_fitting": len(fitting), "fit_but_split": len(split),
        "share_fit_split": len(split) / max(1, len(fitting)),
        "tokens_embedded": sum(distinct.values()), "tokens_per_chunk": sum(c[3] for c in chunks) / n,
        "parse_cpu_s": data["cpu_s"],
        "detail_fit_but_split_examples": [f"{p}:{a}-{b} {q}" for p, a, b, q in split[:12]],
    }


def run(corpus: Path, baseline: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chunk-shape-") as tmp:
        ours = dump(REPO_ROOT, corpus, Path(tmp) / "ours.json")
        base = dump(baseline, corpus, Path(tmp) / "base.json") if baseline else None
    fitting = fitting_definitions(corpus, ours["definitions"])
    figures = {f"ours_{k}": v for k, v in shape(ours, fitting).items()}
    if base is not None:
        figures.update({f"base_{k}": v for k, v in shape(base, fitting).items()})
        for key in ("chunks", "tokens_embedded", "chunks_per_file"):
            figures[f"ratio_{key}"] = figures[f"ours_{key}"] / max(1e-9, figures[f"base_{key}"])
    figures["definitions"] = len(ours["definitions"])
    return figures


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.chunk_shape", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout of codeindex to compare with")
    args = ap.parse_args(argv)
    figures = run(args.corpus.resolve(), args.baseline.resolve() if args.baseline else None)
    for key, value in figures.items():
        print(f"  {key:<34} {value}")
    return figures


if __name__ == "__main__":
    main()
