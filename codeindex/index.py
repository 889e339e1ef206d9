"""``Index``: the Python API behind the CLI (``codeindex rebuild`` ↔ ``Index.rebuild`` and so on).

A thin facade: it resolves paths and settings into an ``IndexLayout`` and hands it to the stages.
A write takes the writer lock and runs ``engine.run``: read the snapshot (brief DB open) → discover →
stat-gated scan → Merkle diff → pipeline (DB closed: searches keep working) → one commit transaction
→ clean up. A search goes to ``search.searcher.Searcher``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

from codeindex.changes.plan import UpdatePlan, estimate, make_plan, read_state
from codeindex.config import Config, load_config
from codeindex.embedders.choice import choose_embedder
from codeindex.engine.report import RunReport
from codeindex.errors import NotIndexedError, UsageError
from codeindex.progress import ProgressCallback, ProgressEvent, no_progress
from codeindex.search.validate import as_list, check_k
from codeindex.store.layout import INDEX_DIR_NAME, IndexLayout
from codeindex.store.lock import writer_lock

if TYPE_CHECKING:
    from codeindex.explain import FileRecord, WhyReport
    from codeindex.search.searcher import SearchResult


class CompactResult(TypedDict):
    segments_before: int
    segments_after: int
    dropped_vectors: int


class Index:
    """A semantic index of the tree at ``root``, stored in ``index_dir`` (default ``root/.codeindex``).

    ``settings`` overrides configured settings by name (``{"search.k": 20, "embedder.backend": "hashing"}``),
    above every configuration layer (see docs/reference/config.md); ``**overrides`` is the same for
    names given as keywords (``Index(root, **{"search.k": 20})``). ``config`` replaces configuration
    loading altogether. A configuration problem raises ``ConfigError`` naming each one.

    Use it as a context manager (``with Index(root) as index: ...``) or call ``close()``: searches keep
    a read connection open between queries.
    """

    def __init__(self, root: str | os.PathLike[str], *, index_dir: str | os.PathLike[str] | None = None,
                 config: Config | None = None, settings: Mapping[str, Any] | None = None,
                 **overrides: Any) -> None:
        if settings is not None and not isinstance(settings, Mapping):
            raise UsageError(f"settings must be a mapping of setting name to value, got {type(settings).__name__}")
        self.root = Path(root).expanduser().resolve()
        if not self.root.exists():
            raise UsageError(f"path does not exist: {root}", hint="pass the root of a source tree")
        if not self.root.is_dir():
            raise UsageError(f"not a directory: {root}", hint="pass the root of a source tree")
        self.index_dir = Path(index_dir).expanduser().resolve() if index_dir else self.root / INDEX_DIR_NAME
        if "?" in str(self.index_dir):  # DuckDB reads "?" as the start of URL parameters in a file path
            raise UsageError(f"the index directory's path contains '?', which DuckDB cannot open: {self.index_dir}",
                             hint="pass --index-dir with a path without '?'")
        self.config = config or load_config(self.root, {**(settings or {}), **overrides})
        self.layout = IndexLayout(self.root, self.index_dir)
        self._searcher: Any = None

    @property
    def db_path(self) -> Path:
        """The index's DuckDB database file."""
        return self.layout.db_path

    def exists(self) -> bool:
        """Whether an index has been built (its database exists)."""
        return self.layout.exists()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index({str(self.root)!r}, index_dir={str(self.index_dir)!r})"

    # ------------------------------------------------------------------ public API

    def rebuild(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
                embedder: str | None = None, wait: bool = False) -> RunReport:
        """Index the tree from scratch into a new database, swapped in atomically at the end."""
        with self._lock(wait, progress) as lock_warnings:
            return self._run("rebuild", progress, scheduler, embedder, lock_warnings)

    def update(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
               embedder: str | None = None, wait: bool = False) -> RunReport:
        """Re-index what changed since the last run (a rebuild if there is no index yet)."""
        with self._lock(wait, progress) as lock_warnings:
            kind = "update" if self.exists() else "rebuild"
            return self._run(kind, progress, scheduler, embedder, lock_warnings)

    def plan(self, *, embedder: str | None = None, progress: ProgressCallback = no_progress) -> UpdatePlan:
        """What ``update`` would do, without writing anything (``codeindex update --plan``)."""
        state = read_state(self.layout, require=True)
        choice = choose_embedder(self.config, state.meta, embedder)
        plan, _, _ = make_plan(self.layout, self.config, state, choice, progress)
        estimate(self.layout, plan, state)
        return plan

    def search(self, query: str, *, k: int | None = None, mode: str | None = None,
               languages: Sequence[str] = (), paths: Sequence[str] = (), exclude_paths: Sequence[str] = (),
               kinds: Sequence[str] = (), symbol: str | None = None,
               embedder: str | None = None) -> list[SearchResult]:
        """Hybrid (default), vector or lexical search, best first. Results never point at deleted or
        moved-away files.

        ``k`` (default ``search.k``) is at least 1. ``languages``, ``kinds``, ``paths`` and
        ``exclude_paths`` are lists of strings; a path glob matches files and everything under a
        matching folder (``["src/click"]``). A language no parser knows or a kind the index has no chunk
        of is a ``UsageError`` listing the valid ones. ``SearchResult.score`` depends on the mode: see
        ``SearchResult``.
        """
        from codeindex.search.searcher import Searcher

        if not isinstance(query, str):
            raise UsageError(f"query must be a string, got {type(query).__name__}")
        filters = {name: as_list(name, value) for name, value in
                   (("languages", languages), ("paths", paths), ("exclude_paths", exclude_paths), ("kinds", kinds))}
        if self._searcher is None:
            self._searcher = Searcher(self.index_dir, self.config)
        results: list[SearchResult] = self._searcher.search(
            query, k=check_k(self.config["search.k"] if k is None else k), mode=mode or self.config["search.mode"],
            symbol=symbol, embedder=embedder, **filters)
        return results

    def search_meta(self) -> dict[str, str]:
        """What the index state the last search read records (``schema_version``, ``embedder_backend``,
        ``model_id``...); empty before the first search."""
        return self._searcher.meta() if self._searcher is not None else {}

    def files(self, *, under: str | os.PathLike[str] = "", skipped: bool = False,
              reason: str | None = None) -> list[FileRecord]:
        """Indexed files, or (``skipped``/``reason``) the skipped files and folders with their reasons."""
        from codeindex.explain import list_files, relative_path

        prefix = relative_path(self.layout, under) if str(under) else ""
        return list_files(self.layout, self.config, under="" if prefix == "." else prefix, skipped=skipped,
                          reason=reason)

    def why(self, path: str | os.PathLike[str]) -> WhyReport:
        """Whether ``path`` (absolute, or relative to the root) is indexed; if not, the rule or reason."""
        from codeindex.explain import why

        return why(self.layout, self.config, path)

    def close(self) -> None:
        """Close the read connection searches keep open (idle ones close by themselves after a moment)."""
        if self._searcher is not None:
            self._searcher.close()

    def status(self) -> dict[str, Any]:
        """Files, chunks, model, index size, last run; no model runtime is loaded."""
        from codeindex.store.status import read_status

        return read_status(self.layout)

    def staleness(self) -> dict[str, int]:
        """How stale the index is (changed-file counts) without updating it."""
        plan = self.plan()
        return {"added": len(plan.added), "modified": len(plan.modified), "deleted": len(plan.deleted),
                "moved": len(plan.moved), "reparse": len(plan.reparse)}

    def compact(self, *, wait: bool = False, progress: ProgressCallback = no_progress) -> CompactResult:
        """Merge all live segments into one, dropping tombstoned vectors."""
        from codeindex.store.compaction import compact

        if not self.exists():
            raise NotIndexedError(f"no index at {self.index_dir}")
        with self._lock(wait, progress):
            result = compact(self.index_dir, self.config)
        return CompactResult(segments_before=result["segments_before"], segments_after=result["segments_after"],
                             dropped_vectors=result["dropped_vectors"])

    @contextmanager
    def _lock(self, wait: bool, progress: ProgressCallback) -> Iterator[list[str]]:
        """The writer lock; while waiting for it, a ``lock`` progress event says who holds it."""
        def waiting(holder: dict[str, object]) -> None:
            progress(ProgressEvent("lock", detail=dict(holder)))

        with writer_lock(self.index_dir, wait=wait, on_wait=waiting) as warnings:
            yield warnings

    def _run(self, kind: str, progress: ProgressCallback, scheduler: str | None, embedder: str | None,
             warnings: list[str]) -> RunReport:
        from codeindex.engine.run import run

        return run(self.layout, self.config, kind, progress=progress, scheduler=scheduler, embedder=embedder,
                   warnings=warnings)


__all__ = ["INDEX_DIR_NAME", "CompactResult", "Index", "RunReport", "UpdatePlan"]
