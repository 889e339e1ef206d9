"""Embedder backends with the real packaged model: ONNX matches sentence-transformers, identity is
cheap and light, device demands are honoured or refused, hashing is deterministic across processes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from codeindex.embedders import hashing, models
from codeindex.embedders import onnx as onnx_backend
from codeindex.embedders.batching import embed_batched
from codeindex.embedders.runtime import clear_embedders, get_embedder
from codeindex.embedders.sentence_transformers import pick_device
from codeindex.errors import EmbedderError
from codeindex.hookspecs import EmbedderSettings

REPO = Path(__file__).resolve().parents[1]

CHUNKS = [
    "def add(a, b):\n    return a + b",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n"
    "        self.items.append(x)",
    "fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!(\"{:?}\", v);\n}",
    "func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {\n\ts.mux.ServeHTTP(w, r)\n}",
    "public static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }",
    "const debounce = (fn, ms) => { let t; return (...a) => "
    "{ clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; };",
    "#include <stdio.h>\nint main(void) { printf(\"hello\\n\"); return 0; }",
    "SELECT name, count(*) FROM users GROUP BY name HAVING count(*) > 1;",
    "x",
    "",
    "    # TODO: handle the empty case\n    if not items:\n        return None",
    "interface Shape { area(): number; perimeter(): number }",
    "impl<T: Display> fmt::Display for Wrapper<T> { fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result "
    "{ write!(f, \"[{}]\", self.0) } }",
    "async def fetch(session, url):\n    async with session.get(url) as resp:\n"
    "        return await resp.text()",
    "template <typename T> T max_of(const std::vector<T>& v) "
    "{ return *std::max_element(v.begin(), v.end()); }",
    "ÜnÏcødé_names = {'ключ': 'значение', '鍵': '値'}",
    # Longer than the model's 256-token window: truncation must agree between the two backends.
    "\n".join(f"def handler_{i}(request, response):\n    response.status = {200 + i}\n"
              f"    return request.headers.get('X-Trace-{i}')" for i in range(30)),
    " ".join(f"value_{i} = compute(value_{i - 1}, {i}) ;" for i in range(1, 120)),
    "\n".join(f"    case {i}: return \"{chr(65 + i % 26)}\";" for i in range(80)),
    "/* " + "long comment text explaining the algorithm " * 60 + "*/",
]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private user cache dir for this module: exports and hash caches never touch ~/.cache."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        clear_embedders()
        yield cache
        clear_embedders()


def _cuda_in_onnxruntime() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:  # the codeindex[torch] extra is not installed
        return False
    return bool(torch.cuda.is_available())


needs_torch = pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                                 reason="needs the codeindex[torch] extra (torch, sentence-transformers)")


@pytest.mark.slow
@needs_torch
def test_onnx_matches_sentence_transformers(model_cache: Path) -> None:
    settings = EmbedderSettings(device="cpu")
    onnx_embedder = get_embedder("onnx", settings)
    reference = get_embedder("sentence-transformers", settings)
    assert onnx_embedder.model_id == reference.model_id
    assert onnx_embedder.dim == reference.dim == 384
    lengths = onnx_embedder.count_tokens(CHUNKS)
    assert sum(n > 256 for n in lengths) >= 3, "the fixture must exercise truncation"
    got = embed_batched(onnx_embedder, CHUNKS, lengths, budget_tokens=2048)
    want = reference.embed(CHUNKS)
    assert got.shape == want.shape == (len(CHUNKS), 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * want).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines
    # Padding within a batch must not change a row's vector.
    alone = onnx_embedder.embed([CHUNKS[0]])
    assert float((alone[0] * got[0]).sum()) >= 0.99999


@pytest.mark.slow
def test_onnx_export_of_the_default_model_needs_no_torch(tmp_path: Path) -> None:
    """The default install has no torch: the packaged BERT model is written to ONNX from its weights.

    A fresh process with torch, transformers and sentence-transformers made unimportable exports the
    model into an empty cache and embeds; the vectors match the sentence-transformers reference.
    """
    script = textwrap.dedent("""
        import json, sys
        for name in ("torch", "transformers", "sentence_transformers", "safetensors"):
            sys.modules[name] = None  # any import of these now raises ImportError
        from codeindex.embedders.runtime import get_embedder
        from codeindex.hookspecs import EmbedderSettings
        embedder = get_embedder("onnx", EmbedderSettings(device="cpu"))
        vectors = embedder.embed(json.loads(sys.argv[1]))
        meta = embedder._session.get_modelmeta().custom_metadata_map
        print(json.dumps({"vectors": vectors.tolist(), "exporter": meta.get("codeindex_exporter")}))
    """)
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(CHUNKS)], capture_output=True, text=True,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)}, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["exporter"] == "codeindex-graph"
    got = np.asarray(result["vectors"], dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    pytest.importorskip("sentence_transformers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path))
        clear_embedders()
        want = get_embedder("sentence-transformers", EmbedderSettings(device="cpu")).embed(CHUNKS)
        clear_embedders()
    assert float((got * want).sum(axis=1).min()) >= 0.9999


def test_graph_builder_declines_models_it_does_not_cover(tmp_path: Path) -> None:
    from codeindex.embedders import onnx_graph

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert not onnx_graph.supports(tmp_path)
    assert onnx_graph.supports(models.default_model_path())


@pytest.mark.slow
def test_onnx_export_is_cached_by_content_hash(model_cache: Path) -> None:
    settings = EmbedderSettings(device="cpu")
    embedder = get_embedder("onnx", settings)
    info = models.model_info(settings, "onnx")
    exported = model_cache / "codeindex" / "onnx" / info.content_hash / "model.onnx"
    assert exported.is_file()
    assert not [p for p in exported.parent.iterdir() if p.name.endswith(".tmp")]
    assert embedder.device == "cpu"
    before = exported.stat().st_mtime_ns
    clear_embedders()
    again = get_embedder("onnx", settings)
    assert again is not embedder
    assert exported.stat().st_mtime_ns == before, "a warm load must not export again"


def test_identify_and_token_counter_import_no_runtime(model_cache: Path) -> None:
    script = textwrap.dedent("""
        import json, sys
        from codeindex.embedders import runtime
        from codeindex.hookspecs import EmbedderSettings
        s = EmbedderSettings()
        ids = [runtime.identify(b, s) for b in ("onnx", "sentence-transformers", "hashing")]
        counts = runtime.token_counter("onnx", s)(["def f(): pass", "word " * 400])
        heavy = [m for m in ("torch", "onnxruntime", "sentence_transformers", "transformers")
                 if m in sys.modules]
        print(json.dumps({"ids": ids, "counts": counts, "heavy": heavy}))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(model_cache)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          check=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    onnx_id, st_id, hashing_id = result["ids"]
    assert onnx_id == st_id and onnx_id[0].startswith("all-MiniLM-L6-v2@") and onnx_id[1:] == [384, 256]
    assert hashing_id == ["hashing-v1-384", 384, 256]
    short, long = result["counts"]
    assert 4 <= short < 20
    assert long > 400, "counts are taken before truncation"


