"""Token-budget batching: how many rows go into one model call.

A transformer pads every row of a batch to the longest one, so the work of a batch is
``rows x longest row`` padded tokens. Sorting rows by length and filling batches up to a fixed
padded-token budget wastes almost nothing on padding and keeps peak memory flat, whatever the mix of
short and long chunks. ``plan_batches`` is the pure decision; ``embed_batched`` runs it and halves a
batch that runs out of memory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from codeindex.errors import EmbedderError

if TYPE_CHECKING:
    import numpy as np

    from codeindex.hookspecs import Embedder

log = logging.getLogger("codeindex.embedders")


def _clip(lengths: Sequence[int], max_len: int) -> list[int]:
    """Lengths as the model sees them: at least 1, at most ``max_len`` (0 or less means no limit)."""
    if max_len > 0:
        return [min(max(int(n), 1), max_len) for n in lengths]
    return [max(int(n), 1) for n in lengths]


def plan_batches(lengths: Sequence[int], budget_tokens: int, max_len: int) -> list[list[int]]:
    """Group row indices into batches whose padded size (rows x longest row) fits ``budget_tokens``.

    Lengths are clipped at ``max_len`` (the model truncates there) and counted as at least 1. Rows
    are taken shortest first (ties by index, so the plan is deterministic); a batch closes when the
    next row would push it over the budget. A single row longer than the budget gets a batch of its own.
    """
    if budget_tokens < 1:
        raise ValueError(f"budget_tokens must be positive, got {budget_tokens}")
    clipped = _clip(lengths, max_len)
    order = sorted(range(len(clipped)), key=lambda i: (clipped[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = clipped[i]  # ascending order: the newcomer is the longest row
        if current and (len(current) + 1) * longest > budget_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


_OOM_MESSAGE = re.compile(r"out of memory|failed to allocate|bad_alloc|cannot allocate|allocation failed",
                          re.IGNORECASE)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says a batch did not fit in memory (host or GPU), without importing any runtime.

    Covers ``MemoryError``, ``torch.cuda.OutOfMemoryError`` and onnxruntime's ``RuntimeException``/
    ``Fail`` whose message mentions an allocation.
    """
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    module = type(exc).__module__ or ""
    runtime_error = isinstance(exc, RuntimeError) or module.startswith(("onnxruntime", "torch"))
    return runtime_error and bool(_OOM_MESSAGE.search(str(exc)))


def embed_batched(embedder: Embedder, texts: Sequence[str], lengths: Sequence[int],
                  budget_tokens: int) -> np.ndarray:
    """Embed ``texts`` in token-budget batches; return ``(len(texts), dim)`` vectors in input order.

    ``lengths`` are token counts (``Chunk.n_tokens``, or ``embedder.count_tokens``). When a batch runs
    out of memory it is split in half and retried, down to single rows; the rest of the work is then
    re-planned under the smaller budget, so one OOM does not repeat on every later batch.
    """
    import numpy as np

    if len(texts) != len(lengths):
        raise ValueError(f"{len(texts)} texts but {len(lengths)} lengths")
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    if not texts:
        return out
    max_len = embedder.max_tokens
    clipped = _clip(lengths, max_len)
    budget = budget_tokens
    pending = plan_batches(clipped, budget, max_len)
    pending.reverse()  # a stack: pop() takes batches in plan order
    while pending:
        batch = pending.pop()
        try:
            vectors = embedder.embed([texts[i] for i in batch])
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if len(batch) == 1:
                raise EmbedderError(f"{embedder.backend}: out of memory embedding a single row "
                                    f"of {clipped[batch[0]]} tokens: {exc}",
                                    hint="lower embedder.batch_tokens, or use a device with more memory"
                                    ) from exc
            half = len(batch) // 2
            budget = max(1, min(budget, half * max(clipped[i] for i in batch)))
            log.warning("%s: batch of %d rows ran out of memory; retrying halves (budget now %d tokens)",
                        embedder.backend, len(batch), budget)
            rest = [i for b in reversed(pending) for i in b]
            replanned = plan_batches([clipped[i] for i in rest], budget, max_len)
            pending = [[rest[j] for j in b] for b in replanned]
            pending.reverse()
            pending.append(batch[half:])
            pending.append(batch[:half])
            continue
        out[batch] = vectors
    return out
