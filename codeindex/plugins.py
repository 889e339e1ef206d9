"""Plugin discovery: entry points loaded lazily, once, with an off switch and a block list.

Built-in parsers and embedders are ordinary plugins registered through the same hooks a third
party uses (``DEFAULT_PLUGINS``); they also appear as entry points of the ``codeindex`` distribution.
A broken third-party plugin (import error, wrong hook signature, exception from a hook) becomes a
warning naming it; the tool goes on with the others.

Environment:
    ``CODEINDEX_DISABLE_PLUGIN_AUTOLOAD=1``  load only the built-ins.
    ``CODEINDEX_BLOCK_PLUGINS=a,b``          never load the named plugins (entry-point names).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, TypeVar

import pluggy

from codeindex import hookspecs
from codeindex.errors import PluginError

log = logging.getLogger("codeindex.plugins")

ENTRY_POINT_GROUPS = ("codeindex.parsers", "codeindex.embedders", "codeindex.rerankers")

DEFAULT_PLUGINS: dict[str, str] = {
    "treesitter": "codeindex.parsers.treesitter",
    "text": "codeindex.parsers.text",
    "onnx": "codeindex.embedders.onnx",
    "sentence-transformers": "codeindex.embedders.sentence_transformers",
    "hashing": "codeindex.embedders.hashing",
}


@dataclass(slots=True)
class PluginInfo:
    """One registered plugin as ``codeindex plugins`` shows it."""

    name: str
    module: str
    package: str
    version: str
    builtin: bool
    parsers: list[hookspecs.Parser] = field(default_factory=list)
    embedders: list[hookspecs.EmbedderBackend] = field(default_factory=list)
    rerankers: list[hookspecs.Reranker] = field(default_factory=list)


@dataclass(slots=True)
class PluginManager:
    """The pluggy manager plus what we learned while loading: infos and warnings."""

    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    warnings: list[str]
    _parsers: list[hookspecs.Parser] = field(default_factory=list)
    _embedders: list[hookspecs.EmbedderBackend] = field(default_factory=list)

    def parsers(self) -> list[hookspecs.Parser]:
        """All parser objects in hook order: built-ins first, third parties after, ``tryfirst`` ones last
        (later wins on a shared extension)."""
        return list(self._parsers)

    def embedder_backends(self) -> dict[str, hookspecs.EmbedderBackend]:
        return {b.name: b for b in self._embedders}

    def embedder_backend(self, name: str) -> hookspecs.EmbedderBackend:
        return _pick(self.embedder_backends(), name, "embedder backend", "none", "backends")

    def rerankers(self) -> dict[str, hookspecs.Reranker]:
        return {r.name: r for info in self.infos.values() for r in info.rerankers}

    def reranker(self, name: str) -> hookspecs.Reranker:
        return _pick(self.rerankers(), name, "reranker", "none installed", "rerankers")

    def parser_by_name(self, name: str) -> hookspecs.Parser:
        for parser in self.parsers():
            if parser.name == name:
                return parser
        raise PluginError(f"unknown parser plugin {name!r}")


_lock = threading.Lock()
_manager: PluginManager | None = None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def blocked_plugins() -> set[str]:
    return {n.strip() for n in os.environ.get("CODEINDEX_BLOCK_PLUGINS", "").split(",") if n.strip()}


def get_plugin_manager() -> PluginManager:
    """Load plugins once per process and return the manager."""
    global _manager
    with _lock:
        if _manager is None:
            entry_points: Iterable[metadata.EntryPoint] = ()
            if not _env_flag("CODEINDEX_DISABLE_PLUGIN_AUTOLOAD"):
                entry_points = [ep for group in ENTRY_POINT_GROUPS
                                for ep in metadata.entry_points(group=group)]
            _manager = build_plugin_manager(entry_points, blocked=blocked_plugins())
        return _manager


def register_plugin(plugin: ModuleType | Any, name: str, *, package: str = "__main__", version: str = "") -> None:
    """Register a plugin (a module or object with ``codeindex_*`` hook implementations) in this process,
    as an installed entry point would be; for scripts, notebooks and tests.

    Only this process sees it: worker processes of a local or remote Dask cluster load plugins from
    entry points, so run with ``scheduler="sync"`` (small updates run in-process anyway) or package the
    plugin with an entry point (docs/howto/write-a-parser-plugin.md). Problems become warnings, as for
    any plugin; ``codeindex.plugins.get_plugin_manager().warnings`` lists them.
    """
    manager = get_plugin_manager()
    with _lock:
        _register(manager, name, plugin, package=package, version=version, builtin=False)
        if name in manager.infos:
            _collect(manager, only=name)


def reset_plugin_manager() -> None:
    """Forget loaded plugins (tests, and after installing a plugin in a running process)."""
    global _manager
    with _lock:
        _manager = None


def build_plugin_manager(entry_points: Iterable[metadata.EntryPoint],
                         blocked: set[str] | None = None) -> PluginManager:
    """Register the built-ins, then each entry point; problems become warnings, never exceptions."""
    blocked = blocked or set()
    pm = pluggy.PluginManager("codeindex")
    pm.add_hookspecs(hookspecs)
    manager = PluginManager(pm=pm, infos={}, warnings=[])
    for name, module_name in DEFAULT_PLUGINS.items():
        if name in blocked:
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # e.g. a missing optional dependency: the other built-ins still work
            _warn(manager, f"built-in plugin {name!r} failed to load: {type(exc).__name__}: {exc}")
            continue
        _register(manager, name, module, package="codeindex", version=_dist_version("codeindex"),
                  builtin=True)
    builtin_modules = set(DEFAULT_PLUGINS.values())
    for ep in entry_points:
        if ep.name in blocked or ep.value in builtin_modules or ep.name in manager.infos:
            continue
        dist = getattr(ep, "dist", None)
        package = dist.name if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        try:
            module = ep.load()
        except Exception as exc:  # a third-party import can fail in any way
            _warn(manager, f"plugin {ep.name!r} ({package}) failed to load: {type(exc).__name__}: {exc}")
            continue
        _register(manager, ep.name, module, package=package, version=version, builtin=False)
    _collect(manager)
    return manager


HOOKS = ("codeindex_parsers", "codeindex_embedders", "codeindex_rerankers")


def _register(manager: PluginManager, name: str, module: ModuleType | Any, *, package: str,
              version: str, builtin: bool) -> None:
    try:
        manager.pm.register(module, name=name)
    except Exception as exc:  # pluggy.PluginValidationError for a wrong signature, ValueError for dupes
        _warn(manager, f"plugin {name!r} ({package}) was not registered: {exc}")
        return
    manager.infos[name] = PluginInfo(name=name, module=getattr(module, "__name__", repr(module)),
                                     package=package, version=version, builtin=builtin)


def _collect(manager: PluginManager, *, only: str | None = None) -> None:
    """Call every hook implementation through pluggy, one at a time, so one failing plugin costs only itself.

    ``get_hookimpls()`` lists implementations in registration order as pluggy sorts them (``trylast``
    first, ``tryfirst`` last), so built-ins come before third parties and a ``tryfirst`` plugin comes
    last, where it wins a shared extension. Each ``HookImpl.function`` is what pluggy itself would call:
    ``specname`` aliases and methods of class-instance plugins work.
    """
    for hook_name in HOOKS:
        caller = getattr(manager.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if only is not None and impl.plugin_name != only:
                continue
            info = manager.infos[impl.plugin_name]
            try:
                result = list(impl.function() or [])
            except Exception as exc:
                _warn(manager, f"plugin {info.name!r} ({info.package}) hook {hook_name} raised "
                               f"{type(exc).__name__}: {exc}")
                continue
            if hook_name == "codeindex_parsers":
                good = [p for p in result if isinstance(p, hookspecs.Parser)]
                if len(good) != len(result):
                    _warn(manager, f"plugin {info.name!r} ({info.package}) returned objects that are not "
                                   "parsers; ignored")
                info.parsers.extend(good)
                manager._parsers.extend(good)
            elif hook_name == "codeindex_rerankers":
                good_r = [r for r in result if isinstance(r, hookspecs.Reranker)]
                if len(good_r) != len(result):
                    _warn(manager, f"plugin {info.name!r} ({info.package}) returned objects that are not "
                                   "rerankers; ignored")
                info.rerankers.extend(good_r)
            else:
                good_e = [b for b in result if isinstance(b, hookspecs.EmbedderBackend)]
                if len(good_e) != len(result):
                    _warn(manager, f"plugin {info.name!r} ({info.package}) returned objects that are not "
                                   "embedder backends; ignored")
                info.embedders.extend(good_e)
                manager._embedders.extend(good_e)


def _warn(manager: PluginManager, message: str) -> None:
    manager.warnings.append(message)
    log.warning(message)


def _dist_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


T = TypeVar("T")

def _pick(table: dict[str, T], name: str, kind: str, when_empty: str, plural: str) -> T:
    """``table[name]``, or the one error every plugin lookup gives: what is unknown and what is installed."""
    if name not in table:
        known = ", ".join(sorted(table)) or when_empty
        raise PluginError(f"unknown {kind} {name!r} (available: {known})",
                          hint=f"`codeindex plugins` lists the installed {plural}")
    return table[name]
