"""The embedder of this process: looked up by backend name, loaded once, reused.

A Dask worker calls :func:`get_embedder` in every embed task; the first call loads the model (seconds),
later calls return the same object (microseconds). Keyed by backend and settings, so a process that
uses two configurations (tests, a model switch) holds both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from codeindex.hookspecs import Embedder, EmbedderBackend, EmbedderSettings

_lock = threading.Lock()
_embedders: dict[tuple[str, str], Embedder] = {}


def _key(backend_name: str, settings: EmbedderSettings) -> tuple[str, str]:
    # batch_tokens does not change the loaded model, so it is not part of the key.
    return backend_name, repr((settings.model, settings.device, settings.threads, settings.fp16, settings.options))


def get_backend(backend_name: str) -> EmbedderBackend:
    """The registered backend ``backend_name`` (``PluginError`` listing the known ones otherwise)."""
    from codeindex.plugins import get_plugin_manager

    return get_plugin_manager().embedder_backend(backend_name)


def get_embedder(backend_name: str, settings: EmbedderSettings) -> Embedder:
    """The embedder for ``(backend_name, settings)``, created on first use in this process."""
    key = _key(backend_name, settings)
    with _lock:
        embedder = _embedders.get(key)
        if embedder is None:
            embedder = get_backend(backend_name).create(settings)
            _embedders[key] = embedder
        return embedder


def identify(backend_name: str, settings: EmbedderSettings) -> tuple[str, int, int]:
    """``(model_id, dim, max_tokens)`` without loading a runtime (cheap; safe on every ``update``)."""
    return get_backend(backend_name).identify(settings)


def token_counter(backend_name: str, settings: EmbedderSettings) -> Callable[[Sequence[str]], list[int]]:
    """A light, picklable token counter for chunk budgets in parse tasks."""
    return get_backend(backend_name).token_counter(settings)


def clear_embedders() -> None:
    """Drop the loaded embedders of this process (tests; freeing GPU memory)."""
    with _lock:
        _embedders.clear()
