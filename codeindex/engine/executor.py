"""Where graphs run: in-process (``sync``), a ``LocalCluster`` (``local``), or an existing scheduler.

Every executor exposes the same calls (submit a parse batch, submit an embed batch, wait for any of
several futures, close), so the pipeline driver is written once. Dask executors submit the delayed
tasks ``graph.py`` builds; the in-process one calls the same task functions directly, so a one-file
edit never pays for importing dask.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from codeindex import crashpoints
from codeindex.engine.tasks import EmbedContext, ParseItem, embed_texts, parse_batch
from codeindex.errors import EnvironmentProblem, UsageError, os_reason

if TYPE_CHECKING:
    from dask.delayed import Delayed

    from codeindex.hookspecs import EmbedderBackend, EmbedderSettings

log = logging.getLogger("codeindex.engine.executor")

LOOPBACK = "127.0.0.1"
"""A local cluster listens on loopback only: nothing outside this machine can reach its workers."""


NO_HTTP_ROUTES: dict[str, list[str]] = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
"""A local cluster's HTTP servers serve nothing: their routes (``/info`` pages with worker logs and call
stacks, ``/json``) are plain HTTP whatever the comms' security, readable by any local user."""


def cluster_security() -> Any:
    """One-time credentials for a local cluster: TLS with a key and certificate made for this run.

    Loopback is not a boundary between users: any local process can connect to a port on 127.0.0.1,
    and a Dask scheduler or worker runs whatever a connected client sends (``run_on_scheduler``), as
    the user who started the run. With ``distributed.Security.temporary()`` every scheduler, worker
    and client connection is mutual TLS against a self-signed certificate that exists only in this
    process's memory (handed to the workers it spawns), so a client without it is refused at the
    handshake. Cost: one RSA key per run (~0.1 s) and TLS on loopback, next to a cluster start of
    seconds. Needs ``cryptography`` (a dependency of ``distributed[...]``'s TLS and declared by us).
    """
    from distributed.security import Security

    return Security.temporary()


class Executor(Protocol):
    name: str
    n_workers: int  # worker processes (each loads its own model)
    n_slots: int  # tasks that can run at once, over all workers
    has_gpu: bool

    def submit_parse(self, items: Sequence[ParseItem], ctx: EmbedContext) -> Any: ...
    def submit_embed(self, keys: Sequence[str], texts: Sequence[str], lengths: Sequence[int],
                     ctx: EmbedContext) -> Any: ...
    def wait_any(self, futures: Iterable[Any]) -> tuple[set[Any], set[Any]]: ...
    def close(self, *, fast: bool = False) -> None: ...


class SyncExecutor:
    """Runs each task immediately in this process: no overlap, no start-up cost, easy to debug."""

    name = "sync"
    n_workers = 1
    n_slots = 1
    has_gpu = False

    def submit_parse(self, items: Sequence[ParseItem], ctx: EmbedContext) -> cf.Future[Any]:
        return self._run(parse_batch, list(items), ctx)

    def submit_embed(self, keys: Sequence[str], texts: Sequence[str], lengths: Sequence[int],
                     ctx: EmbedContext) -> cf.Future[Any]:
        return self._run(embed_texts, list(texts), list(lengths), ctx)

    @staticmethod
    def _run(fn: Any, *args: Any) -> cf.Future[Any]:
        fut: cf.Future[Any] = cf.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:
            fut.set_exception(exc)
        return fut

    def wait_any(self, futures: Iterable[Any]) -> tuple[set[Any], set[Any]]:
        done, pending = cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)
        return set(done), set(pending)

    def close(self, *, fast: bool = False) -> None:
        pass


