"""Immutable FAISS vector segments.

A rebuild writes base segments; an update writes a small delta segment. Vectors are never modified
in place: replaced vectors become tombstones (rows in DuckDB) and searches drop them; compaction
rewrites live vectors into one segment. Files are written under a temporary name, fsynced and
renamed, and become live only when the DuckDB transaction that lists them commits.

Index type per segment: ``flat`` (``IndexIDMap2`` over exact inner product) by default; a bulk
rebuild's segment of at least ``ann_min_vectors`` vectors gets ``hnsw`` (built once, at the end).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codeindex import crashpoints
from codeindex.errors import environment_problem
from codeindex.fsio import rename_durably
from codeindex.store.checksums import Fingerprint, digest
from codeindex.store.layout import make_private_file

if TYPE_CHECKING:
    import faiss

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """A sealed segment file, with the fingerprint the commit records for it."""

    segment: int
    file: str
    n_vectors: int
    index_type: str
    n_bytes: int
    checksum: str


def segment_file(number: int) -> str:
    return f"seg-{number:06d}.faiss"


def write_index_atomically(index: Any, target: Path) -> Fingerprint:
    """Write a segment under a temporary name, fsync, rename; returns its size and checksum.

    Serialised here and written with Python's I/O rather than ``faiss.write_index``: a full disk or
    a read-only folder then raises an ``OSError`` with its errno (FAISS says only "write error"), and
    the checksum comes from the very bytes written.
    """
    import faiss

    data = faiss.serialize_index(index).data  # a view of FAISS's buffer: no second copy
    fingerprint = Fingerprint(data.nbytes, digest(data))
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            make_private_file(fh.fileno())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        del data
        crashpoints.hit("mid-segment-write")
        rename_durably(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise environment_problem(exc, target, "write the vector segment") from exc
    return fingerprint


def flat_index(dim: int) -> faiss.IndexIDMap2:
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def hnsw_index(dim: int) -> faiss.IndexIDMap2:
    import faiss

    inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    inner.hnsw.efSearch = HNSW_EF_SEARCH
    return faiss.IndexIDMap2(inner)


def vectors_of(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """All (ids, vectors) stored in an ``IndexIDMap2`` segment, in storage order."""
    import faiss

    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    vecs = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), "float32")
    return ids, np.ascontiguousarray(vecs, dtype=np.float32)


class SegmentWriter:
    """Collects one run's new vectors into segments of at most ``max_vectors``; nothing is live until commit."""

    def __init__(self, index_dir: Path, dim: int, first_number: int, *, max_vectors: int,
                 ann_min_vectors: int, bulk: bool) -> None:
        self.index_dir = index_dir
        self.dim = dim
        self.next_number = first_number
        self._first_number = first_number
        self.max_vectors = max_vectors
        self.ann_min_vectors = ann_min_vectors
        self.bulk = bulk
        self.sealed: list[SegmentInfo] = []
        self._current: Any = None
        self.bytes_written = 0
        self._batches = 0

    @property
    def current_number(self) -> int:
        return self.next_number

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> list[int]:
        """Add vectors; returns the segment number each landed in (segments seal as they fill)."""
        if self._batches:  # a crash here: earlier batches (maybe sealed segments) exist, the run is half done
            crashpoints.hit("between-files")
        self._batches += 1
        placed: list[int] = []
        start = 0
        while start < len(ids):
            if self._current is None:
                self._current = flat_index(self.dim)
            room = self.max_vectors - self._current.ntotal
            end = min(len(ids), start + room)
            self._current.add_with_ids(np.ascontiguousarray(vectors[start:end], dtype=np.float32),
                                       np.ascontiguousarray(ids[start:end], dtype=np.int64))
            placed.extend([self.next_number] * (end - start))
            start = end
            if self._current.ntotal >= self.max_vectors:
                self._seal_current()
        return placed

    def _seal_current(self) -> None:
        """Write the open segment as flat: cheap, so the pipeline never waits on an ANN build."""
        index = self._current
        self._current = None
        if index is None or index.ntotal == 0:
            return
        name = segment_file(self.next_number)
        path = self.index_dir / name
        crashpoints.hit("mid-segment-write")
        self.next_number += 1  # taken even if the write fails: abort() removes what was written
        fingerprint = write_index_atomically(index, path)
        self.bytes_written += fingerprint.n_bytes
        self.sealed.append(SegmentInfo(self.next_number - 1, name, int(index.ntotal), "flat",
                                       fingerprint.n_bytes, fingerprint.checksum))

    def finish(self) -> list[SegmentInfo]:
        """Seal the last segment; a big bulk rebuild then gets its ANN structure, built once, here at the end."""
        self._seal_current()
        total = sum(info.n_vectors for info in self.sealed)
        if self.bulk and total >= self.ann_min_vectors:
            self.sealed = [self._to_hnsw(info) for info in self.sealed]
        return list(self.sealed)

    def _to_hnsw(self, info: SegmentInfo) -> SegmentInfo:
        path = self.index_dir / info.file
        ids, vecs = vectors_of(read_segment(path))
        index = hnsw_index(self.dim)
        index.add_with_ids(vecs, ids)
        fingerprint = write_index_atomically(index, path)
        return SegmentInfo(info.segment, info.file, info.n_vectors, "hnsw", fingerprint.n_bytes,
                           fingerprint.checksum)

    def abort(self) -> None:
        """Remove files this writer created (they were never live), even if the segments list failed."""
        self._current = None
        for number in range(self._first_number, self.next_number):
            for name in (segment_file(number), segment_file(number) + ".tmp"):
                with contextlib.suppress(OSError):
                    (self.index_dir / name).unlink()
        self.sealed.clear()


def next_free_segment(index_dir: Path) -> int:
    """One more than the highest segment number of any file present (live or not)."""
    numbers = [int(p.name[4:10]) for p in index_dir.glob("seg-*.faiss*") if p.name[4:10].isdigit()]
    return max(numbers, default=-1) + 1


def read_segment(path: Path, *, mmap: bool = False) -> Any:  # faiss has no useful type stubs
    """Load a segment for searching. ``mmap`` maps it read-only (never add/remove on a mapped index)."""
    import faiss

    flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
    index: Any = faiss.read_index(str(path), flags)
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSWFlat):
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def segment_rows(index_dir: Path, infos: list[SegmentInfo]) -> Any:
    """The ``segments`` rows of sealed segments, with the fingerprint and the stat the commit records
    (``store/integrity.py`` checks them on every later use). An Arrow table."""
    import pyarrow as pa

    from codeindex.store.checksums import stat_token

    stats = []
    for info in infos:
        path = index_dir / info.file
        try:
            stats.append(stat_token(os.stat(path)))
        except OSError as exc:
            raise environment_problem(exc, path, "read the new vector segment") from exc
    return pa.table({
        "segment": pa.array([s.segment for s in infos], pa.int32()), "file": pa.array([s.file for s in infos],
                                                                                       pa.string()),
        "n_vectors": pa.array([s.n_vectors for s in infos], pa.int64()),
        "index_type": pa.array([s.index_type for s in infos], pa.string()),
        "n_bytes": pa.array([s.n_bytes for s in infos], pa.int64()),
        "checksum": pa.array([s.checksum for s in infos], pa.string()),
        "file_stat": pa.array(stats, pa.string())})


def remove_orphans(index_dir: Path, live_files: set[str]) -> list[str]:
    """Delete segment files (and temp files) not listed as live; returns what was removed."""
    removed = []
    for path in index_dir.glob("seg-*.faiss*"):
        if path.name not in live_files:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
