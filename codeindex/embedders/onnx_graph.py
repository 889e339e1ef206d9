"""Build the ONNX graph of a BERT-family sentence-transformers model from its weights, without torch.

The default model (all-MiniLM-L6-v2) is a plain BERT encoder with mean pooling and L2 normalisation.
Its graph is small enough to write down with ``onnx.helper``: embeddings (word + position + token
type 0) and a LayerNorm, then per layer self-attention (Q, K, V, scaled dot product with the padding
mask, output projection, residual, LayerNorm) and the feed-forward block (exact erf GELU, residual,
LayerNorm), then the pooling of the model's ``1_Pooling`` config and the normalisation. The weights
come straight from ``model.safetensors`` (its header is JSON, its tensors raw little-endian arrays),
so no torch, transformers or safetensors package is needed: the default install can leave them out
(they are the ``codeindex[torch]`` extra). The vectors match the sentence-transformers reference to
float32 rounding (``tests/test_embedders.py``).

Models this builder does not cover (other architectures, ``pytorch_model.bin`` weights) go through
the torch exporter in ``onnx.py`` when torch is installed.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

SUPPORTED_MODEL_TYPES = ("bert",)
"""``model_type`` values of config.json this builder handles (same graph: absolute positions)."""
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


class UnsupportedModel(ValueError):
    """The model is not one this builder can write (the caller falls back to the torch exporter)."""


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as a float32/int numpy array (BF16 widened to float32)."""
    with path.open("rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(header_len))
        data = fh.read()
    out: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        raw = data[start:end]
        if spec["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif spec["dtype"] in _DTYPES:
            array = np.frombuffer(raw, dtype=np.dtype(_DTYPES[spec["dtype"]]).newbyteorder("<"))
        else:
            raise UnsupportedModel(f"tensor {name} has dtype {spec['dtype']}")
        out[name] = array.reshape(spec["shape"])
    return out


def supports(model_dir: Path) -> bool:
    """Whether ``build_model`` can write this model (a BERT config and safetensors weights)."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (config.get("model_type") in SUPPORTED_MODEL_TYPES
            and config.get("position_embedding_type", "absolute") == "absolute"
            and config.get("hidden_act", "gelu") == "gelu"
            and (model_dir / "model.safetensors").is_file())


class _Graph:
    """A small helper over ``onnx.helper``: named initializers and nodes, unique intermediate names."""

    def __init__(self) -> None:
        import onnx

        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        """``x @ weight.T + bias`` (a torch ``Linear``)."""
        w = self.const(f"{name}.weight_t", weight.T.astype(np.float32))
        b = self.const(f"{name}.bias", bias.astype(np.float32))
        return self.op("Add", self.op("MatMul", x, w), b)

    def layer_norm(self, x: str, weights: dict[str, np.ndarray], name: str, eps: float) -> str:
        g = self.const(f"{name}.weight", weights[f"{name}.weight"].astype(np.float32))
        b = self.const(f"{name}.bias", weights[f"{name}.bias"].astype(np.float32))
        return self.op("LayerNormalization", x, g, b, axis=-1, epsilon=eps)


def _prefix(weights: dict[str, np.ndarray]) -> str:
    for prefix in ("", "bert.", "model."):
        if f"{prefix}embeddings.word_embeddings.weight" in weights:
            return prefix
    raise UnsupportedModel("no embeddings.word_embeddings.weight tensor")


def build_model(model_dir: Path, pooling: str, opset: int) -> onnx.ModelProto:
    """The whole sentence-transformers pipeline of ``model_dir`` as one ONNX model: ``input_ids`` and
    ``attention_mask`` (int64, batch x sequence) in, ``sentence_embedding`` (unit vectors) out."""
    import onnx

    if not supports(model_dir):
        raise UnsupportedModel(f"{model_dir} is not a BERT model with safetensors weights")
    config = json.loads((model_dir / "config.json").read_text())
    weights = read_safetensors(model_dir / "model.safetensors")
    p = _prefix(weights)
    local = {k[len(p):]: v for k, v in weights.items() if k.startswith(p)}
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    g = _Graph()

    def w(name: str) -> np.ndarray:
        return local[name]

    # embeddings: word + position + token type 0 (codeindex never sends token type ids), then LayerNorm
    words = g.op("Gather", g.const("word_embeddings", w("embeddings.word_embeddings.weight").astype(np.float32)),
                 "input_ids")
    seq_len = g.op("Shape", "input_ids", start=1, end=2)  # [S]
    pos = g.op("Slice", g.const("position_embeddings", w("embeddings.position_embeddings.weight").astype(np.float32)),
               g.const("zero_1d", np.array([0], dtype=np.int64)), seq_len,
               g.const("axis_0", np.array([0], dtype=np.int64)))  # the first S rows: positions 0..S-1
    token_type = g.const("token_type_0", w("embeddings.token_type_embeddings.weight")[0].astype(np.float32))
    x = g.op("Add", g.op("Add", words, pos), token_type)
    x = g.layer_norm(x, local, "embeddings.LayerNorm", eps)

    # padding mask as an additive bias on the attention scores: 0 where attended, the float32 minimum elsewhere
    mask = g.op("Cast", "attention_mask", to=onnx.TensorProto.FLOAT)
    one = g.const("one_f32", np.array(1.0, dtype=np.float32))
    bias = g.op("Mul", g.op("Sub", one, mask), g.const("mask_min", np.array(np.finfo(np.float32).min, np.float32)))
    bias = g.op("Unsqueeze", bias, g.const("axes_1_2", np.array([1, 2], dtype=np.int64)))  # B x 1 x 1 x S
    split_shape = g.const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = g.const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("attention_scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = g.const("half", np.array(0.5, dtype=np.float32))

    for i in range(int(config["num_hidden_layers"])):
        base = f"encoder.layer.{i}"

        def heads_of(t: str, perm: list[int]) -> str:
            return g.op("Transpose", g.op("Reshape", t, split_shape), perm=perm)

        q = heads_of(g.linear(x, w(f"{base}.attention.self.query.weight"), w(f"{base}.attention.self.query.bias"),
                              f"{base}.q"), [0, 2, 1, 3])
        k = heads_of(g.linear(x, w(f"{base}.attention.self.key.weight"), w(f"{base}.attention.self.key.bias"),
                              f"{base}.k"), [0, 2, 3, 1])
        v = heads_of(g.linear(x, w(f"{base}.attention.self.value.weight"), w(f"{base}.attention.self.value.bias"),
                              f"{base}.v"), [0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge_shape)
        attended = g.linear(context, w(f"{base}.attention.output.dense.weight"),
                            w(f"{base}.attention.output.dense.bias"), f"{base}.attention.output")
        x1 = g.layer_norm(g.op("Add", attended, x), local, f"{base}.attention.output.LayerNorm", eps)
        inner = g.linear(x1, w(f"{base}.intermediate.dense.weight"), w(f"{base}.intermediate.dense.bias"),
                         f"{base}.intermediate")
        gelu = g.op("Mul", g.op("Mul", inner, half), g.op("Add", one, g.op("Erf", g.op("Div", inner, sqrt2))))
        out = g.linear(gelu, w(f"{base}.output.dense.weight"), w(f"{base}.output.dense.bias"), f"{base}.output")
        x = g.layer_norm(g.op("Add", out, x1), local, f"{base}.output.LayerNorm", eps)

    pooled = _pool(g, x, mask, pooling)
    norm = g.op("Max", g.op("ReduceL2", pooled, axes=[1], keepdims=1),
                g.const("norm_eps", np.array(1e-12, dtype=np.float32)))
    g.nodes.append(onnx.helper.make_node("Div", [pooled, norm], ["sentence_embedding"]))
    graph = onnx.helper.make_graph(
        g.nodes, "sentence_transformer",
        [onnx.helper.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, ["batch", "sequence"]),
         onnx.helper.make_tensor_value_info("attention_mask", onnx.TensorProto.INT64, ["batch", "sequence"])],
        [onnx.helper.make_tensor_value_info("sentence_embedding", onnx.TensorProto.FLOAT, ["batch", hidden])],
        g.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="codeindex")
    model.ir_version = min(model.ir_version, 8)  # readable by every onnxruntime that supports the opset
    onnx.checker.check_model(model)
    return model


def _pool(g: _Graph, x: str, mask: str, pooling: str) -> str:
    """Mean over attended tokens, the first (CLS) token, or the max over attended tokens."""
    if pooling == "cls":
        return g.op("Gather", x, g.const("first_token", np.array(0, dtype=np.int64)), axis=1)
    mask3 = g.op("Unsqueeze", mask, g.const("axes_last", np.array([-1], dtype=np.int64)))  # B x S x 1
    axes = g.const("axes_tokens", np.array([1], dtype=np.int64))
    if pooling == "max":
        shifted = g.op("Add", x, g.op("Mul", g.op("Sub", mask3, g.const("one_pool", np.array(1.0, np.float32))),
                                      g.const("big", np.array(1e9, dtype=np.float32))))
        return g.op("ReduceMax", shifted, axes=[1], keepdims=0)
    total = g.op("ReduceSum", g.op("Mul", x, mask3), axes, keepdims=0)
    count = g.op("Max", g.op("ReduceSum", mask3, axes, keepdims=0), g.const("count_eps", np.array(1e-9, np.float32)))
    return g.op("Div", total, count)