def local_gpu_count() -> int:
    """GPUs visible on this host, without importing torch (``nvidia-smi -L``)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def local_cluster_shape(cores: int, workers: int = 0) -> tuple[int, int]:
    """(worker processes, threads per worker) of the default CPU LocalCluster on ``cores`` cores.

    Two threads per worker, and at most one embed task per worker at a time (the ``EMBED`` resource):
    the embed task's runtime session gets the worker's two cores as intra-op threads while the other
    thread parses the next batch. One worker per core with a one-thread session each embedded ~11%
    slower on 2 cores than one two-thread session (small corpus, quiet machine), and every worker
    process loads its own model. ``workers`` (``engine.workers``) overrides: that many one-thread workers.
    """
    if workers > 0:
        return workers, 1
    if cores < 2:
        return 1, 1
    return cores // 2, 2


PARSE_PRIORITY = 1
"""Parse tasks go before embed tasks waiting at the scheduler (which hands a saturated worker only about
as many tasks as it has threads): a first build's lexical side should be searchable within seconds, and
parsing is a few percent of the work. The pipeline also keeps few embed tasks in flight
(``pipeline.EMBEDS_PER_WORKER``), which is what measurably kept parsing from stalling."""


class DaskExecutor:
    """A ``distributed.Client`` over a new LocalCluster or an existing scheduler address."""

    def __init__(self, address: str | None, *, n_workers: int = 0, embed_threads: int = 1,
                 gpu_devices: Sequence[int] = ()) -> None:
        import dask
        from distributed import Client, LocalCluster

        _quiet_distributed()
        self._closed = False
        self._cluster: Any = None
        self.client: Any = None
        self.embed_resource: str | None = None
        if address is None:
            self.name = "local"
            cores = max(1, len(os.sched_getaffinity(0)))
            env = {"OMP_NUM_THREADS": str(embed_threads), "ORT_DISABLE_TELEMETRY": "1"}
            try:
                with signals_deferred():  # a Ctrl-C now lands after the start, where it can be handled
                    crashpoints.hit("cluster-start")
                    with dask.config.set(NO_HTTP_ROUTES):
                        if gpu_devices:
                            self._cluster = gpu_spec_cluster(gpu_devices, n_workers or cores, env)
                        else:
                            from codeindex.engine.graph import EMBED_RESOURCE

                            workers, threads = local_cluster_shape(cores, n_workers)
                            self.embed_resource = EMBED_RESOURCE
                            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=threads,
                                                         processes=True, dashboard_address=f"{LOOPBACK}:0",
                                                         env=env, host=LOOPBACK, resources={EMBED_RESOURCE: 1},
                                                         security=cluster_security(), silence_logs=logging.ERROR)
                    self.client = Client(self._cluster)
            except BaseException:
                self.close()
                raise
        else:
            self.name = address
            try:
                self.client = Client(address, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise EnvironmentProblem(f"cannot reach Dask scheduler {address}: {exc}",
                                         hint=SCHEDULER_HINT) from exc
        info = self.client.scheduler_info()
        workers_info = info.get("workers", {})
        self.n_workers = max(1, len(workers_info))
        self.n_slots = max(1, sum(int(w.get("nthreads", 1)) for w in workers_info.values()))
        self.resources = [dict(w.get("resources", {})) for w in workers_info.values()]
        self.has_gpu = any(r.get("GPU", 0) for r in self.resources)

    def submit_parse(self, items: Sequence[ParseItem], ctx: EmbedContext) -> Any:
        from codeindex.engine.graph import parse_task

        return self.submit(parse_task(items, ctx), priority=PARSE_PRIORITY)

    def submit_embed(self, keys: Sequence[str], texts: Sequence[str], lengths: Sequence[int],
                     ctx: EmbedContext) -> Any:
        from codeindex.engine.graph import embed_task

        return self.submit(embed_task(keys, texts, lengths, ctx, gpu=self.has_gpu, resource=self.embed_resource))

    def submit(self, task: Delayed, *, priority: int = 0) -> Any:
        self._check_resources(task)
        return self.client.compute(task, priority=priority)

    def _check_resources(self, task: Delayed) -> None:
        """Fail fast: a task annotated with a resource no worker offers would pend forever, silently."""
        graph = task.__dask_graph__()
        for layer in getattr(graph, "layers", {}).values():
            wanted = (getattr(layer, "annotations", None) or {}).get("resources") or {}
            if wanted and not any(all(r.get(k, 0) >= v for k, v in wanted.items()) for r in self.resources):
                need = ", ".join(f"{k}={v}" for k, v in wanted.items())
                raise UsageError(f"tasks need resources {need} but no worker of {self.name} offers them",
                                 hint="start workers with --resources, e.g. `dask worker ADDR --resources GPU=1`")

    def wait_any(self, futures: Iterable[Any]) -> tuple[set[Any], set[Any]]:
        from distributed import wait

        result = wait(list(futures), return_when="FIRST_COMPLETED")
        return set(result.done), set(result.not_done)

    def close(self, *, fast: bool = False) -> None:
        """Shut the client (and a cluster we started) down; safe to call more than once. A signal that
        arrives meanwhile is handled once the workers are gone (``signals_deferred``).

        ``fast`` (after Ctrl-C): the worker processes of a cluster we started are killed rather than
        asked to finish their running task. A graceful close waits for the embed batch in flight
        (seconds with the default model); this takes ~0.1 s. The kill comes a moment after the close
        has begun, so the nannies see their workers die while closing and do not restart them.
        """
        if self._closed:
            return
        self._closed = True
        with signals_deferred():
            if fast and self._cluster is not None:
                pids = [pid for pid in (getattr(w, "pid", None) for w in self._cluster.workers.values()) if pid]
                threading.Timer(0.05, _kill_all, [pids]).start()
            try:
                if self.client is not None and fast:
                    self.client.close(timeout=2)
                elif self.client is not None:
                    self.client.close()
            finally:
                if self._cluster is not None:
                    self._cluster.close(timeout=2 if fast else None)


def _kill_all(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGHUP)
"""Blocked while a local cluster starts or stops: worker processes inherit the mask, so a terminal's
Ctrl-C (sent to the whole process group) reaches only this process, which stops the workers itself."""


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold interrupts back while a local cluster starts or stops, then deliver them.

    A ``KeyboardInterrupt`` raised inside ``LocalCluster(...)`` leaves a half-started cluster whose
    teardown prints tracebacks, and worker processes that get the terminal's SIGINT print their own.
    So ``SIGINT``/``SIGHUP`` are blocked (and inherited blocked by the worker processes started here)
    and ``SIGTERM`` only noted; when the block ends, the pending signal raises ``KeyboardInterrupt``
    at a point where the caller can close the cluster and exit 130 cleanly. Only the main thread
    can take signals, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from multiprocessing import resource_tracker

    # Started now, unblocked: spawning it later would unblock SIGINT in the spawning thread again.
    resource_tracker.ensure_running()
    terminated: list[int] = []
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
    try:
        yield
    finally:
        if previous_term is not None:  # None: a handler set outside Python, which we cannot put back
            signal.signal(signal.SIGTERM, previous_term)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)  # a pending SIGINT is delivered here
        if terminated:
            raise KeyboardInterrupt


SCHEDULER_HINT = "check the address and that the scheduler runs, or use --scheduler local"
PROBE_TIMEOUT_S = 3.0


def probe_scheduler(address: str) -> None:
    """Fail at once when nothing listens at a ``tcp://``/``tls://`` scheduler address.

    ``distributed.Client`` retries a refused connection until its timeout (10 s); one plain TCP
    connect tells a refused port, an unknown host or an unreachable network in milliseconds.
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if parts.scheme not in ("tcp", "tls"):
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UsageError(f"bad scheduler address {address!r}: {exc}", hint="use tcp://host:port") from None
    if not host or port is None:
        raise UsageError(f"bad scheduler address {address!r}: it needs a host and a port",
                         hint="use tcp://host:port")
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except socket.gaierror as exc:
        raise EnvironmentProblem(f"cannot reach Dask scheduler {address}: unknown host {host!r} ({exc.strerror})",
                                 hint=SCHEDULER_HINT) from None
    except TimeoutError:
        raise EnvironmentProblem(f"cannot reach Dask scheduler {address}: no answer within {PROBE_TIMEOUT_S:.0f}s",
                                 hint=SCHEDULER_HINT) from None
    except OSError as exc:
        raise EnvironmentProblem(f"cannot reach Dask scheduler {address}: {os_reason(exc)}",
                                 hint=SCHEDULER_HINT) from None


