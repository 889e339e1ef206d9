"""Settings, declared once (name, type, default, help) and layered:

defaults < user config (``~/.config/codeindex/config.toml``) < ``[tool.codeindex]`` in the indexed
root's ``pyproject.toml`` < ``.codeindex.toml`` at the root < ``CODEINDEX_SECTION__KEY`` env vars < flags.

``codeindex config`` shows each value and where it came from; the same table drives docs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeindex.errors import UsageError


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("embedder.backend", str, "onnx",
            "Embedder backend: onnx (ONNX Runtime, default), sentence-transformers (torch), hashing (no model)."),
    Setting("embedder.model", str, "",
            "sentence-transformers model directory or name; empty = the packaged all-MiniLM-L6-v2."),
    Setting("embedder.device", str, "auto", "auto, cpu or cuda. cuda without a usable GPU is an error."),
    Setting("embedder.batch_tokens", int, 16384, "Padded-token budget of one embedding batch."),
    Setting("embedder.threads", int, 0, "Runtime intra-op threads per process; 0 = cores available."),
    Setting("embedder.fp16", bool, False, "Half precision on GPU (sentence-transformers backend)."),
    Setting("chunking.max_tokens", int, 256, "Token budget of one chunk (the model's max sequence)."),
    Setting("discovery.max_file_bytes", int, 1_048_576, "Files larger than this are skipped (reason: too-large)."),
    Setting("engine.scheduler", str, "local",
            "local (a LocalCluster), sync (in-process, for debugging) or tcp://host:port (existing cluster)."),
    Setting("engine.small_update_files", int, 50,
            "Dirty sets smaller than this run in-process without starting a cluster."),
    Setting("engine.workers", int, 0, "LocalCluster worker processes of one thread each; 0 = one two-thread worker "
            "per two cores, one embed task per worker at a time."),
    Setting("engine.parse_batch_files", int, 64, "Files per parse task (tasks are coarse: ~2 ms overhead each)."),
    Setting("engine.max_in_flight", int, 4, "Batches in flight per stage; bounds memory on huge trees."),
    Setting("store.segment_max_vectors", int, 65_536,
            "A segment is sealed when it holds this many vectors (bounds the writer's memory: ~100 MB at 384 dims)."),
    Setting("store.compact_segments", int, 16, "Compact automatically when more small (delta) segments than this."),
    Setting("store.compact_dead_ratio", float, 0.3, "Compact automatically when this share of vectors is dead."),
    Setting("store.ann_min_vectors", int, 200_000,
            "A bulk rebuild of at least this many vectors gets HNSW segments (built once, at the end); "
            "smaller indexes and update deltas stay exact (flat)."),
    Setting("search.mode", str, "hybrid", "hybrid (reciprocal-rank fusion), vector or lexical."),
    Setting("search.k", int, 10, "Results returned by default."),
    Setting("search.group", str, "definition",
            "definition (at most one result per definition, other pieces' lines attached), file, or none."),
    Setting("search.reranker", str, "", "A reranker plugin to reorder results by; empty = none (the default)."),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: Any, source: str) -> Any:
    if isinstance(value, setting.type) and not (setting.type is int and isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if setting.type is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(text)
            return setting.type(text)
        except ValueError:
            pass
    if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise UsageError(f"setting {setting.name} from {source}: expected {setting.type.__name__}, got {value!r}",
                     hint="`codeindex config` lists every setting with its type")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from exc


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "codeindex" / "config.toml"


class Config:
    """Resolved settings with the source of each value."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]) -> None:
        self._values = values
        self._sources = sources

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def source(self, name: str) -> str:
        return self._sources[name]

    def items(self) -> list[tuple[Setting, Any, str]]:
        return [(s, self._values[s.name], self._sources[s.name]) for s in SETTINGS]

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "flag") -> Config:
        values, sources = dict(self._values), dict(self._sources)
        for name, value in overrides.items():
            if value is None:
                continue
            setting = BY_NAME.get(name)
            if setting is None:
                raise UsageError(f"unknown setting {name!r}")
            values[name] = _coerce(setting, value, source)
            sources[name] = source
        return Config(values, sources)


def load_config(root: Path | None = None, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    values = {s.name: s.default for s in SETTINGS}
    sources = {s.name: "default" for s in SETTINGS}
    layers: list[tuple[str, dict[str, Any]]] = [(str(user_config_path()), _read_toml(user_config_path()))]
    if root is not None:
        pyproject = _read_toml(root / "pyproject.toml")
        layers.append((f"{root / 'pyproject.toml'} [tool.codeindex]",
                       pyproject.get("tool", {}).get("codeindex", {})))
        layers.append((str(root / ".codeindex.toml"), _read_toml(root / ".codeindex.toml")))
    env_layer = {}
    for key, value in env.items():
        if key.startswith("CODEINDEX_") and "__" in key:
            env_layer[key[len("CODEINDEX_"):].lower().replace("__", ".")] = value
    for source, table in layers:
        for name, value in _flatten(table).items():
            if name in BY_NAME:
                values[name] = _coerce(BY_NAME[name], value, source)
                sources[name] = source
            else:
                raise UsageError(f"unknown setting {name!r} in {source}",
                                 hint="`codeindex config` lists every setting")
    for name, value in env_layer.items():
        if name in BY_NAME:
            values[name] = _coerce(BY_NAME[name], value, "env")
            sources[name] = f"env CODEINDEX_{name.upper().replace('.', '__')}"
    config = Config(values, sources)
    return config.with_overrides(overrides or {})
