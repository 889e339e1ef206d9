"""Checksums of index files: blake3 of the bytes, and the stat an immutable file must keep."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import blake3

MMAP_DIGEST_BYTES = 8 * 1024 * 1024
"""Files above this size are hashed through a memory map (no copy into Python)."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A file's size and blake3 checksum, as recorded at commit."""

    n_bytes: int
    checksum: str


def digest(data: bytes | bytearray | memoryview) -> str:
    return blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()


def fingerprint_file(path: Path) -> Fingerprint:
    """Size and blake3 of a file (memory-mapped when large: blake3 reads the pages itself)."""
    size = os.stat(path).st_size
    if size >= MMAP_DIGEST_BYTES:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(str(path))
        return Fingerprint(size, hasher.hexdigest())
    with open(path, "rb") as fh:
        data = fh.read()
    return Fingerprint(len(data), digest(data))


def stat_token(st: os.stat_result) -> str:
    """What a committed segment's stat must still say: inode, size, mtime and ctime. Segments are never
    written after their commit, so any change means the file was touched (or the index was copied)."""
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