def _quiet_distributed() -> None:
    """distributed logs cluster life at INFO to stderr; the CLI owns output, so keep it to errors unless -v."""
    if log.isEnabledFor(logging.INFO):
        return
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("distributed")] + ["distributed"]:
        logging.getLogger(name).setLevel(logging.ERROR)


def usable_gpu_devices(backend: EmbedderBackend, settings: EmbedderSettings) -> list[int]:
    """The CUDA devices a local cluster should give GPU workers for this embedder: none unless the host
    lists GPUs, ``embedder.device`` allows one, and the backend would really run there.

    A GPU worker whose embedder falls back to the CPU (onnxruntime without its CUDA provider, a CPU
    build of torch) would embed on one thread while the CPU workers idle: worse than no GPU worker.
    ``cuda:N`` keeps device N only.
    """
    from codeindex.embedders.devices import parse_device

    count = local_gpu_count()
    kind, index = parse_device(settings.device, backend.name)
    if not count or kind == "cpu":
        return []
    if not backend.gpu_usable(settings):
        log.info("%d GPU(s) here, but embedder %s would not run on them: CPU workers only", count, backend.name)
        return []
    explicit = settings.device.strip().lower().startswith("cuda:")
    return [index] if explicit else list(range(count))


def gpu_spec_cluster(devices: Sequence[int], cpu_workers: int, env: dict[str, str]) -> Any:
    """One GPU worker per device plus CPU workers for parsing.

    A GPU worker offers the resource ``GPU=1`` (embed tasks ask for it, so one runs at a time) and sees
    only its device (``CUDA_VISIBLE_DEVICES``), which its embedder then calls ``cuda:0``. It has two
    threads so a parse task can run beside the embed task instead of delaying it. CPU workers see no GPU.
    """
    from distributed import Nanny, Scheduler, SpecCluster

    security = cluster_security()
    tls = {"host": LOOPBACK, "protocol": "tls://", "security": security}
    workers: dict[str, Any] = {}
    for device in devices:
        workers[f"gpu-{device}"] = {"cls": Nanny, "options": {
            "nthreads": 2, "resources": {"GPU": 1}, **tls,
            "env": {**env, "CUDA_VISIBLE_DEVICES": str(device)}}}
    for i in range(max(1, cpu_workers - len(devices))):
        workers[f"cpu-{i}"] = {"cls": Nanny, "options": {"nthreads": 1, **tls,
                                                          "env": {**env, "CUDA_VISIBLE_DEVICES": ""}}}
    scheduler = {"cls": Scheduler, "options": {"dashboard": False, "dashboard_address": f"{LOOPBACK}:0", **tls}}
    return SpecCluster(workers=workers, scheduler=scheduler, security=security, silence_logs=logging.ERROR)


