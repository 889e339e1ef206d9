"""Hook specifications: the whole plugin surface of codeindex.

A plugin is a module (or object) with functions decorated by ``codeindex.hookimpl`` whose names
match the specs below, registered through an entry point in the ``codeindex.parsers``,
``codeindex.embedders`` or ``codeindex.rerankers`` group. The built-in parsers and embedders
register through exactly these hooks. Every hook here is documented in ``docs/reference/hooks.md`` and tested
(``tests/test_docs.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    import numpy as np

    from codeindex.models import Chunk

hookspec = pluggy.HookspecMarker("codeindex")


# --------------------------------------------------------------------------- parsers


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """How discovery recognises a language: file extensions (with dot), exact file names, shebang words."""

    name: str
    extensions: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    shebangs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChunkBudget:
    """The token budget a chunk's ``embed_text`` should fit in, and how to count tokens.

    ``count_tokens`` maps a list of texts to their token counts with the embedder's tokenizer, so the
    chunker's notion of "too long" is the model's.
    """

    max_tokens: int
    count_tokens: Callable[[Sequence[str]], list[int]]


@runtime_checkable
class Parser(Protocol):
    """A language parser plugin: turns one file's bytes into chunks.

    Instances travel to Dask workers by pickling, so keep them light: create tree-sitter parsers
    (which do not pickle) lazily inside ``chunk``.
    """

    name: str
    version: str

    def languages(self) -> Sequence[LanguageSpec]:
        """The languages this parser claims."""
        ...

    def config_hash(self, language: str) -> str:
        """A short hash of the rules used for ``language``; part of each chunk's parser identity."""
        ...

    def chunk(self, source: bytes, path: str, language: str, budget: ChunkBudget) -> list[Chunk]:
        """Split ``source`` into chunks. Raise ``ValueError`` for input it cannot handle."""
        ...


@hookspec
def codeindex_parsers() -> list[Parser]:  # type: ignore[empty-body]
    """Return parser plugin objects this plugin provides.

    Every plugin contributes. When two parsers claim the same extension, the one registered last
    (third-party plugins load after the built-ins) wins, so a package can replace a built-in language.
    """


# --------------------------------------------------------------------------- embedders


@dataclass(frozen=True, slots=True)
class EmbedderSettings:
    """What a backend needs to construct an embedder. Picklable; sent to Dask workers."""

    model: str = ""
    """A sentence-transformers model directory or name; empty means the packaged all-MiniLM-L6-v2."""
    device: str = "auto"
    """``auto`` picks (and reports) the best device; ``cpu``/``cuda`` are demands, never silently ignored."""
    batch_tokens: int = 16384
    """Padded-token budget of one embedding batch (rows x longest row)."""
    threads: int = 0
    """Intra-op threads for the runtime; 0 means one per core available to this process."""
    fp16: bool = False
    """Half precision on GPU (sentence-transformers backend)."""
    options: tuple[tuple[str, Any], ...] = ()
    """Backend-specific extras as (name, value) pairs: a tuple, so settings stay hashable cache keys."""


@runtime_checkable
class Embedder(Protocol):
    """A loaded model. Created once per process and reused."""

    backend: str
    model_id: str
    """Stable identity of the model weights (name + content hash); recorded in the index."""
    dim: int
    max_tokens: int
    device: str

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts as this model's tokenizer sees them (before truncation)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(len(texts), dim)`` float32 array of L2-normalised vectors."""
        ...


@dataclass(frozen=True, slots=True)
class EmbedderBackend:
    """A named way to build an embedder. ``create`` does the heavy imports, only when chosen.

    ``identify`` returns ``(model_id, dim, max_tokens)`` cheaply, without loading a runtime, so that a
    no-op ``update`` can check model identity without importing torch or onnxruntime.
    ``token_counter`` returns a light callable counting tokens (used by parse tasks for chunk budgets).
    ``gpu_usable`` says whether ``create`` with these settings would put the model on a CUDA device of
    this host. It is asked only when the host has a GPU, before a local cluster is shaped: a GPU worker
    that would embed on one CPU thread is worse than no GPU worker. The default answers no.
    """

    name: str
    description: str
    create: Callable[[EmbedderSettings], Embedder]
    identify: Callable[[EmbedderSettings], tuple[str, int, int]]
    token_counter: Callable[[EmbedderSettings], Callable[[Sequence[str]], list[int]]]
    gpu_usable: Callable[[EmbedderSettings], bool] = field(default=lambda settings: False)


@hookspec
def codeindex_embedders() -> list[EmbedderBackend]:  # type: ignore[empty-body]
    """Return embedder backends this plugin provides. One backend is chosen by configuration."""


# --------------------------------------------------------------------------- rerankers


@dataclass(frozen=True, slots=True)
class RerankCandidate:
    """One fused search result as a reranker sees it: where it is, what it says, how it ranked."""

    chunk_id: int
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    text: str
    score: float
    """The fused (or single-mode) score the candidate had before reranking."""


@runtime_checkable
class Reranker(Protocol):
    """Reorders search candidates, e.g. a cross-encoder scoring (query, chunk) pairs.

    Off unless named (``search.reranker`` or ``codeindex search --rerank NAME``). Load heavy state
    (a model) lazily, on the first ``rerank`` call, so that listing plugins stays cheap.
    """

    name: str
    description: str

    def rerank(self, query: str, candidates: Sequence[RerankCandidate]) -> list[float]:
        """One score per candidate, higher is better; equal scores keep the incoming order."""
        ...


@hookspec
def codeindex_rerankers() -> list[Reranker]:  # type: ignore[empty-body]
    """Return reranker objects this plugin provides. A search uses at most one, chosen by name.

    The definitions an identifier-shaped query names stay above every reranked result.
    """
