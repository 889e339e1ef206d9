"""The Dask engine: deterministic keys, GPU annotations, fail-fast resources, real clusters, cancellation."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from codeindex import Index, plugins
from codeindex.engine.graph import embed_key, embed_task, parse_key, parse_task
from codeindex.engine.tasks import EmbedContext, ParseItem
from codeindex.errors import EmbedderError, UsageError
from codeindex.hookspecs import EmbedderSettings

CTX = EmbedContext("hashing", EmbedderSettings(), 256, "hashing|hashing-v1-384")
ITEMS = [ParseItem("a.py", "python", "treesitter", "h1", b"def a():\n    return 1\n"),
         ParseItem("b.py", "python", "treesitter", "h2", b"def b():\n    return 2\n")]


def _chunk_state(index_dir: Path) -> list[tuple]:
    con = duckdb.connect(str(index_dir / "meta.duckdb"), read_only=True)
    try:
        return con.execute("SELECT c.path, c.start_line, c.end_line, c.symbol, c.text, v.vec_key FROM chunks c "
                           "JOIN vectors v USING (vec_id) ORDER BY ALL").fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------- keys


def test_task_keys_are_stable_across_processes() -> None:
    code = ("from tests.test_engine import CTX, ITEMS; from codeindex.engine.graph import parse_key, embed_key; "
            "print(parse_key(ITEMS, CTX)); print(embed_key(['k1', 'k2'], CTX))")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env={**os.environ, "PYTHONHASHSEED": "123"}).stdout.split()
    assert out == [parse_key(ITEMS, CTX), embed_key(["k1", "k2"], CTX)]
    assert parse_task(ITEMS, CTX).key == parse_key(ITEMS, CTX)


def test_task_keys_follow_content() -> None:
    changed = [ITEMS[0], ParseItem("b.py", "python", "treesitter", "h3", b"def b():\n    return 3\n")]
    assert parse_key(changed, CTX) != parse_key(ITEMS, CTX)
    assert embed_key(["k1"], CTX) != embed_key(["k2"], CTX)
    other_model = EmbedContext("hashing", EmbedderSettings(), 256, "hashing|other")
    assert parse_key(ITEMS, other_model) != parse_key(ITEMS, CTX)


def test_gpu_annotation_is_on_the_embed_layer() -> None:
    task = embed_task(["k"], ["text"], [3], CTX, gpu=True)
    layers = task.__dask_graph__().layers
    assert layers[task.key].annotations == {"resources": {"GPU": 1}}
    assert not embed_task(["k"], ["text"], [3], CTX, gpu=False).__dask_graph__().layers[task.key].annotations


def test_embed_resource_annotation_and_gpu_precedence() -> None:
    task = embed_task(["k"], ["text"], [3], CTX, gpu=False, resource="EMBED")
    assert task.__dask_graph__().layers[task.key].annotations == {"resources": {"EMBED": 1}}
    task = embed_task(["k"], ["text"], [3], CTX, gpu=True, resource="EMBED")
    assert task.__dask_graph__().layers[task.key].annotations == {"resources": {"GPU": 1}}


def test_local_cluster_shape() -> None:
    from codeindex.engine.executor import local_cluster_shape

    assert local_cluster_shape(1) == (1, 1)
    assert local_cluster_shape(2) == (1, 2)
    assert local_cluster_shape(3) == (1, 2)
    assert local_cluster_shape(16) == (8, 2)
    assert local_cluster_shape(16, workers=3) == (3, 1)  # engine.workers: that many one-thread workers


# ---------------------------------------------------------------------------------------------- clusters


@pytest.mark.cluster
def test_annotated_tasks_land_on_the_gpu_worker_after_optimisation() -> None:
    """Annotations survive the graph optimisation ``client.compute`` applies; CI has no GPU, so the
    "GPU" is a resource label on one of two local workers."""
    from distributed import Nanny, Scheduler, SpecCluster

    from codeindex.engine.executor import DaskExecutor

    workers = {"gpu-0": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1}, "host": "127.0.0.1"}},
               "cpu-0": {"cls": Nanny, "options": {"nthreads": 1, "host": "127.0.0.1"}}}
    cluster = SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": {
        "dashboard": False, "dashboard_address": "127.0.0.1:0", "host": "127.0.0.1"}}, silence_logs=logging.ERROR)
    try:
        executor = DaskExecutor(cluster.scheduler_address)
        assert executor.has_gpu
        texts = [f"def f{i}(): return {i}" for i in range(12)]
        futures = [executor.submit(embed_task([f"k{i}"], [t], [8], CTX, gpu=True)) for i, t in enumerate(texts)]
        for fut in futures:
            assert fut.result().vectors.shape == (1, 384)
        gpu_addr = next(a for a, w in executor.client.scheduler_info()["workers"].items() if w["name"] == "gpu-0")
        holders = executor.client.who_has(futures)
        assert all(set(addrs) == {gpu_addr} for addrs in holders.values()), holders
        restrictions = executor.client.run_on_scheduler(
            lambda dask_scheduler: {k: ts.resource_restrictions for k, ts in dask_scheduler.tasks.items()})
        assert all(restrictions[f.key] == {"GPU": 1} for f in futures)
        executor.client.close()
    finally:
        cluster.close()


@pytest.mark.cluster
def test_a_resource_no_worker_offers_fails_fast() -> None:
    from codeindex.engine.executor import DaskExecutor

    executor = DaskExecutor(None, n_workers=1)
    try:
        assert not executor.has_gpu
        assert executor.embed_resource == "EMBED" and executor.resources == [{"EMBED": 1}]
        start = time.monotonic()
        with pytest.raises(UsageError, match="need resources GPU=1 but no worker"):
            executor.submit(embed_task(["k"], ["x"], [3], CTX, gpu=True))
        assert time.monotonic() - start < 5
    finally:
        executor.close()


def _backend(gpu_usable: bool, asked: list[str]) -> plugins.hookspecs.EmbedderBackend:
    def answer(settings: EmbedderSettings) -> bool:
        asked.append(settings.device)
        return gpu_usable

    hashing = plugins.get_plugin_manager().embedder_backend("hashing")
    return dataclasses.replace(hashing, gpu_usable=answer)


def test_usable_gpu_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """GPU workers only where the host lists GPUs, the device allows one and the backend would use it."""
    from codeindex.engine import executor

    asked: list[str] = []
    monkeypatch.setattr(executor, "local_gpu_count", lambda: 2)
    assert executor.usable_gpu_devices(_backend(True, asked), EmbedderSettings(device="auto")) == [0, 1]
    assert executor.usable_gpu_devices(_backend(True, asked), EmbedderSettings(device="cuda")) == [0, 1]
    assert executor.usable_gpu_devices(_backend(True, asked), EmbedderSettings(device="cuda:1")) == [1]
    assert executor.usable_gpu_devices(_backend(True, asked), EmbedderSettings(device="cpu")) == []
    assert executor.usable_gpu_devices(_backend(False, asked), EmbedderSettings(device="auto")) == []
    assert asked == ["auto", "cuda", "cuda:1", "auto"]  # not asked for device cpu
    monkeypatch.setattr(executor, "local_gpu_count", lambda: 0)
    assert executor.usable_gpu_devices(_backend(True, asked), EmbedderSettings(device="auto")) == []
    assert len(asked) == 4, "a host without GPUs must not ask the backend (it may import torch)"


def test_built_in_backends_answer_gpu_usable_without_a_gpu() -> None:
    """On a CPU-only install the built-ins say no, so a local cluster keeps its CPU shape."""
    from codeindex.engine.executor import local_gpu_count

    if local_gpu_count():
        pytest.skip("this host has a GPU: the answer depends on its CUDA builds")
    manager = plugins.get_plugin_manager()
    assert not manager.embedder_backend("hashing").gpu_usable(EmbedderSettings())
    assert not manager.embedder_backend("onnx").gpu_usable(EmbedderSettings(device="cpu"))
    onnx_says = manager.embedder_backend("onnx").gpu_usable(EmbedderSettings())
    import onnxruntime

    assert onnx_says == ("CUDAExecutionProvider" in onnxruntime.get_available_providers())


def test_local_worker_settings() -> None:
    from codeindex.engine.executor import SyncExecutor, local_worker_settings

    class Local:
        name = "local"
        n_workers = 2
        has_gpu = True

    cores = len(os.sched_getaffinity(0))
    gpu = local_worker_settings(EmbedderSettings(device="cuda:1"), Local())  # type: ignore[arg-type]
    assert gpu.device == "cuda" and gpu.threads == max(1, cores // 2)
    assert local_worker_settings(EmbedderSettings(threads=3), Local()).threads == 3  # type: ignore[arg-type]
    same = EmbedderSettings(device="cuda:1")
    assert local_worker_settings(same, SyncExecutor()) is same


@pytest.mark.cluster
@pytest.mark.slow
def test_local_gpu_cluster_embeds_on_its_gpu_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The local cluster's GPU shape, run for real on a host without a GPU: the engine is told device 0
    is usable, so it starts gpu-0 plus CPU workers, and every embed batch must run on gpu-0."""
    from codeindex.engine import execute as commit

    root = tmp_path / "tree"
    root.mkdir()
    _python_modules(root, 60)  # many small embed batches: any of them could land on the CPU worker
    shapes: list[list[int]] = []

    def one_gpu(backend, settings) -> list[int]:
        shapes.append([0])
        return [0]

    monkeypatch.setattr(commit, "usable_gpu_devices", one_gpu)
    Index(root, index_dir=tmp_path / "sync").rebuild(scheduler="sync", embedder="hashing")
    index = Index(root, index_dir=tmp_path / "gpu", **{"engine.small_update_files": 0,
                                                        "engine.parse_batch_files": 4, "embedder.batch_tokens": 512})
    report = index.rebuild(scheduler="local", embedder="hashing")
    assert shapes == [[0]], "the local cluster never asked for GPU devices"
    assert report.scheduler == "local"
    by_worker = report.stages["embed_s_by_worker"]
    assert isinstance(by_worker, dict) and set(by_worker) == {"gpu-0"}, by_worker
    assert _chunk_state(tmp_path / "gpu") == _chunk_state(tmp_path / "sync")


