"""codeindex: keep a semantic index of a source tree up to date, fast, at any scale.

The package root stays import-light so that ``codeindex --help`` is fast: ``Index`` is
imported on first attribute access, and heavy runtimes (torch, onnxruntime, faiss,
dask.distributed) are imported only inside the functions that use them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

# A library stays quiet unless its application configures logging (the CLI does, by -v/-q).
logging.getLogger("codeindex").addHandler(logging.NullHandler())

hookimpl = pluggy.HookimplMarker("codeindex")
"""Decorator for plugin hook implementations: ``@codeindex.hookimpl``."""

if TYPE_CHECKING:
    from codeindex.config import ConfigError
    from codeindex.engine.report import RunReport
    from codeindex.errors import CodeIndexError
    from codeindex.explain import FileRecord, WhyReport
    from codeindex.index import CompactResult, Index
    from codeindex.search.searcher import SearchResult

_LAZY = {
    "Index": "codeindex.index",
    "CompactResult": "codeindex.index",
    "SearchResult": "codeindex.search.searcher",
    "RunReport": "codeindex.engine.report",
    "FileRecord": "codeindex.explain",
    "WhyReport": "codeindex.explain",
    "CodeIndexError": "codeindex.errors",
    "ConfigError": "codeindex.config",
}
"""Public names, imported on first access so that ``import codeindex`` stays light."""

__all__ = ["CodeIndexError", "CompactResult", "ConfigError", "FileRecord", "Index", "RunReport", "SearchResult",
           "WhyReport", "__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codeindex' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