def local_worker_settings(settings: EmbedderSettings, executor: Executor) -> EmbedderSettings:
    """Embedder settings as the workers of a local cluster need them.

    Unset intra-op threads become the worker's share of the cores. On a GPU worker, which sees only its
    own device, an explicit ``cuda:N`` becomes ``cuda`` (the worker's device 0).
    """
    import dataclasses

    if executor.name != "local":
        return settings
    if settings.threads == 0:
        cores = max(1, len(os.sched_getaffinity(0)))
        settings = dataclasses.replace(settings, threads=max(1, cores // max(1, executor.n_workers)))
    if executor.has_gpu and settings.device.strip().lower().startswith("cuda:"):
        settings = dataclasses.replace(settings, device="cuda")
    return settings


def make_executor(scheduler: str, *, n_dirty: int, small_threshold: int, workers: int = 0,
                  gpu_devices: Callable[[], list[int]] = list) -> Executor:
    """Pick the executor: small dirty sets on the default scheduler run in-process (no cluster start-up).

    ``gpu_devices`` is asked only when a local cluster is about to start (see ``usable_gpu_devices``).
    """
    if scheduler == "sync" or (scheduler == "local" and n_dirty < small_threshold):
        return SyncExecutor()
    if scheduler == "local":
        return DaskExecutor(None, n_workers=workers, gpu_devices=gpu_devices())
    if scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        probe_scheduler(scheduler)  # before importing distributed (~0.5 s): a refused port fails at once
        return DaskExecutor(scheduler)
    raise UsageError(f"unknown scheduler {scheduler!r}", hint="use local, sync or tcp://host:port")
