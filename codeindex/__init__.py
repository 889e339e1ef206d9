"""codeindex: keep a semantic index of a source tree up to date, fast, at any scale.

The package root stays import-light so that ``codeindex --help`` is fast: ``Index`` is
imported on first attribute access, and heavy runtimes (torch, onnxruntime, faiss,
dask.distributed) are imported only inside the functions that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("codeindex")
"""Decorator for plugin hook implementations: ``@codeindex.hookimpl``."""

if TYPE_CHECKING:
    from codeindex.index import Index

__all__ = ["Index", "__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    if name == "Index":
        from codeindex.index import Index

        return Index
    raise AttributeError(name)
