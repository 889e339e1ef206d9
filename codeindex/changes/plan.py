"""The update plan: what changed since the committed snapshot, and the rules that decide it.

``read_state`` reads the committed snapshot (through the run's read session); ``make_plan`` walks and scans
the tree, diffs the Merkle leaves, and applies the planning rules (a parser identity change means
reparse, a model change means re-embed); ``estimate`` prices a plan from recorded throughput.
A plan can be scoped to the paths a file watcher saw change (``make_plan(paths=...)``): only those
are walked and hashed, every other file keeps its committed leaf. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from codeindex.changes import merkle
from codeindex.changes.discovery import Discovery, rescan_scope
from codeindex.changes.scan import discover_and_scan
from codeindex.config import Config
from codeindex.embedders.choice import EmbedderChoice
from codeindex.errors import NotIndexedError
from codeindex.languages import LanguageMap, parser_identity
from codeindex.models import FileStat
from codeindex.plugins import get_plugin_manager
from codeindex.progress import ProgressCallback, ProgressEvent
from codeindex.store import db as dbm
from codeindex.store.integrity import IntegrityFacts, Problem, check_schema
from codeindex.store.layout import IndexLayout
from codeindex.store.reader import Stamp, database_stamp
from codeindex.store.session import ReadSession


@dataclass(slots=True)
class SnapshotRow:
    stat: FileStat
    hash: str
    language: str
    parser_id: str
    n_chunks: int
    skip_reason: str | None


@dataclass(slots=True)
class UpdatePlan:
    """What an ``update`` would do. ``codeindex update --plan`` prints it; nothing is written."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    reparse: list[str] = field(default_factory=list)
    unchanged: int = 0
    stat_only: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    by_language: dict[str, dict[str, int]] = field(default_factory=dict)
    model_change: str | None = None
    estimated_chunks: int = 0
    estimated_tokens: int = 0
    estimated_seconds: float | None = None
    files_seen: int = 0
    rehashed: int = 0
    scoped: bool = False
    """Only the paths given to ``make_plan`` were walked (the rest kept their committed leaves)."""
    nodes: dict[str, str] = field(default_factory=dict, repr=False)
    """The new Merkle directory nodes (not part of the printed plan)."""

    @property
    def to_parse(self) -> list[str]:
        return sorted({*self.added, *self.modified, *self.reparse})

    def is_noop(self) -> bool:
        return not (self.added or self.modified or self.deleted or self.moved or self.reparse or self.model_change)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["nodes"]
        out["moved"] = [list(m) for m in self.moved]
        return out


@dataclass(slots=True)
class IndexState:
    """The committed snapshot a run starts from (empty for a first build or a rebuild)."""

    meta: dict[str, str] = field(default_factory=dict)
    snapshot: dict[str, SnapshotRow] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)
    runs_throughput: tuple[float, float] | None = None  # (tokens per second, tokens per chunk)
    stamp: Stamp = ()
    """The database's stamp before it was read (``store.reader.database_stamp``): while the stamp is
    unchanged, nothing was committed since, so the state read earlier is still the committed one."""
    integrity: IntegrityFacts | None = None
    """What ``store/integrity.py: quick_check`` needs (segment records, lexical counts)."""
    damage: list[Problem] = field(default_factory=list)
    """Damage found while reading (tables ``update`` can recreate are missing)."""


