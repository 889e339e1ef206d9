"""How busy the GPU is while ``codeindex rebuild`` embeds: ``nvidia-smi`` sampled beside the run.

``utilization.gpu`` is, per sample period, the share of time one or more kernels ran on the device;
its mean over a window is the GPU's busy share of that window. Two windows are reported: the whole
cold rebuild (process start, cluster start, model load and the commit included), and the embed span,
from the first to the last sample in which the device did any work, which is where embed batches ran.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

QUERY = ["--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits"]


@dataclass(slots=True)
class Sample:
    seconds: float  # since the sampler started
    device: int
    utilization: int  # percent
    memory_mb: int


def parse_line(line: str, seconds: float) -> Sample | None:
    """One ``index, utilization, memory`` CSV line; ``None`` for lines nvidia-smi marks unsupported."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return Sample(seconds, int(parts[0]), int(parts[1]), int(parts[2]))


def busy_shares(samples: list[Sample], device: int = 0) -> dict[str, float]:
    """Busy share of the whole sampled run and of the embed span (first to last busy sample)."""
    mine = [s for s in samples if s.device == device]
    if not mine:
        return {}
    busy = [i for i, s in enumerate(mine) if s.utilization > 0]
    figures = {"gpu_busy_share_run": sum(s.utilization for s in mine) / (100 * len(mine)),
               "gpu_samples": float(len(mine)),
               "gpu_peak_memory_mb": float(max(s.memory_mb for s in mine))}
    if busy:
        span = mine[busy[0]:busy[-1] + 1]
        figures["gpu_busy_share_embed_span"] = sum(s.utilization for s in span) / (100 * len(span))
        figures["gpu_embed_span_s"] = span[-1].seconds - span[0].seconds
    return figures


@dataclass
class GpuSampler:
    """Polls ``nvidia-smi`` every ``interval`` seconds on a thread until ``stop``."""

    interval: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @staticmethod
    def available() -> bool:
        exe = shutil.which("nvidia-smi")
        if exe is None:
            return False
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
        return any(line.startswith("GPU ") for line in out.splitlines())

    def start(self) -> GpuSampler:
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return self.samples

    def _run(self) -> None:
        exe = shutil.which("nvidia-smi") or "nvidia-smi"
        start = time.perf_counter()
        while not self._stop.is_set():
            now = time.perf_counter() - start
            out = subprocess.run([exe, *QUERY], capture_output=True, text=True, timeout=10, check=False).stdout
            self.samples.extend(s for line in out.splitlines() if (s := parse_line(line, now)) is not None)
            self._stop.wait(self.interval)
