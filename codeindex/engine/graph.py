"""Graph construction: coarse ``dask.delayed`` tasks with deterministic keys. Builds, never computes.

Keys derive from content hashes (files' blake3, vector keys), so a retried or repeated task is the
same task. Embed tasks carry ``dask.annotate(resources={"GPU": 1})`` when the cluster has GPU workers,
and ``{"EMBED": 1}`` on a CPU LocalCluster we started (one embed task per worker at a time, see
``executor.local_cluster_shape``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import blake3
import dask
from dask.delayed import Delayed, delayed

from codeindex.engine.tasks import EmbedContext, ParseItem, embed_texts, parse_batch

GPU_RESOURCE = "GPU"
EMBED_RESOURCE = "EMBED"


def _digest(*parts: str) -> str:
    h = blake3.blake3()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest(length=12)


def context_digest(ctx: EmbedContext) -> str:
    s = ctx.settings
    return _digest(ctx.backend, ctx.key_prefix, str(ctx.max_tokens), s.model, s.device, str(s.batch_tokens),
                   str(s.fp16), str(s.threads))


def parse_key(items: Sequence[ParseItem], ctx: EmbedContext) -> str:
    return "parse-" + _digest(context_digest(ctx), *(f"{i.path}:{i.content_hash}:{i.parser}" for i in items))


def embed_key(vec_keys: Sequence[str], ctx: EmbedContext) -> str:
    return "embed-" + _digest(context_digest(ctx), *vec_keys)


def parse_task(items: Sequence[ParseItem], ctx: EmbedContext) -> Delayed:
    return delayed(parse_batch, pure=True)(list(items), ctx, dask_key_name=parse_key(items, ctx))


def embed_task(vec_keys: Sequence[str], texts: Sequence[str], lengths: Sequence[int], ctx: EmbedContext,
               *, gpu: bool, resource: str | None = None) -> Delayed:
    """``gpu`` annotates with the GPU resource; otherwise ``resource`` (if given) is the one annotated."""
    wanted = GPU_RESOURCE if gpu else resource
    annotation: Any = dask.annotate(resources={wanted: 1}) if wanted else contextlib.nullcontext()
    with annotation:
        return delayed(embed_texts, pure=True)(list(texts), list(lengths), ctx,
                                               dask_key_name=embed_key(vec_keys, ctx))
