"""Immutable FAISS vector segments.

A rebuild writes base segments; an update writes a small delta segment. Vectors are never modified
in place: replaced vectors become tombstones (rows in DuckDB) and searches drop them; compaction
rewrites live vectors into one segment. Files are written under a temporary name, fsynced and
renamed, and become live only when the DuckDB transaction that lists them commits.

Index type per segment: ``flat`` (``IndexIDMap2`` over exact inner product) by default; a bulk
rebuild's segment of at least ``ann_min_vectors`` vectors gets ``hnsw`` (built once, at the end).

A long run commits at checkpoints: ``SegmentWriter.checkpoint`` seals what it holds so that commit can
list it, and at the end ``consolidate`` merges the run's checkpoint segments (small, flat) into full
ones under new numbers, which the final commit lists instead (the old files become orphans).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codeindex import crashpoints
from codeindex.fsio import fsync_file, rename_durably
from codeindex.store.layout import make_private_file

if TYPE_CHECKING:
    import faiss

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    segment: int
    file: str
    n_vectors: int
    index_type: str


@dataclass(slots=True)
class FinalSegments:
    """What a run's final commit does to the live-segment list.

    ``segments`` become live; ``replaced`` (segment numbers already live) are dropped, and every vector
    they held moves to the new segment given in ``moved_to`` (same order as ``moved_ids``).
    """

    segments: list[SegmentInfo]
    replaced: list[int] = field(default_factory=list)
    moved_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    moved_to: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))


def segment_file(number: int) -> str:
    return f"seg-{number:06d}.faiss"


def write_index_atomically(index: Any, target: Path) -> None:
    import faiss

    tmp = target.with_name(target.name + ".tmp")
    faiss.write_index(index, str(tmp))
    make_private_file(tmp)
    fsync_file(tmp)
    crashpoints.hit("mid-segment-write")
    rename_durably(tmp, target)


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
        self.max_vectors = max_vectors
        self.ann_min_vectors = ann_min_vectors
        self.bulk = bulk
        self.sealed: list[SegmentInfo] = []
        """Sealed segments no commit has been handed yet: ``abort`` deletes them."""
        self.handed: list[SegmentInfo] = []
        """Segments handed to a checkpoint's commit: live (or orphans the next writer removes), never deleted here."""
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
        write_index_atomically(index, path)
        self.bytes_written += path.stat().st_size
        self.sealed.append(SegmentInfo(self.next_number, name, int(index.ntotal), "flat"))
        self.next_number += 1

    def finish(self) -> list[SegmentInfo]:
        """Seal the last segment; a big bulk rebuild then gets its ANN structure, built once, here at the end."""
        self._seal_current()
        total = sum(info.n_vectors for info in self.sealed)
        if self.bulk and total >= self.ann_min_vectors:
            self.sealed = [self._to_hnsw(info) for info in self.sealed]
        return list(self.sealed)

    def checkpoint(self) -> list[SegmentInfo]:
        """Seal the open segment and hand every sealed segment to the checkpoint about to commit."""
        self._seal_current()
        return self.hand_over()

    def hand_over(self) -> list[SegmentInfo]:
        """Hand the sealed segments to the commit about to run. From here on ``abort`` never deletes
        them: if that commit fails they are orphans, which the next writer removes; else they are live."""
        handed, self.sealed = self.sealed, []
        self.handed.extend(handed)
        return handed

    def consolidate(self, adopted: Sequence[SegmentInfo] = ()) -> FinalSegments:
        """The final segments of a run that checkpointed: its checkpoint segments, ``adopted`` ones (those a
        resumed build committed before it was killed) and its last vectors, merged into full segments.

        A run that never checkpointed gets ``finish``'s result. Otherwise the merge reads one source
        segment at a time (memory stays at one segment), writes new flat segments under new numbers,
        then converts them to HNSW when a bulk run reaches ``ann_min_vectors``, as ``finish`` does.
        """
        self._seal_current()
        sources = [*adopted, *self.handed, *self.sealed]
        if not adopted and not self.handed:
            return FinalSegments(self.finish())
        if len(sources) == 1 and not (self.bulk and sources[0].n_vectors >= self.ann_min_vectors):
            return FinalSegments(self.finish())  # one live segment already: nothing to merge
        unsent, self.sealed = self.sealed, []
        moved_ids: list[np.ndarray] = []
        moved_to: list[int] = []
        for info in sources:
            ids, vecs = vectors_of(read_segment(self.index_dir / info.file))
            moved_to.extend(self.add(ids, vecs))
            moved_ids.append(ids)
        merged = self.finish()
        for info in unsent:  # merged into the new segments and never listed anywhere
            (self.index_dir / info.file).unlink(missing_ok=True)
        ids_all = np.concatenate(moved_ids) if moved_ids else np.zeros(0, np.int64)
        unsent_numbers = {i.segment for i in unsent}
        return FinalSegments(merged, [i.segment for i in sources if i.segment not in unsent_numbers],
                             ids_all, np.asarray(moved_to, dtype=np.int32))

    def _to_hnsw(self, info: SegmentInfo) -> SegmentInfo:
        path = self.index_dir / info.file
        ids, vecs = vectors_of(read_segment(path))
        index = hnsw_index(self.dim)
        index.add_with_ids(vecs, ids)
        write_index_atomically(index, path)
        return SegmentInfo(info.segment, info.file, info.n_vectors, "hnsw")

    def abort(self) -> None:
        """Remove files this writer created (they were never live)."""
        self._current = None
        for info in self.sealed:
            (self.index_dir / info.file).unlink(missing_ok=True)
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


def remove_orphans(index_dir: Path, live_files: set[str]) -> list[str]:
    """Delete segment files (and temp files) not listed as live; returns what was removed."""
    removed = []
    for path in index_dir.glob("seg-*.faiss*"):
        if path.name not in live_files:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
