"""Functions that run inside tasks, in-process or on Dask workers.

They are module-level so they pickle by reference, take only plain data, and cache heavy state
(parsers, tokenizers, the model) per process: the model is loaded once per worker and reused.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import blake3
import numpy as np
import pyarrow as pa

from codeindex.hookspecs import ChunkBudget, EmbedderSettings, Parser
from codeindex.languages import parser_identity
from codeindex.models import Chunk, Definition, ParseResult
from codeindex.secrets import redact

BINARY_SNIFF_BYTES = 8192

UNIT_KINDS = frozenset({"function", "method", "class", "struct", "interface", "trait", "impl", "enum", "type",
                        "macro", "namespace", "object", "record", "protocol", "extension"})
"""Chunk kinds that name a definition, for parsers that report chunks only."""


@dataclass(frozen=True, slots=True)
class ParseItem:
    path: str
    language: str
    parser: str
    content_hash: str
    data: bytes


@dataclass(frozen=True, slots=True)
class EmbedContext:
    """Everything a worker needs to recreate the embedder and the chunk budget."""

    backend: str
    settings: EmbedderSettings
    max_tokens: int
    key_prefix: str


@dataclass(slots=True)
class ParsedBatch:
    results: list[ParseResult]
    postings: pa.Table  # term, chunk_id (index into the batch's chunks, in order), tf
    lex_lens: list[int]
    seconds: float


def vector_key(key_prefix: str, embed_text: str) -> str:
    """Content address of a vector: blake3(backend + model identity + embedded text), 128 bits hex."""
    h = blake3.blake3(key_prefix.encode())
    h.update(b"\0")
    h.update(embed_text.encode("utf-8", "surrogatepass"))
    return h.hexdigest(length=16)


@lru_cache(maxsize=4)
def token_counter(backend: str, settings: EmbedderSettings) -> Callable[[Sequence[str]], list[int]]:
    """The token counter of a backend, built once per process (parse tasks and benchmarks share it)."""
    from codeindex.plugins import get_plugin_manager

    return get_plugin_manager().embedder_backend(backend).token_counter(settings)


def _parser(name: str) -> Parser:
    from codeindex.plugins import get_plugin_manager

    return get_plugin_manager().parser_by_name(name)


def looks_binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_SNIFF_BYTES]


def parse_one(item: ParseItem, ctx: EmbedContext) -> ParseResult:
    """Chunk one file; problems become a recorded skip reason, never an exception."""
    result = ParseResult(path=item.path, content_hash=item.content_hash, parser_id="")
    try:
        parser = _parser(item.parser)
        result.parser_id = parser_identity(parser, item.language)
    except Exception as exc:
        result.skip_reason = f"parser-unavailable: {item.parser}: {exc}"
        return result
    if looks_binary(item.data):
        result.skip_reason = "binary"
        return result
    # Secrets are masked before the parser sees the bytes: no chunk, header, symbol or posting holds one.
    data, redactions = redact(item.data)
    result.redactions = [(r.line, r.kind, r.name) for r in redactions]
    budget = ChunkBudget(ctx.max_tokens, token_counter(ctx.backend, ctx.settings))
    try:
        chunks, definitions = chunk_with_definitions(parser, data, item.path, item.language, budget)
    except RecursionError:
        result.skip_reason = f"parse-error: {item.parser}: nesting too deep"
        return result
    except Exception as exc:  # a plugin may fail in any way; record it, keep going
        result.skip_reason = f"parse-error: {item.parser}: {type(exc).__name__}: {exc}"
        return result
    result.chunks = list(chunks)
    result.definitions = list(definitions)
    return result


def chunk_with_definitions(parser: Parser, data: bytes, path: str, language: str,
                           budget: ChunkBudget) -> tuple[list[Chunk], list[Definition]]:
    """A file's chunks and definitions: the parser's own report of both when it gives one
    (``chunk_with_definitions``), else its chunks and the definitions they imply."""
    both = getattr(parser, "chunk_with_definitions", None)
    if both is not None:
        chunks, definitions = both(data, path, language, budget)
        return list(chunks), list(definitions)
    from codeindex.chunking.definitions import definitions_from_chunks

    chunks = list(parser.chunk(data, path, language, budget))
    return chunks, definitions_from_chunks(chunks, UNIT_KINDS)


def parse_batch(items: Sequence[ParseItem], ctx: EmbedContext) -> ParsedBatch:
    """Parse a batch of files and compute their lexical postings (coarse task: many files)."""
    from codeindex.search.analysis import postings_table

    start = time.perf_counter()
    results = [parse_one(item, ctx) for item in items]
    chunks: list[Chunk] = [c for r in results for c in r.chunks]
    postings, lex_lens = postings_table(list(range(len(chunks))), [c.text for c in chunks],
                                        [c.path for c in chunks], [c.symbol for c in chunks])
    return ParsedBatch(results, postings, list(lex_lens), time.perf_counter() - start)


@dataclass(slots=True)
class EmbeddedBatch:
    vectors: np.ndarray
    tokens: int
    seconds: float
    device: str
    worker: str  # the Dask worker's name, or IN_PROCESS


def embed_texts(texts: Sequence[str], lengths: Sequence[int], ctx: EmbedContext) -> EmbeddedBatch:
    """Embed one token-budget batch with the process's cached model."""
    from codeindex.embedders.batching import embed_batched
    from codeindex.embedders.runtime import get_embedder

    start = time.perf_counter()
    embedder = get_embedder(ctx.backend, ctx.settings)
    vectors = embed_batched(embedder, list(texts), list(lengths), ctx.settings.batch_tokens)
    return EmbeddedBatch(vectors, int(sum(min(n, embedder.max_tokens) for n in lengths)),
                         time.perf_counter() - start, embedder.device, worker_name())


IN_PROCESS = "in-process"


def worker_name() -> str:
    """The name of the Dask worker running the current task, or ``IN_PROCESS``.

    Recorded per embed batch so a run can show where embedding happened (the GPU worker of a local
    GPU cluster, say). Never imports ``distributed`` itself: the in-process path must stay light.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return IN_PROCESS
    try:
        return str(distributed.get_worker().name)
    except ValueError:
        return IN_PROCESS
