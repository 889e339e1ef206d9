"""The ``onnx`` embedder backend (the default): ONNX Runtime over an exported sentence-transformers model.

On first use the model is converted once (pooling and L2 normalisation inside the graph, so the
session returns finished vectors) and cached at
``$XDG_CACHE_HOME/codeindex/onnx/<model content hash>/model.onnx``. A BERT-family model with
safetensors weights, the default all-MiniLM-L6-v2 among them, is written directly from its weights
(``onnx_graph.py``): no torch, so the default install does without torch and sentence-transformers
(the ``codeindex[torch]`` extra). Other models go through torch's exporter, which needs that extra.
Every later load needs only onnxruntime and tokenizers: 0.2 s to import instead of 5-9 s for torch,
and ~1.5x the throughput per core on MiniLM. The file is written to a temp name and renamed, so
processes exporting at the same time each produce a whole file and the last rename wins.

Device rules (shared by all backends): ``auto`` uses CUDA when onnxruntime-gpu sees a GPU, else the
CPU, and says which in ``embedder.device``; ``cpu``/``cuda`` are demands, and a demand that cannot be
met is an ``EmbedderError`` naming the backend.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import codeindex
from codeindex.embedders import devices, model_backend, models, tokens
from codeindex.errors import EmbedderError
from codeindex.fsio import fsync_file, rename_durably
from codeindex.hookspecs import EmbedderBackend, EmbedderSettings

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("codeindex.embedders.onnx")

BACKEND = "onnx"
EXPORT_FORMAT = "1"
"""Bumped whenever the exported graph changes; a cached file of another format is re-exported."""
OPSET = 17
_SUPPORTED_POOLING = ("mean", "cls", "max")
_export_lock = threading.Lock()


def onnx_cache_path(info: models.ModelInfo) -> Path:
    return models.cache_dir() / "onnx" / info.content_hash / "model.onnx"


def _check_exportable(info: models.ModelInfo) -> None:
    unsupported = [m for m in info.modules if m not in ("Transformer", "Pooling", "Normalize")]
    starts_right = bool(info.modules) and info.modules[0] == "Transformer"
    if unsupported or info.pooling not in _SUPPORTED_POOLING or not starts_right:
        raise EmbedderError(
            f"{BACKEND}: cannot export {info.name} "
            f"(modules {', '.join(info.modules)}, pooling {info.pooling})",
            hint="use `--embedder sentence-transformers` for this model")


def export_onnx(info: models.ModelInfo, out: Path) -> None:
    """Write the transformer + pooling + L2 normalisation of ``info`` to ``out`` (atomically).

    BERT models with safetensors weights are written from the weights (``onnx_graph``, ~4 s for MiniLM,
    no torch); any other model is exported with torch and sentence-transformers (the ``codeindex[torch]``
    extra).
    """
    _check_exportable(info)
    import onnx

    from codeindex.embedders import onnx_graph

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".onnx.tmp", dir=out.parent)
    os.close(fd)
    try:
        if onnx_graph.supports(info.path):
            model = onnx_graph.build_model(info.path, info.pooling, OPSET)
            exporter = "codeindex-graph"
        else:
            _torch_export(info, Path(tmp))
            model = onnx.load(tmp)
            exporter = "torch"
        for key, value in {"codeindex_export_format": EXPORT_FORMAT, "codeindex_model_id": info.model_id,
                           "codeindex_dim": str(info.dim), "codeindex_exporter": exporter}.items():
            prop = model.metadata_props.add()
            prop.key, prop.value = key, value
        onnx.save(model, tmp)
        fsync_file(Path(tmp))
        rename_durably(Path(tmp), out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("exported %s to %s (%s)", info.model_id, out, exporter)


def _torch_export(info: models.ModelInfo, tmp: Path) -> None:
    """torch's ONNX exporter over the sentence-transformers pipeline, for models ``onnx_graph`` does not write."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory never needs the network
    import inspect

    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise EmbedderError(f"{BACKEND}: converting {info.name} to ONNX needs torch and sentence-transformers "
                            f"(codeindex writes BERT models with safetensors weights itself, not this one): {exc}",
                            hint="pip install 'codeindex[torch]' (torch first: see the README)") from exc

    hf_logging.disable_progress_bar()  # the library never prints

    st = SentenceTransformer(str(info.path), device="cpu")
    transformer: Any = st[0].auto_model
    transformer.eval()
    takes_token_types = "token_type_ids" in inspect.signature(transformer.forward).parameters
    pooling = info.pooling

    class Pooled(torch.nn.Module):
        """The whole sentence-transformers pipeline as one graph: ids and mask in, unit vectors out."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            kwargs = {"token_type_ids": torch.zeros_like(input_ids)} if takes_token_types else {}
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      **kwargs).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            if pooling == "cls":
                pooled = hidden[:, 0]
            elif pooling == "max":
                pooled = (hidden + (mask - 1.0) * 1e9).max(dim=1).values
            else:
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    sample = st.tokenizer(["def f(x): return x", "a"], padding=True, return_tensors="pt")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer chatter
        torch.onnx.export(
            Pooled().eval(), (sample["input_ids"], sample["attention_mask"]), str(tmp),
            input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "sentence_embedding": {0: "batch"}},
            opset_version=OPSET, dynamo=False)


def _import_ort() -> Any:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    disable = getattr(ort, "disable_telemetry_events", None)
    if callable(disable):
        disable()
    return ort


def _session_options(ort: Any, threads: int) -> Any:
    options = ort.SessionOptions()
    # Dask workers start with OMP_NUM_THREADS=1; the thread count must be explicit.
    options.intra_op_num_threads = threads if threads > 0 else devices.available_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def open_session(model_file: Path, settings: EmbedderSettings) -> tuple[Any, str]:
    """An ``InferenceSession`` on the device ``settings.device`` asks for, and that device's name."""
    kind, index = devices.parse_device(settings.device, BACKEND)
    ort = _import_ort()
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if kind == "cuda" and not has_cuda:
        raise EmbedderError(f"{BACKEND}: device 'cuda' requested but onnxruntime has no CUDA provider",
                            hint="install onnxruntime-gpu (pip install 'codeindex[gpu]'), or use device cpu")
    providers: list[Any] = ["CPUExecutionProvider"]
    if kind == "cuda" or (kind == "auto" and has_cuda):
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
    options = _session_options(ort, settings.threads)
    try:
        session = ort.InferenceSession(str(model_file), sess_options=options, providers=providers)
    except Exception as exc:
        if kind == "cuda":
            raise EmbedderError(f"{BACKEND}: cannot start a CUDA session: {exc}") from exc
        if len(providers) == 1:
            raise EmbedderError(f"{BACKEND}: cannot load {model_file}: {exc}") from exc
        log.info("onnx: CUDA session failed (%s); using the CPU", exc)
        session = ort.InferenceSession(str(model_file), sess_options=options,
                                       providers=["CPUExecutionProvider"])
    on_gpu = "CUDAExecutionProvider" in session.get_providers()
    if kind == "cuda" and not on_gpu:
        raise EmbedderError(f"{BACKEND}: device 'cuda' requested but onnxruntime found no usable GPU",
                            hint="check `nvidia-smi` and the CUDA/cuDNN versions onnxruntime-gpu needs")
    return session, (f"cuda:{index}" if on_gpu else "cpu")