def _real_gpu_reason() -> str | None:
    from codeindex.engine.executor import local_gpu_count

    if not local_gpu_count():
        return "no GPU: nvidia-smi lists none (CI never has one)"
    if not plugins.get_plugin_manager().embedder_backend("onnx").gpu_usable(EmbedderSettings()):
        return "GPU present but onnxruntime has no CUDA provider (install onnxruntime-gpu)"
    return None


@pytest.mark.gpu
@pytest.mark.cluster
@pytest.mark.slow
def test_default_rebuild_on_a_gpu_host_embeds_on_the_gpu_worker(scenario, tmp_path: Path) -> None:
    """On a real GPU host the default local cluster gets a GPU worker; embedding runs there, on CUDA,
    and gives the vectors the CPU gives (cosine >= 0.999), for the same chunks."""
    reason = _real_gpu_reason()
    if reason:
        pytest.skip(reason)
    root = scenario("e2e_repo")
    on_cpu = {"embedder.device": "cpu"}
    Index(root, index_dir=tmp_path / "cpu", **on_cpu).rebuild(scheduler="sync")
    report = Index(root, index_dir=tmp_path / "gpu", **{"engine.small_update_files": 0}).rebuild(scheduler="local")
    assert report.stages["devices"] == ["cuda:0"]
    by_worker = report.stages["embed_s_by_worker"]
    assert isinstance(by_worker, dict) and set(by_worker) == {"gpu-0"}, by_worker
    assert _chunk_state(tmp_path / "gpu") == _chunk_state(tmp_path / "cpu")
    # Both indexes searched with the same CPU query vector: any difference comes from the stored vectors.
    for query in ("parse the configuration file", "retry a failed request"):
        hits = [Index(root, index_dir=tmp_path / d, **on_cpu).search(query, k=5, mode="vector") for d in ("cpu", "gpu")]
        assert [(h.path, h.start_line) for h in hits[0]] == [(h.path, h.start_line) for h in hits[1]]
        assert all(abs(a.score - b.score) < 1e-3 for a, b in zip(*hits, strict=True))


