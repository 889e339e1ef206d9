"""Where an embedder runs: the cores this process may use and the ``embedder.device`` setting."""

from __future__ import annotations

import os

from codeindex.errors import EmbedderError


def available_cores() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def parse_device(device: str, backend: str) -> tuple[str, int]:
    """Split ``auto``/``cpu``/``cuda``/``cuda:N`` into (kind, index); anything else is an error."""
    text = (device or "auto").strip().lower()
    if text in ("auto", "cpu", "cuda"):
        return text, 0
    if text.startswith("cuda:") and text[5:].isdigit():
        return "cuda", int(text[5:])
    raise EmbedderError(f"{backend}: unknown device {device!r}",
                        hint="embedder.device is auto, cpu or cuda[:N]")