def _export_format(session: Any) -> str:
    return str(session.get_modelmeta().custom_metadata_map.get("codeindex_export_format", ""))


def load_session(info: models.ModelInfo, settings: EmbedderSettings) -> tuple[Any, str]:
    """Open the cached export of ``info``, exporting it first when missing or of another format.

    The format check reads the session's own metadata, so a warm load imports neither torch nor onnx.
    """
    path = onnx_cache_path(info)
    with _export_lock:
        if not path.exists():
            export_onnx(info, path)
        session, device = open_session(path, settings)
        if _export_format(session) != EXPORT_FORMAT:
            log.info("onnx: cached export %s is of another format; exporting again", path)
            export_onnx(info, path)
            session, device = open_session(path, settings)
    return session, device


class OnnxEmbedder:
    """A loaded ONNX Runtime session plus the model's tokenizer. Create with :func:`create`."""

    backend = BACKEND

    def __init__(self, info: models.ModelInfo, session: Any, device: str) -> None:
        self.info = info
        self.model_id = info.model_id
        self.dim = info.dim
        self.max_tokens = info.max_seq_length
        self.device = device
        self._session = session
        self._tokenizer = tokens.load_tokenizer(info.path, info.max_seq_length)
        self._count = tokens.TokenCounter(info.path)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._count(texts)

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask`` (int64): truncated at max_tokens, padded to the longest."""
        import numpy as np

        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Vectors for already tokenized rows (the bare session call)."""
        import numpy as np

        (vectors,) = self._session.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(vectors, dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.run(*self.tokenize(texts))

    def __repr__(self) -> str:
        return f"OnnxEmbedder({self.model_id!r}, device={self.device!r})"


def create(settings: EmbedderSettings) -> OnnxEmbedder:
    """Load (exporting once if needed) the configured model in ONNX Runtime."""
    info = models.model_info(settings, BACKEND)
    _check_exportable(info)
    session, device = load_session(info, settings)
    log.info("onnx: %s on %s", info.model_id, device)
    return OnnxEmbedder(info, session, device)


def gpu_usable(settings: EmbedderSettings) -> bool:
    """Whether a session for ``settings`` would ask for CUDA: onnxruntime has its CUDA provider (the
    ``onnxruntime-gpu`` build) and the device is not ``cpu``. Imports onnxruntime (~0.2 s)."""
    kind, _ = devices.parse_device(settings.device, BACKEND)
    return kind != "cpu" and "CUDAExecutionProvider" in _import_ort().get_available_providers()


@codeindex.hookimpl
def codeindex_embedders() -> list[EmbedderBackend]:
    return [model_backend.model_backend(
        BACKEND, "ONNX Runtime over the sentence-transformers model, exported once and cached (default)", create,
        gpu_usable)]
