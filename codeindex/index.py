"""``Index``: the Python API behind the CLI (``codeindex rebuild`` ↔ ``Index.rebuild`` and so on).

A thin facade: it resolves paths and settings into an ``IndexLayout`` and hands it to the stages.
A write takes the writer lock and runs ``engine.run``: read the snapshot (brief DB open) → discover →
stat-gated scan → Merkle diff → pipeline (DB closed: searches keep working) → one commit transaction
→ clean up. A search goes to ``search.searcher.Searcher``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from codeindex.changes.plan import IndexState, UpdatePlan, estimate, make_plan, read_state
from codeindex.config import Config, load_config
from codeindex.embedders.choice import choose_embedder
from codeindex.engine.report import RunReport
from codeindex.errors import UsageError
from codeindex.progress import ProgressCallback, no_progress
from codeindex.store.layout import INDEX_DIR_NAME, IndexLayout
from codeindex.store.lock import writer_lock


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
        self._prepared: IndexState | None = None

    @property
    def db_path(self) -> Path:
        return self.layout.db_path

    def exists(self) -> bool:
        return self.layout.exists()

    # ------------------------------------------------------------------ public API

    def rebuild(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
                embedder: str | None = None, wait: bool = False) -> RunReport:
        """Index the tree from scratch into a new database, swapped in atomically at the end."""
        self._require_root()
        with writer_lock(self.index_dir, wait=wait) as lock_warnings:
            return self._run("rebuild", progress, scheduler, embedder, lock_warnings)

    def update(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
               embedder: str | None = None, wait: bool = False,
               paths: Iterable[str | os.PathLike[str]] | None = None) -> RunReport:
        """Re-index what changed since the last run (a rebuild if there is no index yet).

        ``paths``: only these files or directories (absolute, or relative to the root) may have changed,
        as a file watcher reports: they alone are walked and hashed, the rest of the committed
        snapshot is kept as it is. Exact for what changed there; a change elsewhere waits for the next
        full ``update``.
        """
        scoped = None if paths is None else self._relative_paths(paths)
        self._require_root()
        prepared, self._prepared = self._prepared, None
        with writer_lock(self.index_dir, wait=wait) as lock_warnings:
            kind = "update" if self.exists() else "rebuild"
            return self._run(kind, progress, scheduler, embedder, lock_warnings, scoped, prepared)

    def prepare_update(self) -> None:
        """Read the committed snapshot now, so that the next ``update`` need not if nothing commits meanwhile.

        For a live process, in its idle time: on a 20k-file tree the read is a third of a one-file
        update. Checked at use, under the writer lock, by the database's stamp.
        """
        self._prepared = read_state(self.layout, require=False)

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
        return self._reader().search(query, k=k or self.config["search.k"], mode=mode or self.config["search.mode"],
                                     languages=languages, paths=paths, exclude_paths=exclude_paths, kinds=kinds,
                                     symbol=symbol, embedder=embedder)

    def warm(self) -> None:
        """Load the committed state's search structures now, so the next search does not (see Searcher.warm)."""
        self._reader().warm()

    def symbol(self, name: str, *, k: int | None = None) -> list[Any]:
        """Where ``name`` is defined: chunks whose symbol is it or ends with ``.name`` (``search/lookup.py``)."""
        return self._reader().definitions(name, k=k or self.config["search.k"])

    def read_lines(self, path: str, start_line: int = 1, end_line: int | None = None, *, context: int = 0) -> Any:
        """Lines of an indexed file as they are on disk now, flagged when it changed since it was indexed."""
        from codeindex.search.lookup import normalize_path, read_excerpt

        rel = normalize_path(path)
        indexed = self._reader().indexed_hash(rel)
        return read_excerpt(self.root, rel, indexed, start_line, end_line, context,
                            self.config["discovery.max_file_bytes"])

    def _reader(self) -> Any:
        """The searcher this Index keeps (its read connection and caches are reused between calls)."""
        from codeindex.search.searcher import Searcher

        if self._searcher is None:
            self._searcher = Searcher(self.index_dir, self.config)
        return self._searcher

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
             warnings: list[str], paths: set[str] | None = None, prepared: IndexState | None = None) -> RunReport:
        from codeindex.engine.run import run

        return run(self.layout, self.config, kind, progress=progress, scheduler=scheduler, embedder=embedder,
                   warnings=warnings, paths=paths, prepared=prepared)

    def _require_root(self) -> None:
        """The tree must still be there: taking the lock would create the index folder, and the root with it."""
        if not self.root.is_dir():
            raise UsageError(f"the indexed tree {self.root} no longer exists (moved or removed)",
                             hint="pass the tree's current path")

    def _relative_paths(self, paths: Iterable[str | os.PathLike[str]]) -> set[str]:
        """Root-relative POSIX paths; the root itself is "" (everything). A path outside is a usage error."""
        out: set[str] = set()
        for path in paths:
            absolute = os.path.normpath(os.path.join(self.root, os.fspath(path)))
            relative = os.path.relpath(absolute, self.root)
            if relative == os.pardir or relative.startswith(os.pardir + os.sep):
                raise UsageError(f"not under the indexed root {self.root}: {path}")
            out.add("" if relative == os.curdir else Path(relative).as_posix())
        return out


__all__ = ["INDEX_DIR_NAME", "Index", "RunReport", "UpdatePlan"]
