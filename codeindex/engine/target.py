"""Which database a run writes, and whether it resumes a build a killed run left behind.

* ``update`` of an existing index: the live database, in place (its checkpoints are live at once).
* a first build (no index yet): the live database too, created at its first commit, so the new index
  answers lexical searches within seconds while it embeds. Until its final commit the database is
  marked ``build_in_progress``; a ``rebuild`` then resumes it in place.
* ``rebuild`` of an existing index: ``build.duckdb`` beside it. The old index keeps serving; the
  build checkpoints into its own file and is renamed over the live one when complete. A killed
  rebuild's file is resumed by the next ``rebuild`` when it was built with the same embedder.

Resuming is an update of the build's own committed state: files it committed at their current content
are kept, the rest is parsed, and its pending vectors are embedded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from codeindex.changes.plan import IndexState
from codeindex.embedders.choice import EmbedderChoice
from codeindex.errors import CodeIndexError
from codeindex.store import db as dbm
from codeindex.store.layout import IndexLayout

log = logging.getLogger("codeindex.engine.target")


@dataclass(frozen=True, slots=True)
class Target:
    db_path: Path
    """The database the run's commits write."""
    fresh: bool
    """No database there yet: the first commit creates it (as ``<name>.new``, renamed into place)."""
    swap: bool
    """A rebuild beside the live index: its database replaces the live one after the final commit."""
    first_build: bool
    """No complete index is committed here: the first checkpoint comes early (lexical search at once)."""
    resumed: bool = False
    """Continues a build a killed or interrupted run left (its committed files and vectors are kept)."""


def update_target(layout: IndexLayout) -> Target:
    if layout.exists():
        return Target(layout.db_path, fresh=False, swap=False, first_build=False)
    return Target(layout.db_path, fresh=True, swap=False, first_build=True)


def rebuild_target(layout: IndexLayout, choice: EmbedderChoice) -> Target:
    """Where a rebuild writes: a resumable build if one matches ``choice``, else a fresh database."""
    build = layout.build_db_path
    if build.exists():
        if _same_embedder(build, choice):
            return Target(build, fresh=False, swap=True, first_build=False, resumed=True)
        log.info("discarding the unfinished rebuild in %s (another embedder, or unreadable)", build)
        discard_build(layout)
    if not layout.exists():
        return Target(layout.db_path, fresh=True, swap=False, first_build=True)
    meta = _meta(layout.db_path)
    if meta is not None and meta.get("build_in_progress") and _matches(meta, choice):
        return Target(layout.db_path, fresh=False, swap=False, first_build=True, resumed=True)
    return Target(build, fresh=True, swap=True, first_build=False)


def has_pending(state: IndexState) -> bool:
    """A killed run committed chunks whose vectors it did not finish (or a build it did not finish): an
    update with no change still has that work to do."""
    return state.meta.get("vectors_pending", "0") != "0" or bool(state.meta.get("build_in_progress"))


def discard_build(layout: IndexLayout) -> None:
    """Remove a resumable build that cannot be resumed (its segments become orphans, removed next)."""
    for path in (layout.build_db_path, layout.build_db_path.with_name(layout.build_db_path.name + ".wal")):
        path.unlink(missing_ok=True)


def _meta(db_path: Path) -> dict[str, str] | None:
    try:
        with dbm.open_db(db_path, read_only=True) as con:
            dbm.check_schema(con, db_path)
            return dbm.get_meta(con)
    except CodeIndexError:
        return None


def _matches(meta: dict[str, str], choice: EmbedderChoice) -> bool:
    return meta.get("embedder_backend") == choice.backend and meta.get("model_id") == choice.model_id


def _same_embedder(db_path: Path, choice: EmbedderChoice) -> bool:
    meta = _meta(db_path)
    return meta is not None and _matches(meta, choice)