@pytest.fixture
def tcp_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
    dask_cli = str(Path(sys.executable).with_name("dask"))
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "error"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    scheduler = subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(sched_file)], **quiet)  # type: ignore[call-overload]
    procs = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([dask_cli, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60"],
                                          **quiet))  # type: ignore[call-overload]
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, procs
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait()


@pytest.mark.cluster
@pytest.mark.slow
def test_existing_cluster_gives_the_same_index_as_sync(tcp_cluster, scenario, tmp_path: Path) -> None:
    address, _ = tcp_cluster
    root = scenario("e2e_repo")
    Index(root, index_dir=tmp_path / "sync").rebuild(scheduler="sync", embedder="hashing")
    report = Index(root, index_dir=tmp_path / "tcp").rebuild(scheduler=address, embedder="hashing")
    assert report.scheduler == address
    assert _chunk_state(tmp_path / "tcp") == _chunk_state(tmp_path / "sync")


def _python_modules(root: Path, n: int) -> None:
    for i in range(n):
        body = "\n".join(f"    value_{j} = {i} * {j} + len('{'x' * (j % 7)}')" for j in range(30))
        (root / f"mod_{i:03d}.py").write_text(f"def function_{i}(x):\n{body}\n    return x\n\n"
                                             f"class Thing{i}:\n    def method(self):\n        return {i}\n")


@pytest.mark.cluster
@pytest.mark.slow
def test_killing_a_worker_mid_run_still_completes(tcp_cluster, tmp_path: Path) -> None:
    address, procs = tcp_cluster
    root = tmp_path / "tree"
    root.mkdir()
    _python_modules(root, 120)
    Index(root, index_dir=tmp_path / "sync").rebuild(scheduler="sync", embedder="hashing")
    killed: list[int] = []

    def progress(event) -> None:
        if event.stage == "parse" and event.done >= 8 and not killed:
            procs[1].send_signal(signal.SIGKILL)  # one of the two worker processes
            killed.append(event.done)

    index = Index(root, index_dir=tmp_path / "tcp", **{"engine.parse_batch_files": 4, "engine.max_in_flight": 1})
    index.rebuild(scheduler=address, embedder="hashing", progress=progress)
    assert killed, "the worker was never killed: the test did not exercise anything"
    assert _chunk_state(tmp_path / "tcp") == _chunk_state(tmp_path / "sync")