def read_state(layout: IndexLayout, session: ReadSession | None = None, *, require: bool) -> IndexState:
    """The committed snapshot, read through ``session`` (the run's read session) or a brief one of its own."""
    if not layout.exists():
        if require:
            raise NotIndexedError(f"no index at {layout.index_dir}")
        return IndexState()
    if session is None:
        with ReadSession(layout.db_path) as own:
            return read_state(layout, own, require=require)
    stamp = database_stamp(layout.db_path)  # before the read: a commit in between is seen as a change
    con = session.con()
    try:
        damage = check_schema(con, layout.db_path)  # raises unless update could recreate what is missing
        missing = {p.items[0] for p in damage}
        meta = dbm.get_meta(con)
        files = con.execute("SELECT path, size, mtime_ns, inode, ctime_ns, hash, language, parser_id, "
                            "n_chunks, skip_reason FROM files").fetchall()
        nodes = dict(con.execute("SELECT path, hash FROM merkle_nodes").fetchall()) \
            if "merkle_nodes" not in missing else {}
        tp = None if "runs" in missing else dbm.first_row(
            con, "SELECT sum(tokens_embedded), sum(json_extract(stages_json, '$.embed_s')::DOUBLE), "
            "sum(chunks_embedded) FROM runs WHERE tokens_embedded > 0")
        integrity = IntegrityFacts.read(con, missing)
    except duckdb.Error as exc:
        typed = dbm.typed_error(exc, layout.db_path)
        if typed is exc:
            raise
        raise typed from exc
    snapshot = {p: SnapshotRow(FileStat(s, m, i, c), h, lang, pid, n, r)
                for p, s, m, i, c, h, lang, pid, n, r in files}
    throughput = None
    if tp and tp[0] and tp[1]:
        throughput = (float(tp[0]) / float(tp[1]), float(tp[0]) / max(1.0, float(tp[2] or 1)))
    return IndexState(meta, snapshot, nodes, throughput, stamp, integrity, damage)


def still_current(state: IndexState | None, layout: IndexLayout) -> bool:
    """Whether ``state`` (read earlier, maybe outside the writer lock) is still the committed state."""
    return state is not None and bool(state.stamp) and state.stamp == database_stamp(layout.db_path)


PARSE_FAILURES = ("parse-error", "parser-unavailable")
"""Skip reasons of files whose parse failed: retried when their parser's identity changes (a fixed,
upgraded plugin) or on ``update --retry-failed``; the reason holds the parser's message."""