def test_model_hash_follows_content_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00" * 1000)
    (model / "1_Pooling" / "config.json").write_text("{}")
    first = models.model_content_hash(model)
    assert first == models.model_content_hash(model)
    table = json.loads((tmp_path / "cache" / "codeindex" / "model-hashes.json").read_text())
    assert table[str(model.resolve())]["hash"] == first
    (model / "weights.bin").write_bytes(b"\x01" + b"\x00" * 999)  # same size, new bytes and mtime
    os.utime(model / "weights.bin", ns=(1, 1))
    second = models.model_content_hash(model)
    assert second != first
    (model / "weights.bin").rename(model / "weights2.bin")  # names count too
    assert models.model_content_hash(model) not in (first, second)


def test_onnx_cuda_demand_without_gpu_names_backend(model_cache: Path) -> None:
    if _cuda_in_onnxruntime():
        pytest.skip("onnxruntime has a CUDA provider here; the refusal needs a CPU-only install")
    with pytest.raises(EmbedderError, match=r"^onnx: .*cuda"):
        onnx_backend.open_session(Path("unused.onnx"), EmbedderSettings(device="cuda"))


def test_sentence_transformers_device_rules() -> None:
    with pytest.raises(EmbedderError, match=r"^sentence-transformers: .*cuda"):
        pick_device(EmbedderSettings(device="cuda"), cuda_available=False, cuda_count=0)
    with pytest.raises(EmbedderError, match="cuda:3"):
        pick_device(EmbedderSettings(device="cuda:3"), cuda_available=True, cuda_count=1)
    assert pick_device(EmbedderSettings(device="auto"), cuda_available=False, cuda_count=0) == "cpu"
    assert pick_device(EmbedderSettings(device="auto"), cuda_available=True, cuda_count=1) == "cuda:0"
    assert pick_device(EmbedderSettings(device="cpu"), cuda_available=True, cuda_count=1) == "cpu"
    with pytest.raises(EmbedderError, match="unknown device"):
        pick_device(EmbedderSettings(device="tpu"), cuda_available=True, cuda_count=1)


