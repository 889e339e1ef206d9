"""``Index``: the Python API behind the CLI (``codeindex rebuild`` ↔ ``Index.rebuild`` and so on).

A thin facade: it resolves paths and settings into an ``IndexLayout`` and hands it to the stages.
A write takes the writer lock and runs ``engine.run``: read the snapshot (brief DB open) → discover →
stat-gated scan → Merkle diff → pipeline (DB closed: searches keep working) → one commit transaction
→ clean up. A search goes to ``search.searcher.Searcher``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codeindex.changes.plan import UpdatePlan, estimate, make_plan, read_state
from codeindex.config import Config, load_config
from codeindex.embedders.choice import choose_embedder
from codeindex.engine.report import RunReport
from codeindex.errors import NotIndexedError, UsageError
from codeindex.progress import ProgressCallback, no_progress
from codeindex.store.layout import INDEX_DIR_NAME, IndexLayout
from codeindex.store.lock import writer_lock

if TYPE_CHECKING:
    from codeindex.store.integrity import VerifyReport


class Index:
    """A semantic index of the tree at ``root``, stored in ``index_dir`` (default ``root/.codeindex``)."""

    def __init__(self, root: str | os.PathLike[str], *, index_dir: str | os.PathLike[str] | None = None,
                 config: Config | None = None, **overrides: Any) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.exists():
            raise UsageError(f"path does not exist: {root}", hint="pass the root of a source tree")
        if not self.root.is_dir():
            raise UsageError(f"not a directory: {root}", hint="pass the root of a source tree")
        self.index_dir = Path(index_dir).expanduser().resolve() if index_dir else self.root / INDEX_DIR_NAME
        if "?" in str(self.index_dir):  # DuckDB reads "?" as the start of URL parameters in a file path
            raise UsageError(f"the index directory's path contains '?', which DuckDB cannot open: {self.index_dir}",
                             hint="pass --index-dir with a path without '?'")
        self.config = config or load_config(self.root, overrides)
        self.layout = IndexLayout(self.root, self.index_dir)
        self._searcher: Any = None

    @property
    def db_path(self) -> Path:
        return self.layout.db_path

    def exists(self) -> bool:
        return self.layout.exists()

    # ------------------------------------------------------------------ public API

    def rebuild(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
                embedder: str | None = None, wait: bool = False) -> RunReport:
        """Index the tree from scratch into a new database, swapped in atomically at the end."""
        with writer_lock(self.index_dir, wait=wait) as lock_warnings:
            return self._run("rebuild", progress, scheduler, embedder, lock_warnings)

    def update(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
               embedder: str | None = None, wait: bool = False, repair: bool = False,
               retry_failed: bool = False) -> RunReport:
        """Re-index what changed since the last run (a rebuild if there is no index yet).

        Damage the quick integrity check finds is mended first (``report.repairs`` says what);
        ``repair`` runs the full check of ``verify`` first. ``retry_failed`` parses again every file
        whose parse failed, even if neither it nor its parser changed.
        """
        with writer_lock(self.index_dir, wait=wait) as lock_warnings:
            kind = "update" if self.exists() else "rebuild"
            return self._run(kind, progress, scheduler, embedder, lock_warnings, repair=repair,
                             retry_failed=retry_failed)

    def verify(self) -> VerifyReport:
        """Check everything on disk: database blocks and tables, every segment's checksum, the vector and
        chunk maps, the Merkle snapshot. Reads only; ``update --repair`` mends what it finds."""
        from codeindex.store.integrity import verify_index

        if not self.exists():
            raise NotIndexedError(f"no index at {self.index_dir}")
        return verify_index(self.index_dir, self.db_path)

    def plan(self, *, embedder: str | None = None, progress: ProgressCallback = no_progress) -> UpdatePlan:
        """What ``update`` would do, without writing anything (``codeindex update --plan``)."""
        state = read_state(self.layout, require=True)
        choice = choose_embedder(self.config, state.meta, embedder)
        plan, _, _ = make_plan(self.layout, self.config, state, choice, progress)
        estimate(self.layout, plan, state)
        return plan

    def search(self, query: str, *, k: int | None = None, mode: str | None = None,
               languages: Sequence[str] = (), paths: Sequence[str] = (), exclude_paths: Sequence[str] = (),
               kinds: Sequence[str] = (), symbol: str | None = None, embedder: str | None = None) -> list[Any]:
        """Hybrid (default), vector or lexical search. Results never point at deleted or moved-away files."""
        from codeindex.search.searcher import Searcher

        if self._searcher is None:
            self._searcher = Searcher(self.index_dir, self.config)
        return self._searcher.search(query, k=k or self.config["search.k"], mode=mode or self.config["search.mode"],
                                     languages=languages, paths=paths, exclude_paths=exclude_paths, kinds=kinds,
                                     symbol=symbol, embedder=embedder)

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

    def compact(self, *, wait: bool = False) -> dict[str, int]:
        """Merge all live segments into one, dropping tombstoned vectors."""
        from codeindex.store.compaction import compact

        with writer_lock(self.index_dir, wait=wait):
            return compact(self.index_dir, self.config)

    def _run(self, kind: str, progress: ProgressCallback, scheduler: str | None, embedder: str | None,
             warnings: list[str], *, repair: bool = False, retry_failed: bool = False) -> RunReport:
        from codeindex.engine.run import run

        return run(self.layout, self.config, kind, progress=progress, scheduler=scheduler, embedder=embedder,
                   warnings=warnings, repair=repair, retry_failed=retry_failed)


__all__ = ["INDEX_DIR_NAME", "Index", "RunReport", "UpdatePlan"]