def make_plan(layout: IndexLayout, config: Config, state: IndexState, choice: EmbedderChoice,
              progress: ProgressCallback, *, retry_failed: bool = False,
              paths: Collection[str] | None = None) -> tuple[UpdatePlan, Discovery, dict[str, str]]:
    """Walk, scan and diff the tree against ``state``: the plan, what discovery found, the new leaves.

    ``paths`` (root-relative POSIX paths of files or directories that may have changed, e.g. what a
    file watcher reported) scopes the plan to them: the result is the plan a full walk would make
    if nothing else had changed. A model change, a change that can affect the whole tree
    (``discovery.rescan_scope``) or a state without a snapshot makes it a full plan.
    ``retry_failed`` reparses every file whose parse failed (``PARSE_FAILURES``).
    """
    manager = get_plugin_manager()
    lang_map = LanguageMap.from_parsers(manager.parsers())
    snapshot_time = int(state.meta.get("snapshot_time_ns", "0"))
    model_change = _model_change(state, choice)
    scopes = scan_scopes(paths) if paths is not None and state.snapshot and state.nodes and not model_change \
        else None
    progress(ProgressEvent("discover"))
    # the walk and the hashing of what it finds overlap: see scan.OverlappedScan
    found, scanned = discover_and_scan(layout.root, lang_map.language_of, state.snapshot, snapshot_time,
                                       max_file_bytes=config["discovery.max_file_bytes"],
                                       exclude=layout.excluded_names(), within=scopes)
    progress(ProgressEvent("discover", done=len(found.files), total=len(found.files)))
    progress(ProgressEvent("hash", done=len(scanned.rehashed), total=len(found.files)))
    # seen: every entry the walk met, a skipped directory once (engine/report.py says why it is one rule)
    plan = UpdatePlan(files_seen=len(found.files) + sum(found.skipped.values()), skipped=dict(found.skipped),
                      unreadable=dict(scanned.unreadable), rehashed=len(scanned.rehashed),
                      model_change=model_change)
    # A directory that cannot be listed is treated as its files would be: unreadable, entries kept.
    for path, directory in under_dirs(state.snapshot, found.unreadable_dirs):
        plan.unreadable[path] = f"directory {directory}/ unreadable: {found.unreadable_dirs[directory]}"
    rows: Iterable[tuple[str, SnapshotRow]] = state.snapshot.items()
    if scopes is None:
        new_leaves = scanned.hashes
        # unreadable files keep their previous entries: never lose data because of a transient error
        old_leaves = {p: r.hash for p, r in state.snapshot.items() if p not in plan.unreadable}
        diff = merkle.diff_trees(old_leaves, new_leaves)  # a dict comparison: milliseconds at 100k files
    else:
        new_leaves, diff, rows = _scoped_diff(state, scopes, scanned.hashes, plan.unreadable)
        plan.scoped = True
        plan.files_seen = len(new_leaves) + len(scanned.unreadable)
        plan.skipped = json.loads(state.meta.get("discovery_skipped") or "{}")  # the last full walk's counts
    if state.nodes and not plan.unreadable:  # re-hash only the directories above what changed
        plan.nodes = merkle.update_tree(state.nodes, new_leaves, diff.changed_paths())
    else:
        plan.nodes = merkle.build_tree(new_leaves)
    plan.added, plan.modified, plan.deleted = diff.added, diff.modified, diff.deleted
    plan.unchanged = diff.unchanged
    languages = {f.path: f.language for f in found.files}
    stats = {f.path: f.stat for f in found.files}
    parsers = {p.name: p for p in manager.parsers()}
    identities: dict[str, str] = {}  # language -> parser identity (config_hash is not free)

    def identity(language: str) -> str:
        if language not in identities:
            parser = parsers.get(lang_map.parser_for(language) or "")
            identities[language] = parser_identity(parser, language) if parser else ""
        return identities[language]

    def parsed_as_now(row: SnapshotRow, language: str) -> bool:
        """The stored chunks are what parsing the file as ``language`` today would give. A failed parse
        stands until its parser's identity changes (a fixed, upgraded plugin) or ``retry_failed``."""
        if row.language != language:
            return False
        if row.skip_reason is None:
            return row.parser_id == identity(language)
        if row.skip_reason.startswith(PARSE_FAILURES):
            return not retry_failed and row.parser_id == identity(language)
        return True

    # A move carries the stored chunk rows to the new path without re-parsing, which is exact only when
    # the new path is parsed the same way (same language, same parser identity); otherwise it is a
    # deletion plus an addition (``app.sh`` renamed ``app.py`` must be parsed as Python).
    for old, new in diff.moved:
        if parsed_as_now(state.snapshot[old], languages[new]):
            plan.moved.append((old, new))
        else:
            plan.deleted.append(old)
            plan.added.append(new)
    plan.deleted.sort()
    plan.added.sort()
    changed = {*plan.added, *plan.modified, *(new for _, new in plan.moved)}
    for path, row in rows:
        if path not in new_leaves or path in changed:
            continue
        if stats[path] != row.stat:
            plan.stat_only.append(path)
        if not parsed_as_now(row, languages[path]):
            plan.reparse.append(path)
    added, modified = set(plan.added), set(plan.modified)
    for path in plan.to_parse:
        entry = plan.by_language.setdefault(languages[path], {"add": 0, "modify": 0, "reparse": 0})
        entry["add" if path in added else "modify" if path in modified else "reparse"] += 1
    for _, new in plan.moved:
        plan.by_language.setdefault(languages[new], {"add": 0, "modify": 0, "reparse": 0})
        plan.by_language[languages[new]]["move"] = plan.by_language[languages[new]].get("move", 0) + 1
    return plan, found, new_leaves


