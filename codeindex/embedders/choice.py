"""Choosing the embedder for a run and checking it against the one the index was built with.

Model identity is cheap to compute (``EmbedderBackend.identify`` needs no runtime import), so a
no-op ``update`` can prove the model did not change without loading torch or onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass

from codeindex.config import Config
from codeindex.hookspecs import EmbedderSettings
from codeindex.plugins import get_plugin_manager


@dataclass(frozen=True, slots=True)
class EmbedderChoice:
    backend: str
    settings: EmbedderSettings
    model_id: str
    dim: int
    max_tokens: int

    @property
    def key_prefix(self) -> str:
        """Part of every vector key: vectors of two models can never be confused."""
        return f"{self.backend}|{self.model_id}"

    def meta(self) -> dict[str, str]:
        return {"embedder_backend": self.backend, "embedder_model": self.settings.model,
                "model_id": self.model_id, "dim": str(self.dim), "max_tokens": str(self.max_tokens)}


def settings_from_config(config: Config, model: str | None = None) -> EmbedderSettings:
    return EmbedderSettings(model=config["embedder.model"] if model is None else model,
                            device=config["embedder.device"], batch_tokens=config["embedder.batch_tokens"],
                            threads=config["embedder.threads"], fp16=config["embedder.fp16"])


def choose_embedder(config: Config, recorded: dict[str, str] | None, explicit: str | None) -> EmbedderChoice:
    """The configured embedder, except that an index keeps the one it was built with unless told otherwise.

    "Told otherwise" means ``--embedder`` on the command line or a non-default configured backend/model;
    a plain ``update`` never switches models behind the user's back.
    """
    backend_name = explicit or config["embedder.backend"]
    model = None
    configured = config.source("embedder.backend") != "default" or config.source("embedder.model") != "default"
    if recorded and "embedder_backend" in recorded and explicit is None and not configured:
        backend_name = recorded["embedder_backend"]
        model = recorded.get("embedder_model", "")
    settings = settings_from_config(config, model)
    backend = get_plugin_manager().embedder_backend(backend_name)
    model_id, dim, max_tokens = backend.identify(settings)
    return EmbedderChoice(backend_name, settings, model_id, dim, max_tokens)
