"""The ``hashing`` embedder backend: feature hashing of code-aware tokens, no model.

A real (lexical) embedder, not a fake: identifiers are kept whole and also split into their
camelCase / snake_case parts, lower-cased, each hashed with a sign into 384 dimensions, weighted by
sublinear term frequency (1 + ln tf) and L2-normalised. Texts sharing identifiers land close together.
It needs no download and runs at millions of tokens per second, which makes it the embedder for tiny
installs and for benchmarking every stage but the model at 100k-file scale. It is named for what it
is everywhere (``model_id`` ``hashing-v1-384``), so its vectors never mix with a model's.

Hashing uses blake2b, never Python's ``hash`` (salted per process), so vectors are the same in every
process and on every machine.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import codeindex
from codeindex.embedders.devices import parse_device
from codeindex.errors import EmbedderError
from codeindex.hookspecs import EmbedderBackend, EmbedderSettings

if TYPE_CHECKING:
    import numpy as np

BACKEND = "hashing"
VERSION = "v1"
DIM = 384
MAX_TOKENS = 256
"""Not a model limit (nothing is truncated): the chunk budget, so chunks match the model backends' size."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def code_tokens(text: str) -> list[str]:
    """Lower-cased identifiers and numbers, each whole and, if compound, also as its parts.

    ``parseHTTPResponse_v2`` gives ``parsehttpresponse_v2``, ``parse``, ``http``, ``response``, ``v``, ``2``.
    """
    out: list[str] = []
    for word in _IDENTIFIER.findall(text):
        whole = word.lower()
        out.append(whole)
        parts = [p.lower() for piece in word.split("_") for p in _CAMEL_PART.findall(piece)]
        if len(parts) > 1:
            out.extend(parts)
    return out


@lru_cache(maxsize=1 << 18)
def _bucket(token: str) -> tuple[int, float]:
    """Dimension and sign of ``token``: 8 bytes of blake2b, stable across processes."""
    value = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    return value % DIM, (1.0 if (value >> 63) & 1 else -1.0)


def count_tokens(texts: Sequence[str]) -> list[int]:
    """Words and punctuation marks: close to a WordPiece count, so chunk sizes resemble a model's."""
    return [len(_WORD_OR_PUNCT.findall(t)) for t in texts]


class HashingEmbedder:
    backend = BACKEND
    model_id = f"hashing-{VERSION}-{DIM}"
    dim = DIM
    max_tokens = MAX_TOKENS
    device = "cpu"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (an all-zero row for a text without identifiers or numbers)."""
        import numpy as np

        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for token, tf in Counter(code_tokens(text)).items():
                dim, sign = _bucket(token)
                out[row, dim] += sign * (1.0 + math.log(tf))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def __repr__(self) -> str:
        return f"HashingEmbedder({self.model_id!r})"


def create(settings: EmbedderSettings) -> HashingEmbedder:
    kind, _ = parse_device(settings.device, BACKEND)
    if kind == "cuda":
        raise EmbedderError(f"{BACKEND}: runs on the CPU only; device {settings.device!r} cannot be honoured",
                            hint="use device auto or cpu with the hashing backend")
    return HashingEmbedder()


def identify(settings: EmbedderSettings) -> tuple[str, int, int]:
    return HashingEmbedder.model_id, DIM, MAX_TOKENS


def token_counter(settings: EmbedderSettings) -> Callable[[Sequence[str]], list[int]]:
    return count_tokens


@codeindex.hookimpl
def codeindex_embedders() -> list[EmbedderBackend]:
    return [EmbedderBackend(
        name=BACKEND, description="feature hashing of code tokens into 384 dims; no model (lexical)",
        create=create, identify=identify, token_counter=token_counter)]