def under_dirs(paths: Iterable[str], dirs: Mapping[str, str]) -> list[tuple[str, str]]:
    """(path, directory) for each of ``paths`` inside one of ``dirs`` (relative directories), at any depth."""
    if not dirs:
        return []
    out = []
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in dirs:
            parent = parent.rpartition("/")[0]
        if parent:
            out.append((path, parent))
    return sorted(out)


def _model_change(state: IndexState, choice: EmbedderChoice) -> str | None:
    """What changed in the embedder since the committed state ("old -> new"), or None."""
    if state.meta.get("model_id") and state.meta.get("model_id") != choice.model_id:
        return (f"{state.meta.get('embedder_backend')}:{state.meta.get('model_id')} -> "
                f"{choice.backend}:{choice.model_id}")
    if state.meta.get("embedder_backend") and state.meta["embedder_backend"] != choice.backend:
        return f"{state.meta['embedder_backend']} -> {choice.backend}"
    return None


def scan_scopes(paths: Iterable[str]) -> set[str] | None:
    """The subtrees a plan scoped to ``paths`` must walk, or None when one of them is the whole tree."""
    scopes: set[str] = set()
    for path in paths:
        scope = rescan_scope(path)
        if scope == "":
            return None
        if scope is not None:
            scopes.add(scope)
    return scopes


def _scoped_diff(state: IndexState, scopes: Collection[str], hashes: dict[str, str], unreadable: Collection[str],
                 ) -> tuple[dict[str, str], merkle.TreeDiff, list[tuple[str, SnapshotRow]]]:
    """The new leaves, the diff and the snapshot rows concerned when only ``scopes`` were walked.

    Files outside the scopes keep their committed leaves, so the diff is that of the files inside:
    the same diff a full walk makes when nothing outside changed, without comparing every leaf.
    """
    touched = {s for s in scopes if s in state.snapshot}
    old_dirs = {s for s in scopes if s in state.nodes}  # merkle_nodes lists every directory holding a file
    if old_dirs:
        for path in state.snapshot:
            parent = path.rpartition("/")[0]
            while parent:
                if parent in old_dirs:
                    touched.add(path)
                    break
                parent = parent.rpartition("/")[0]
    old_inside = {p: state.snapshot[p].hash for p in touched if p not in unreadable}
    diff = merkle.diff_trees(old_inside, hashes)
    new_leaves = {p: r.hash for p, r in state.snapshot.items() if p not in touched}
    new_leaves.update(hashes)
    diff.unchanged = len(new_leaves) - len(diff.added) - len(diff.modified) - len(diff.moved)
    return new_leaves, diff, [(p, state.snapshot[p]) for p in sorted(touched)]


def estimate(layout: IndexLayout, plan: UpdatePlan, state: IndexState) -> None:
    """Fill the plan's chunk, token and time estimates from the snapshot and recorded throughput."""
    indexed = [r for r in state.snapshot.values() if r.skip_reason is None]
    total_bytes = sum(r.stat.size for r in indexed) or 1
    chunks_per_byte = sum(r.n_chunks for r in indexed) / total_bytes
    sizes = {p: r.stat.size for p, r in state.snapshot.items()}
    parse_bytes = 0
    for path in plan.to_parse:
        size = sizes.get(path, 0)
        if not size:
            try:  # an escaped non-UTF-8 name or a file gone since the walk: nothing to price
                size = (layout.root / path).stat().st_size
            except OSError:
                size = 0
        parse_bytes += size
    plan.estimated_chunks = round(parse_bytes * chunks_per_byte)
    if plan.model_change:
        plan.estimated_chunks = sum(r.n_chunks for r in indexed)
    if state.runs_throughput:
        tokens_per_s, tokens_per_chunk = state.runs_throughput
        plan.estimated_tokens = round(plan.estimated_chunks * tokens_per_chunk)
        plan.estimated_seconds = round(plan.estimated_tokens / tokens_per_s, 2) if tokens_per_s else None
