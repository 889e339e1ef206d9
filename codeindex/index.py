"""``Index``: the Python API behind the CLI (``codeindex rebuild`` ↔ ``Index.rebuild`` and so on).

A thin facade: it resolves paths and settings into an ``IndexLayout`` and hands it to the stages.
A write takes the writer lock and runs ``engine.run``: read the snapshot (brief DB open) → discover →
stat-gated scan → Merkle diff → pipeline (DB closed: searches keep working) → one commit transaction
→ clean up. A search goes to ``search.searcher.Searcher``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

from codeindex.changes.names import display_name, is_clean
from codeindex.changes.plan import IndexState, UpdatePlan, estimate, make_plan, read_state
from codeindex.config import Config, load_config
from codeindex.embedders.choice import choose_embedder
from codeindex.engine.report import RunReport
from codeindex.errors import NotIndexedError, UsageError
from codeindex.progress import ProgressCallback, ProgressEvent, no_progress
from codeindex.search.validate import as_list, check_k
from codeindex.store.layout import INDEX_DIR_NAME, IndexLayout, check_access, owning_tree, refuse_broad_root
from codeindex.store.lock import writer_lock

if TYPE_CHECKING:
    from codeindex.explain import FileRecord, WhyReport
    from codeindex.search.searcher import SearchResult
    from codeindex.store.integrity import VerifyReport


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
        self.requested_root = self.root
        """The folder asked for; ``root`` is the indexed tree holding it when that tree has the index."""
        if not index_dir and not (self.root / INDEX_DIR_NAME).exists():
            owner = owning_tree(self.root)
            if owner is not None:
                self.root = owner
        self.index_dir = Path(index_dir).expanduser().resolve() if index_dir else self.root / INDEX_DIR_NAME
        if self.index_dir == self.root:
            raise UsageError(f"the index folder cannot be the indexed tree itself: {self.root}",
                             hint="leave --index-dir out (PATH/.codeindex) or pass a folder of its own")
        if "?" in str(self.index_dir):  # DuckDB reads "?" as the start of URL parameters in a file path
            raise UsageError(f"the index directory's path contains '?', which DuckDB cannot open: {self.index_dir}",
                             hint="pass --index-dir with a path without '?'")
        if not is_clean(str(self.index_dir)):
            raise UsageError(f"the index directory's path is not valid UTF-8, which DuckDB cannot open: "
                             f"{display_name(str(self.index_dir))}",
                             hint="pass --index-dir with a path that is valid UTF-8")
        check_access(self.index_dir)
        self.config = config or load_config(self.root, {**(settings or {}), **overrides})
        self.layout = IndexLayout(self.root, self.index_dir)
        self._searcher: Any = None
        self._prepared: IndexState | None = None

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
                embedder: str | None = None, wait: bool = False, force: bool = False) -> RunReport:
        """Index the tree from scratch into a new database, swapped in atomically at the end.

        ``force`` allows ``/`` and the home folder (refused otherwise: ``layout.refuse_broad_root``).
        A subfolder of an indexed tree is refused: rebuild that tree, or give the subfolder its own
        ``index_dir``.
        """
        if self.root != self.requested_root:
            raise UsageError(f"{self.requested_root} is part of the tree indexed at {self.root}",
                             hint=f"`codeindex update` keeps it current; `codeindex rebuild {self.root}` rebuilds "
                                  "that whole index; --index-dir gives the subfolder an index of its own")
        if not force:
            refuse_broad_root(self.root)
        self._require_root()
        with self._lock(wait, progress) as lock_warnings:
            return self._run("rebuild", progress, scheduler, embedder, lock_warnings)

    def update(self, *, progress: ProgressCallback = no_progress, scheduler: str | None = None,
               embedder: str | None = None, wait: bool = False, force: bool = False,
               paths: Iterable[str | os.PathLike[str]] | None = None, repair: bool = False,
               retry_failed: bool = False) -> RunReport:
        """Re-index what changed since the last run (a rebuild if there is no index yet).

        Run on a subfolder of an indexed tree, it updates that tree's index (and says so).
        ``paths``: only these files or directories (absolute, or relative to the root) may have changed,
        as a file watcher reports: they alone are walked and hashed, the rest of the committed
        snapshot is kept as it is. Exact for what changed there; a change elsewhere waits for the next
        full ``update``. ``force`` allows ``/`` and the home folder for a first build.
        Damage the quick integrity check finds is mended first (``report.repairs`` says what);
        ``repair`` runs the full check of ``verify`` first. ``retry_failed`` parses again every file
        whose parse failed, even if neither it nor its parser changed.
        """
        if not force and not self.exists():
            refuse_broad_root(self.root)
        scoped = None if paths is None else self._relative_paths(paths)
        self._require_root()
        prepared, self._prepared = self._prepared, None
        with self._lock(wait, progress) as lock_warnings:
            kind = "update" if self.exists() else "rebuild"
            if self.root != self.requested_root:
                lock_warnings.append(f"{self.requested_root} is part of the tree indexed at {self.root}: "
                                     "updated that index")
            return self._run(kind, progress, scheduler, embedder, lock_warnings, scoped, prepared, repair=repair,
                             retry_failed=retry_failed)

    def prepare_update(self) -> None:
        """Read the committed snapshot now, so that the next ``update`` need not if nothing commits meanwhile.

        For a live process, in its idle time: on a 20k-file tree the read is a third of a one-file
        update. Checked at use, under the writer lock, by the database's stamp.
        """
        self._prepared = read_state(self.layout, require=False)

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
               kinds: Sequence[str] = (), symbol: str | None = None, embedder: str | None = None,
               group: str | None = None, context: int = 0, reranker: str | None = None) -> list[SearchResult]:
        """Hybrid (default), vector or lexical search, best first. Results never point at deleted or
        moved-away files.

        ``k`` (default ``search.k``) is at least 1. ``languages``, ``kinds``, ``paths`` and
        ``exclude_paths`` are lists of strings; a path glob matches files and everything under a
        matching folder (``["src/click"]``). A language no parser knows or a kind the index has no chunk
        of is a ``UsageError`` listing the valid ones. ``SearchResult.score`` depends on the mode: see
        ``SearchResult``. ``group``: ``definition`` (default ``search.group``: one result per definition),
        ``file`` or ``none``; ``context``: lines before and after each result; ``reranker``: a reranker
        plugin's name (default ``search.reranker``, none).
        """
        if not isinstance(query, str):
            raise UsageError(f"query must be a string, got {type(query).__name__}")
        filters = {name: as_list(name, value) for name, value in
                   (("languages", languages), ("paths", paths), ("exclude_paths", exclude_paths), ("kinds", kinds))}
        results: list[SearchResult] = self._reader().search(
            query, k=check_k(self.config["search.k"] if k is None else k), mode=mode or self.config["search.mode"],
            symbol=symbol, embedder=embedder, group=group or self.config["search.group"], context=context,
            reranker=reranker or self.config["search.reranker"] or None, **filters)
        return results

    def warm(self) -> None:
        """Load the committed state's search structures now, so the next search does not (see Searcher.warm)."""
        self._reader().warm()

    def symbol(self, name: str, *, k: int | None = None) -> list[Any]:
        """Where ``name`` is defined: chunks whose symbol is it or ends with ``.name`` (``search/lookup.py``)."""
        return self._reader().definitions(name, k=check_k(self.config["search.k"] if k is None else k))

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
             warnings: list[str], paths: set[str] | None = None, prepared: IndexState | None = None, *,
             repair: bool = False, retry_failed: bool = False) -> RunReport:
        from codeindex.engine.run import run

        return run(self.layout, self.config, kind, progress=progress, scheduler=scheduler, embedder=embedder,
                   warnings=warnings, paths=paths, prepared=prepared, repair=repair, retry_failed=retry_failed)

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


__all__ = ["INDEX_DIR_NAME", "CompactResult", "Index", "RunReport", "UpdatePlan"]
