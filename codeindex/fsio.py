"""Durable file replacement, written once: readers see the old file or the new one, and after a crash
the rename has either happened or not (the file's data is synced before it, the folder after it)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to disk (before it is renamed into place)."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries: makes a rename inside it durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rename_durably(tmp: Path, target: Path) -> None:
    """Rename a synced ``tmp`` over ``target`` and sync the folder, so the rename survives a power loss."""
    os.replace(tmp, target)
    fsync_dir(target.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        rename_durably(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