# ---------------------------------------------------------------------------------------------- failures


def _default_sigint() -> None:
    """A test runner started in the background inherits SIGINT as *ignored* (shells do that for `cmd &`),
    and Python then installs no KeyboardInterrupt handler: give the child the default, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_the_previous_state(tmp_path: Path, cli, sig: int) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    _python_modules(root, 20)
    assert cli("-q", "rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync").returncode == 0
    before = _chunk_state(root / ".codeindex")
    _python_modules(root, 300)
    # The writer pauses between two batches of the pipeline (after chunks were staged), so the signal
    # lands mid-pipeline however fast this machine is.
    marker = tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, "-m", "codeindex.cli", "update", str(root), "--scheduler", "sync"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CODEINDEX_PAUSE_AT": "between-files:30",
                                 "CODEINDEX_PAUSE_MARKER": str(marker),
                                 "CODEINDEX_ENGINE__PARSE_BATCH_FILES": "8"},
                            preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists() and proc.poll() is None, "the writer never reached the pause point"
        assert any((root / ".codeindex" / "staging").glob("*/chunks-*")), "nothing staged yet: not mid-pipeline"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "previous state" in err and "Traceback" not in err
    assert _chunk_state(root / ".codeindex") == before
    assert not list((root / ".codeindex").glob("staging/*"))
    done = cli("update", str(root), "--json", "--scheduler", "sync")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files_added"] == 280


BOOM = '''
import codeindex
from codeindex.hookspecs import EmbedderBackend

class Boom:
    backend = "boom"; model_id = "boom-1"; dim = 4; max_tokens = 64; device = "cpu"
    def count_tokens(self, texts): return [3] * len(texts)
    def embed(self, texts): raise RuntimeError("the model exploded")

@codeindex.hookimpl
def codeindex_embedders():
    return [EmbedderBackend("boom", "always fails", lambda s: Boom(), lambda s: ("boom-1", 4, 64),
                            lambda s: (lambda texts: [3] * len(texts)))]
'''

RAISING_PARSER = '''
import codeindex
from codeindex.hookspecs import LanguageSpec

class Raising:
    name = "raising"; version = "1"
    def languages(self): return [LanguageSpec("boomlang", extensions=(".boom",))]
    def config_hash(self, language): return "0"
    def chunk(self, source, path, language, budget): raise ValueError("cannot read this dialect")

@codeindex.hookimpl
def codeindex_parsers():
    return [Raising()]
'''


def _with_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str, group: str) -> None:
    from importlib import metadata

    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))
    manager = plugins.build_plugin_manager([metadata.EntryPoint(name, name, group)])
    assert manager.warnings == []
    monkeypatch.setattr(plugins, "_manager", manager)


def test_embedder_failure_aborts_with_the_index_unchanged(scenario, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = scenario("e2e_repo")
    Index(root).rebuild(scheduler="sync", embedder="hashing")
    files_before = sorted(p.name for p in (root / ".codeindex").iterdir())
    state_before = _chunk_state(root / ".codeindex")
    _with_plugin(tmp_path, monkeypatch, "boom_embedder", BOOM, "codeindex.embedders")
    with pytest.raises(EmbedderError, match="boom"):
        Index(root).rebuild(scheduler="sync", embedder="boom")
    assert _chunk_state(root / ".codeindex") == state_before
    assert sorted(p.name for p in (root / ".codeindex").iterdir()) == files_before


def test_parse_error_skips_the_file_and_is_recorded(scenario, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = scenario("e2e_repo")
    (root / "odd.boom").write_text("something only a broken parser reads\n")
    _with_plugin(tmp_path, monkeypatch, "raising_parser", RAISING_PARSER, "codeindex.parsers")
    index = Index(root)
    report = index.rebuild(scheduler="sync", embedder="hashing")
    assert report.skipped.get("parse-error") == 1
    assert report.files_added == 6 and report.chunks_total > 0
    con = duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True)
    try:
        reason = con.execute("SELECT skip_reason FROM files WHERE path = 'odd.boom'").fetchall()[0][0]
    finally:
        con.close()
    assert reason.startswith("parse-error: raising: ValueError: cannot read this dialect")
    # unchanged next time: the skip is remembered, not retried
    assert index.update(scheduler="sync").files_reparsed == 0
