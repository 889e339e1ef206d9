"""Parse + chunk throughput on one core: the pipeline's parse task, as the pipeline calls it.

    python -m benchmarks.parse_throughput --corpus /work/corpora/medium [--max-tokens 256] [--counter fast]

Files are found and assigned languages and parsers the way ``Index.update`` does (``discover`` with
a ``LanguageMap`` over the plugin manager's parsers), read into ``ParseItem``s outside the timing, and
handed to ``codeindex.engine.tasks.parse_batch`` in batches of ``engine.parse_batch_files``: plugin lookup,
parser identity, binary sniffing, tree-sitter, splitting, exact token counts with the embedder
backend's own counter (caches cold at the start, as in a fresh worker), and the lexical postings.

The headline figures are for that whole task. ``chunk_*`` figures leave out the postings (measured
again on the same chunks after the run; pure, no caches), i.e. parse + chunk alone. ``--counter hf``
runs the same task with the token counter swapped for the HF tokenizer (the reference, slow),
``both`` adds that run and the ratio. Prints a table and returns the figures: files/s and MB/s
(one process, tokenizer threads pinned to one), files per CPU second (steadier than wall time on a
shared machine), and the token distribution of chunks against the budget.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # "per core": keep the Rust tokenizer on one thread
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BACKEND = "onnx"
"""The default embedder backend; only its token counter is used (no model is loaded)."""


def _percentile(sorted_values: Sequence[int], q: float) -> int:
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _load(corpus: Path) -> list[Any]:
    """``ParseItem``s for the files of ``corpus`` the indexer would parse: discovery's walk (ignore
    files, default excludes, size limit, languages from the parser plugins), read outside the timing."""
    import blake3

    from codeindex.changes.discovery import discover
    from codeindex.config import BY_NAME
    from codeindex.engine.tasks import ParseItem
    from codeindex.languages import LanguageMap
    from codeindex.plugins import get_plugin_manager

    lang_map = LanguageMap.from_parsers(get_plugin_manager().parsers())
    found = discover(corpus, lang_map.language_of, max_file_bytes=BY_NAME["discovery.max_file_bytes"].default)
    items = []
    for source in found.files:
        parser = lang_map.parser_for(source.language)
        if parser is not None:
            data = (corpus / source.path).read_bytes()
            items.append(ParseItem(source.path, source.language, parser, blake3.blake3(data).hexdigest(), data))
    return items


def _context(max_tokens: int) -> Any:
    from codeindex.engine.tasks import EmbedContext
    from codeindex.hookspecs import EmbedderSettings

    return EmbedContext(BACKEND, EmbedderSettings(), max_tokens, "bench")


@contextmanager
def _counter(kind: str, ctx: Any) -> Iterator[None]:
    """Run the parse task with the backend's counter (``fast``) or the HF tokenizer (``hf``), cold."""
    from unittest import mock

    from codeindex.embedders import models, tokens
    from codeindex.engine import tasks

    tokens._fast_counters.clear()  # a fresh worker: the fast counter's caches start empty
    tasks.token_counter.cache_clear()
    if kind == "fast":
        tasks.token_counter(ctx.backend, ctx.settings)([""])  # its vocabulary loads once per worker: not timed
        yield
        return
    path = models.default_model_path()
    tokens.hf_count(path, ["warm up"])  # load the tokenizer outside the timing, as a worker would once

    def hf(backend: str, settings: Any) -> Any:
        return lambda texts: tokens.hf_count(path, texts)

    with mock.patch.object(tasks, "token_counter", hf):
        yield


def _run(items: Sequence[Any], ctx: Any, batch_files: int) -> dict[str, Any]:
    from codeindex.engine.tasks import parse_batch
    from codeindex.search.analysis import clear_caches, postings_table

    batches = [items[i:i + batch_files] for i in range(0, len(items), batch_files)]
    clear_caches()  # a fresh worker: the lexical word cache starts empty too
    start, cpu_start = time.perf_counter(), time.process_time()
    parsed = [parse_batch(batch, ctx) for batch in batches]
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start

    chunks = [c for out in parsed for r in out.results for c in r.chunks]
    clear_caches()  # as cold as it was inside the tasks
    lex_cpu = time.process_time()
    for out in parsed:  # the postings part of each task again, to split it out
        batch_chunks = [c for r in out.results for c in r.chunks]
        postings_table(list(range(len(batch_chunks))), [c.text for c in batch_chunks],
                       [c.path for c in batch_chunks], [c.symbol for c in batch_chunks])
    lex_cpu = time.process_time() - lex_cpu

    n_files = len(items)
    mb = sum(len(item.data) for item in items) / 1e6
    tokens = sorted(c.n_tokens for c in chunks)
    chunk_cpu = max(1e-9, cpu - lex_cpu)
    return {
        "files": n_files,
        "mb": mb,
        "seconds": elapsed,
        "files_per_s": n_files / elapsed,
        "mb_per_s": mb / elapsed,
        "cpu_seconds": cpu,
        "files_per_cpu_s": n_files / cpu,
        "mb_per_cpu_s": mb / cpu,
        "chunk_cpu_seconds": chunk_cpu,
        "chunk_files_per_cpu_s": n_files / chunk_cpu,
        "chunk_mb_per_cpu_s": mb / chunk_cpu,
        "postings_share": lex_cpu / cpu,
        "chunks": len(tokens),
        "within_budget": sum(t <= ctx.max_tokens for t in tokens) / max(1, len(tokens)),
        "p10_tokens": _percentile(tokens, 0.1),
        "p50_tokens": _percentile(tokens, 0.5),
        "p90_tokens": _percentile(tokens, 0.9),
        "p99_tokens": _percentile(tokens, 0.99),
        "max_tokens": tokens[-1] if tokens else 0,
        "skipped": sum(1 for out in parsed for r in out.results if r.skip_reason),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--counter", choices=("fast", "hf", "both"), default="fast",
                    help="token counter: the backend's (fast), the HF tokenizer (hf), or both side by side")
    args = ap.parse_args(argv)

    from codeindex.config import BY_NAME
    from codeindex.engine.tasks import parse_one

    items = _load(args.corpus)
    ctx = _context(args.max_tokens)
    batch_files = BY_NAME["engine.parse_batch_files"].default
    for language in sorted({item.language for item in items}):  # grammars load once per worker: not timed
        sample = next(item for item in items if item.language == language)
        parse_one(type(sample)("warm", language, sample.parser, "", b"x\n"), ctx)

    names = ["fast", "hf"] if args.counter == "both" else [args.counter]
    runs = {}
    for name in names:
        with _counter(name, ctx):
            runs[name] = _run(items, ctx, batch_files)
    figures: dict[str, Any] = {}
    for name, run in runs.items():
        prefix = "" if name == names[0] else f"{name}_"
        figures.update({f"{prefix}{key}": value for key, value in run.items()})
    figures["counter"] = names[0]
    if len(runs) == 2:
        figures["same_chunks"] = runs["hf"]["chunks"] == runs["fast"]["chunks"]
        figures["speedup_cpu"] = runs["fast"]["files_per_cpu_s"] / runs["hf"]["files_per_cpu_s"]
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    return figures


if __name__ == "__main__":
    main()