@pytest.mark.slow
@needs_torch
def test_sentence_transformers_cuda_demand_without_gpu(model_cache: Path) -> None:
    if _torch_cuda():
        pytest.skip("torch sees a CUDA GPU here")
    with pytest.raises(EmbedderError, match=r"^sentence-transformers: .*cuda"):
        get_embedder("sentence-transformers", EmbedderSettings(device="cuda"))


def test_hashing_refuses_cuda() -> None:
    with pytest.raises(EmbedderError, match=r"^hashing: "):
        hashing.create(EmbedderSettings(device="cuda"))


def test_hashing_vectors_are_deterministic_across_processes() -> None:
    texts = ["def parseHTTPResponse(raw_bytes): return HttpResponse(raw_bytes)", "x = 1", ""]
    here = hashing.HashingEmbedder().embed(texts)
    script = ("import sys, json; from codeindex.embedders.hashing import HashingEmbedder; "
              "print(json.dumps(HashingEmbedder().embed(json.loads(sys.argv[1])).tolist()))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(texts)], env=env, capture_output=True,
                          text=True, check=True, timeout=60)
    there = np.array(json.loads(proc.stdout), dtype=np.float32)
    np.testing.assert_array_equal(here, there)


def test_hashing_vectors_are_lexical_and_unit_length() -> None:
    embedder = hashing.HashingEmbedder()
    a, b, c, empty = embedder.embed([
        "def parse_http_response(raw): return decode(raw)",
        "response = parseHttpResponse(payload)",
        "SELECT total FROM invoices WHERE paid = 0",
        "",
    ])
    np.testing.assert_allclose([np.linalg.norm(a), np.linalg.norm(b), np.linalg.norm(c)], 1.0, rtol=1e-5)
    assert float(a @ b) > float(a @ c) + 0.2, "shared identifier parts must bring vectors together"
    assert not empty.any()
    assert hashing.code_tokens("parseHTTPResponse_v2") == [
        "parsehttpresponse_v2", "parse", "http", "response", "v", "2"]


@pytest.mark.gpu
@pytest.mark.slow
def test_onnx_auto_uses_gpu_and_matches_cpu(model_cache: Path) -> None:
    if not _cuda_in_onnxruntime():
        pytest.skip("no CUDA provider in onnxruntime (install onnxruntime-gpu on a GPU machine)")
    gpu = get_embedder("onnx", EmbedderSettings(device="auto"))
    assert gpu.device.startswith("cuda")
    cpu = get_embedder("onnx", EmbedderSettings(device="cpu"))
    assert float((gpu.embed(CHUNKS) * cpu.embed(CHUNKS)).sum(axis=1).min()) >= 0.999


@pytest.mark.gpu
@pytest.mark.slow
def test_sentence_transformers_fp16_on_gpu(model_cache: Path) -> None:
    if not _torch_cuda():
        pytest.skip("torch sees no CUDA GPU")
    half = get_embedder("sentence-transformers", EmbedderSettings(device="cuda", fp16=True))
    full = get_embedder("sentence-transformers", EmbedderSettings(device="cpu"))
    assert half.device.startswith("cuda")
    assert float((half.embed(CHUNKS) * full.embed(CHUNKS)).sum(axis=1).min()) >= 0.999
