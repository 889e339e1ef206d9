"""The ``EmbedderBackend`` of a model-backed embedder (onnx, sentence-transformers): identity and token
counting are the same for every runtime of a sentence-transformers model folder; only ``create`` and
``gpu_usable`` differ."""

from __future__ import annotations

import functools
from collections.abc import Callable

from codeindex.embedders.models import identify_model
from codeindex.embedders.tokens import model_token_counter
from codeindex.hookspecs import Embedder, EmbedderBackend, EmbedderSettings


def model_backend(name: str, description: str, create: Callable[[EmbedderSettings], Embedder],
                  gpu_usable: Callable[[EmbedderSettings], bool]) -> EmbedderBackend:
    """An ``EmbedderBackend`` for a sentence-transformers model directory: identity and token counting are
    shared by every backend that runs such a model (cheap, no runtime import); ``create`` and
    ``gpu_usable`` differ."""
    return EmbedderBackend(name=name, description=description, create=create,
                           identify=functools.partial(identify_model, backend=name),
                           token_counter=functools.partial(model_token_counter, backend=name),
                           gpu_usable=gpu_usable)
