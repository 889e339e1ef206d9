"""The ``sentence-transformers`` embedder backend: torch, CUDA when present.

The reference implementation the ``onnx`` vectors are checked against, and the backend for models the
ONNX export does not cover (extra Dense layers, custom modules). Same identity, token counting and
device rules as ``onnx``; ``fp16`` halves the weights on a GPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import codeindex
from codeindex.embedders import devices, model_backend, models, tokens
from codeindex.errors import EmbedderError
from codeindex.hookspecs import EmbedderBackend, EmbedderSettings

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("codeindex.embedders.sentence_transformers")

BACKEND = "sentence-transformers"


def pick_device(settings: EmbedderSettings, cuda_available: bool, cuda_count: int) -> str:
    """The torch device for ``settings.device``; a ``cuda`` demand without a GPU is an error."""
    kind, index = devices.parse_device(settings.device, BACKEND)
    if kind == "cpu":
        return "cpu"
    if kind == "cuda" and (not cuda_available or index >= cuda_count):
        raise EmbedderError(f"{BACKEND}: device {settings.device!r} requested but torch sees "
                            f"{cuda_count if cuda_available else 'no'} CUDA GPU(s)",
                            hint="install a CUDA build of torch, or use device cpu")
    return f"cuda:{index}" if cuda_available else "cpu"


class SentenceTransformerEmbedder:
    """A loaded ``SentenceTransformer``. Create with :func:`create`."""

    backend = BACKEND

    def __init__(self, info: models.ModelInfo, model: Any, device: str) -> None:
        self.info = info
        self.model_id = info.model_id
        self.dim = info.dim
        self.max_tokens = info.max_seq_length
        self.device = device
        self._model = model
        self._count = tokens.TokenCounter(info.path)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._count(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # One call is one batch: the caller (embed_batched) already sized it by token budget.
        vectors = self._model.encode(list(texts), batch_size=len(texts), convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.model_id!r}, device={self.device!r})"


def create(settings: EmbedderSettings) -> SentenceTransformerEmbedder:
    info = models.model_info(settings, BACKEND)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local directory: no network
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise EmbedderError(f"{BACKEND}: cannot import torch/sentence-transformers: {exc}",
                            hint="pip install 'codeindex[torch]' (torch first: see the README), "
                                 "or use the onnx backend") from exc
    hf_logging.disable_progress_bar()  # the library never prints
    cuda = torch.cuda.is_available()
    device = pick_device(settings, cuda, torch.cuda.device_count() if cuda else 0)
    if device == "cpu":
        torch.set_num_threads(settings.threads if settings.threads > 0 else devices.available_cores())
    try:
        model = SentenceTransformer(str(info.path), device=device)
    except Exception as exc:
        raise EmbedderError(f"{BACKEND}: cannot load {info.path}: {exc}") from exc
    model.max_seq_length = info.max_seq_length
    if settings.fp16:
        if device.startswith("cuda"):
            model.half()
        else:
            log.warning("%s: fp16 applies on GPU only; running float32 on %s", BACKEND, device)
    model.eval()
    log.info("%s: %s on %s%s", BACKEND, info.model_id, device, " (fp16)" if settings.fp16 else "")
    return SentenceTransformerEmbedder(info, model, device)


@codeindex.hookimpl
def codeindex_embedders() -> list[EmbedderBackend]:
    return [model_backend.model_backend(
        BACKEND, "sentence-transformers on torch (CUDA when available, fp16 option)", create, gpu_usable)]


def gpu_usable(settings: EmbedderSettings) -> bool:
    """Whether ``create`` would pick a CUDA device. Imports torch (seconds), so it is asked only on a
    host whose ``nvidia-smi`` lists a GPU."""
    kind, _ = devices.parse_device(settings.device, BACKEND)
    if kind == "cpu":
        return False
    try:
        import torch
    except ImportError:  # the codeindex[torch] extra is not installed: create would fail anyway
        return False
    return bool(torch.cuda.is_available())
