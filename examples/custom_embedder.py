"""A custom embedder plugin: character trigrams hashed into 256 dimensions, registered in this process.

    python examples/custom_embedder.py ~/src/myproject "parse config"

An embedder backend is an ``EmbedderBackend``: a name, ``identify`` (model id, dimension, max tokens,
computed without loading anything heavy), ``token_counter`` and ``create`` (the loaded model: ``embed``
returns L2-normalised float32 rows). A plugin returns backends from the ``codeindex_embedders`` hook.
Packaged, it would be an entry point in your ``pyproject.toml``:

    [project.entry-points."codeindex.embedders"]
    trigram = "my_package.trigram"

Here it is registered in this process with ``register_plugin``, so the run uses the in-process
scheduler (a Dask worker process would not see it). The index records the model id: searching or
updating with another embedder is refused instead of mixing vectors.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np

import codeindex
from codeindex import Index
from codeindex.hookspecs import EmbedderBackend
from codeindex.plugins import register_plugin

DIM = 256
MODEL_ID = "trigram-v1-256"


def count_tokens(texts: Sequence[str]) -> list[int]:
    return [max(1, len(text) // 4) for text in texts]


class TrigramEmbedder:
    backend = "trigram"
    model_id = MODEL_ID
    dim = DIM
    max_tokens = 512
    device = "cpu"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            lowered = text.lower()
            for i in range(len(lowered) - 2):
                out[row, zlib.crc32(lowered[i:i + 3].encode()) % DIM] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


@codeindex.hookimpl
def codeindex_embedders() -> list[EmbedderBackend]:
    return [EmbedderBackend(
        name="trigram", description="character trigrams, hashed (an example plugin)",
        create=lambda settings: TrigramEmbedder(),
        identify=lambda settings: (MODEL_ID, DIM, 512),
        token_counter=lambda settings: count_tokens)]


def main(root: str, query: str) -> int:
    register_plugin(SimpleNamespace(codeindex_embedders=codeindex_embedders), "trigram")
    with Index(root, settings={"embedder.backend": "trigram", "engine.scheduler": "sync"}) as index:
        report = index.update()
        print(f"embedded {report.chunks_embedded} chunks with {report.embedder} ({report.model_id})")
        for hit in index.search(query, k=3, mode="vector"):
            print(f"{hit.path}:{hit.start_line}-{hit.end_line}  {hit.score:.3f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
