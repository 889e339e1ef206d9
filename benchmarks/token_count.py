"""Token counting throughput: the HF tokenizer against the fast WordPiece counter, on one core.

    python -m benchmarks.token_count --corpus /work/corpora/medium [--lines 40] [--batch 64]

Every file is cut into ``--lines``-line windows (about the size of a chunk) and counted in batches of
``--batch``, as chunking does. The fast counter is timed twice: cold (fresh caches, as a new worker
process) and warm (its caches filled by the first pass). Counts must agree exactly; the number of
windows where they do not is reported (and should be 0).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # "per core": keep the Rust tokenizer on one thread
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _windows(corpus: Path, size: int) -> list[str]:
    out: list[str] = []
    for path in sorted(corpus.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if b"\0" not in data[:8192]:
                lines = data.decode("utf-8", errors="replace").split("\n")
                out.extend("\n".join(lines[i:i + size]) for i in range(0, len(lines), size))
    return out


def _timed(count: Callable[[Sequence[str]], list[int]], texts: list[str], batch: int) -> tuple[float, list[int]]:
    start = time.perf_counter()
    counts: list[int] = []
    for i in range(0, len(texts), batch):
        counts.extend(count(texts[i:i + batch]))
    return time.perf_counter() - start, counts


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--lines", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)

    from codeindex.embedders.fast_count import FastWordPieceCounter
    from codeindex.embedders.models import default_model_path
    from codeindex.embedders.tokens import hf_count

    path = default_model_path()
    texts = _windows(args.corpus, args.lines)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    hf_count(path, ["warm up"])  # load the HF tokenizer outside the timing

    def reference(batch: Sequence[str]) -> list[int]:
        return hf_count(path, batch)

    load_start = time.perf_counter()
    fast = FastWordPieceCounter.from_file(path / "tokenizer.json", reference)
    load_s = time.perf_counter() - load_start
    if fast is None:
        raise SystemExit(f"{path}: no fast counter for this tokenizer")
    hf_s, want = _timed(reference, texts, args.batch)
    cold_s, got_cold = _timed(fast, texts, args.batch)
    warm_s, got_warm = _timed(fast, texts, args.batch)
    figures = {
        "windows": len(texts),
        "mb": mb,
        "hf_mb_per_s": mb / hf_s,
        "fast_cold_mb_per_s": mb / cold_s,
        "fast_warm_mb_per_s": mb / warm_s,
        "speedup_cold": hf_s / cold_s,
        "speedup_warm": hf_s / warm_s,
        "fast_load_s": load_s,
        "mismatches": sum(a != b for a, b in zip(want, got_cold, strict=True))
        + sum(a != b for a, b in zip(want, got_warm, strict=True)),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    return figures


if __name__ == "__main__":
    main()
