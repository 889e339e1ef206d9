"""Mend a damaged index without a rebuild, from what it still holds.

``update`` runs this under the writer lock before planning, when ``store/integrity.py`` found damage
(the quick check every update runs, or the full one of ``update --repair``). What it can mend:

* **Lost vectors** (a segment missing, truncated or failing its checksum; vectors the tables list
  but no segment holds): re-embedded with the index's own embedder from the chunk texts stored in
  ``chunks``, under their old vector ids, into a new segment. Chunk rows do not change.
* **The lexical index** (statistics that disagree with the chunks, chunks without postings, a missing
  or unreadable ``postings`` or ``lex_stats``): rebuilt from the chunks.
* **Inconsistent file rows** (chunks of unknown files, wrong chunk counts, doubled rows): the rows and
  their chunks are dropped, so the update that follows reads, hashes and indexes those files again.
* **Derived tables** (``tombstones``, ``merkle_nodes``, ``runs``) missing or unreadable: recreated;
  the Merkle snapshot recomputed from the file rows; stale id counters moved past what is used.
* Segments whose stat moved but whose checksum still matches (a copied index): the new stat recorded.

Everything is written in one transaction after the new segment is sealed, like a run's commit: a
crash in between leaves the damaged state (which the next update repairs again), never a third one.
Damage in a primary table (chunks, files, vectors, segments, meta) cannot be mended: the error says
so and names ``codeindex rebuild``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from codeindex.changes.merkle import build_tree
from codeindex.changes.plan import IndexState
from codeindex.config import Config
from codeindex.embedders.choice import EmbedderChoice, settings_from_config
from codeindex.engine.pipeline import join_embed_text
from codeindex.engine.tasks import vector_key
from codeindex.errors import REBUILD_HINT, CorruptIndexError
from codeindex.progress import ProgressCallback, ProgressEvent
from codeindex.store import db as dbm
from codeindex.store.integrity import Problem, damage_error, quick_check, verify_index
from codeindex.store.layout import IndexLayout
from codeindex.store.lock import ensure_still_held
from codeindex.store.postings import cluster_postings
from codeindex.store.schema import POSTINGS_DDL, TABLES
from codeindex.store.segments import SegmentInfo, SegmentWriter, next_free_segment, segment_rows

LEXICAL_BATCH = 20_000
"""Chunks analysed per batch while rebuilding the postings (memory stays flat on large indexes)."""


@dataclass(slots=True)
class RepairOutcome:
    """What a repair did, in sentences for the run report, and how many vectors it re-embedded."""

    done: list[str] = field(default_factory=list)
    reembedded: int = 0
    seconds: float = 0.0


def find_damage(layout: IndexLayout, state: IndexState, *, full: bool) -> tuple[list[Problem], dict[str, str]]:
    """The problems to mend and the segments whose new stat to record: the quick check, or everything."""
    assert state.integrity is not None
    problems, restat = quick_check(layout.index_dir, state.integrity)
    problems = [*state.damage, *problems]
    if full:
        report = verify_index(layout.index_dir, layout.db_path)
        seen = {str(p) for p in problems}
        problems.extend(p for p in report.problems if str(p) not in seen)
    return problems, restat


def repair(layout: IndexLayout, config: Config, state: IndexState, problems: Sequence[Problem],
           restat: dict[str, str], progress: ProgressCallback) -> RepairOutcome:
    """Mend ``problems`` (all repairable, else ``CorruptIndexError``) in one transaction."""
    started = time.perf_counter()
    fatal = [p for p in problems if not p.repairable]
    if fatal:
        raise damage_error(fatal, layout.index_dir)
    outcome = RepairOutcome()
    kinds = {p.kind for p in problems}
    lost_segments = {int(p.items[0]) for p in problems if p.kind in ("segment-missing", "segment-damaged")}
    lost_vectors = {int(v) for p in problems if p.kind == "vectors-lost" for v in p.items}
    unused = sorted({int(v) for p in problems if p.kind == "vectors-unused" for v in p.items})
    extra = [(int(p.items[0]), [int(v) for v in p.items[1:]]) for p in problems if p.kind == "segment-extra"]
    bad_paths = sorted({str(x) for p in problems if p.kind == "files" for x in p.items})
    tables = {str(p.items[0]): p.kind for p in problems if p.kind in ("table-missing", "table-damaged")}
    rebuild_lexical = "lexical" in kinds or bool({"postings", "lex_stats"} & set(tables))
    if "tombstones" in tables:
        extra.extend(_untracked_ids(layout, state, lost_segments))
    writer: SegmentWriter | None = None
    sealed: list[SegmentInfo] = []
    try:
        todo: list[tuple[int, str, str, int]] = []
        if lost_segments or lost_vectors:
            choice = recorded_embedder(config, state.meta, layout)
            with dbm.open_db(layout.db_path, read_only=True) as con:
                todo = _vectors_to_embed(con, lost_segments, lost_vectors, choice)
        if todo:
            progress(ProgressEvent("repair", detail={"vectors": len(todo)}))
            first = max(int(state.meta.get("next_segment", "0")), next_free_segment(layout.index_dir))
            writer = SegmentWriter(layout.index_dir, choice.dim, first,
                                   max_vectors=config["store.segment_max_vectors"],
                                   ann_min_vectors=config["store.ann_min_vectors"], bulk=False)
            vectors = _embed(choice, todo)
            placed = writer.add(np.array([t[0] for t in todo], dtype=np.int64), vectors)
            sealed = writer.finish()
        ensure_still_held(layout.index_dir)
        layout.check_root()
        with dbm.open_db(layout.db_path, read_only=False) as con:
            con.execute("BEGIN")
            for table, kind in tables.items():
                if kind == "table-damaged":
                    con.execute(f"DROP TABLE IF EXISTS {table}")
                state_word = "unreadable" if kind == "table-damaged" else "missing"
                outcome.done.append(f"recreated table {table} ({state_word})")
            con.execute(TABLES)  # creates only what is missing
            con.execute(POSTINGS_DDL)
            if todo or lost_segments:
                _replace_vectors(con, layout, lost_segments, todo, placed, sealed)
                names = ", ".join(f"seg-{n:06d}.faiss" for n in sorted(lost_segments)) or "the segments"
                outcome.reembedded = len(todo)
                outcome.done.append(f"re-embedded {len(todo)} lost vector(s) of {names} from the stored chunk "
                                    f"texts into {', '.join(s.file for s in sealed) or 'no new segment'}")
            if unused:
                _tombstone(con, unused)
                outcome.done.append(f"tombstoned {len(unused)} vector(s) no chunk uses")
            for segment, ids in extra:
                if ids:
                    dbm.register_list(con, "extra_ids", "vec_id", ids, pa.int64())
                    con.execute("INSERT INTO tombstones SELECT vec_id, ? FROM extra_ids", [segment])
                    outcome.done.append(f"tombstoned {len(ids)} untracked vector(s) of segment {segment}")
            if bad_paths:
                _drop_files(con, bad_paths, lexical_rebuilt=rebuild_lexical)
                outcome.done.append(f"dropped the inconsistent rows of {len(bad_paths)} file(s) (e.g. "
                                    f"{bad_paths[0]}): this update reads, hashes and indexes them again")
            if rebuild_lexical:
                n = _rebuild_lexical(con)
                outcome.done.append(f"rebuilt the lexical index from {n} chunk(s)")
            if bad_paths or "merkle" in kinds or "merkle_nodes" in tables:
                _rebuild_merkle(con)
                outcome.done.append("recomputed the Merkle snapshot from the file rows")
            if "counters" in kinds:
                _fix_counters(con)
                outcome.done.append("moved the id counters past the ids in use")
            live_restat = {f: s for f, s in restat.items() if f not in {s.file for s in sealed}}
            for file, token in live_restat.items():
                con.execute("UPDATE segments SET file_stat = ? WHERE file = ?", [token, file])
            if live_restat:
                outcome.done.append(f"recorded the new stat of {len(live_restat)} segment(s) whose checksum "
                                    "still matches (a copied or touched index)")
            con.execute("COMMIT")
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    for number in lost_segments:  # no longer referenced: the damaged files go, as orphans would
        with contextlib.suppress(OSError):
            (layout.index_dir / f"seg-{number:06d}.faiss").unlink()
    outcome.seconds = time.perf_counter() - started
    progress(ProgressEvent("repair", done=len(outcome.done), detail={"repaired": list(outcome.done)}))
    return outcome


# ---------------------------------------------------------------------------------------------- vectors


def recorded_embedder(config: Config, meta: dict[str, str], layout: IndexLayout) -> EmbedderChoice:
    """The embedder the index was built with, exactly: a lost vector must be re-made by the same model
    (whatever the configuration now asks for), or it would sit among vectors it cannot be compared with."""
    from codeindex.plugins import get_plugin_manager

    backend_name = meta.get("embedder_backend", "")
    settings = settings_from_config(config, meta.get("embedder_model", ""))
    try:
        backend = get_plugin_manager().embedder_backend(backend_name)
        model_id, dim, max_tokens = backend.identify(settings)
    except Exception as exc:  # the backend is gone or broken: nothing can re-make those vectors
        raise CorruptIndexError(f"the index at {layout.index_dir} lost vectors, and its embedder {backend_name!r} "
                                f"cannot re-make them here: {exc}", hint=REBUILD_HINT) from exc
    if model_id != meta.get("model_id") or str(dim) != meta.get("dim", str(dim)):
        raise CorruptIndexError(f"the index at {layout.index_dir} lost vectors of {backend_name}:"
                                f"{meta.get('model_id')}, but that model is now {model_id}: they cannot be "
                                "re-made alike", hint=REBUILD_HINT)
    return EmbedderChoice(backend_name, settings, model_id, dim, max_tokens)



def _vectors_to_embed(con: duckdb.DuckDBPyConnection, lost_segments: set[int], lost_vectors: set[int],
                      choice: EmbedderChoice) -> list[tuple[int, str, str, int]]:
    """(vec_id, key, embed text, tokens) of every lost vector a live chunk still uses, one chunk each."""
    ids = set(lost_vectors)
    if lost_segments:
        dbm.register_list(con, "lost_segments", "segment", sorted(lost_segments), pa.int32())
        ids.update(r[0] for r in con.execute("SELECT vec_id FROM vectors WHERE segment IN "
                                             "(SELECT segment FROM lost_segments)").fetchall())
    if not ids:
        return []
    dbm.register_list(con, "lost_vectors", "vec_id", sorted(ids), pa.int64())
    rows = con.execute("SELECT DISTINCT ON (vec_id) vec_id, embed_head, text, n_tokens FROM chunks "
                       "WHERE vec_id IN (SELECT vec_id FROM lost_vectors) ORDER BY vec_id, chunk_id").fetchall()
    out = []
    for vec_id, head, text, n_tokens in rows:
        embed_text = join_embed_text(head or "", text or "")
        out.append((int(vec_id), vector_key(choice.key_prefix, embed_text), embed_text, int(n_tokens or 1)))
    return out


def _embed(choice: EmbedderChoice, todo: Sequence[tuple[int, str, str, int]]) -> np.ndarray:
    from codeindex.embedders.batching import embed_batched
    from codeindex.embedders.runtime import get_embedder

    embedder = get_embedder(choice.backend, choice.settings)
    return np.asarray(embed_batched(embedder, [t[2] for t in todo], [t[3] for t in todo],
                                    choice.settings.batch_tokens), dtype=np.float32)


def _replace_vectors(con: duckdb.DuckDBPyConnection, layout: IndexLayout, lost_segments: set[int],
                     todo: Sequence[tuple[int, str, str, int]], placed: Sequence[int],
                     sealed: Sequence[SegmentInfo]) -> None:
    """Point the re-embedded vector ids at the new segment; forget the lost segments and their dead ids."""
    if lost_segments:
        dbm.register_list(con, "gone_segments", "segment", sorted(lost_segments), pa.int32())
        con.execute("DELETE FROM tombstones WHERE segment IN (SELECT segment FROM gone_segments)")
        con.execute("DELETE FROM vectors WHERE segment IN (SELECT segment FROM gone_segments)")
        con.execute("DELETE FROM segments WHERE segment IN (SELECT segment FROM gone_segments)")
    if todo:
        dbm.register_list(con, "renewed", "vec_id", [t[0] for t in todo], pa.int64())
        con.execute("DELETE FROM vectors WHERE vec_id IN (SELECT vec_id FROM renewed)")
        dbm.insert_arrow(con, "vectors", pa.table({
            "vec_key": pa.array([t[1] for t in todo], pa.string()),
            "vec_id": pa.array([t[0] for t in todo], pa.int64()),
            "segment": pa.array(list(placed), pa.int32())}))
    if sealed:
        dbm.insert_arrow(con, "segments", segment_rows(layout.index_dir, list(sealed)))
        next_segment = max(s.segment for s in sealed) + 1
        current = int(dbm.get_meta(con).get("next_segment", "0"))
        dbm.set_meta(con, {"next_segment": str(max(current, next_segment))})


def _tombstone(con: duckdb.DuckDBPyConnection, vec_ids: Sequence[int]) -> None:
    dbm.register_list(con, "unused_vectors", "vec_id", list(vec_ids), pa.int64())
    con.execute("INSERT INTO tombstones SELECT vec_id, segment FROM vectors "
                "WHERE vec_id IN (SELECT vec_id FROM unused_vectors)")
    con.execute("DELETE FROM vectors WHERE vec_id IN (SELECT vec_id FROM unused_vectors)")


def _untracked_ids(layout: IndexLayout, state: IndexState, lost_segments: set[int]) -> list[tuple[int, list[int]]]:
    """For a lost ``tombstones`` table: the ids each intact segment holds that no vector row lists."""
    import faiss

    from codeindex.store.segments import read_segment

    assert state.integrity is not None
    with dbm.open_db(layout.db_path, read_only=True) as con:
        listed: dict[int, set[int]] = {}
        for vec_id, segment in con.execute("SELECT vec_id, segment FROM vectors").fetchall():
            listed.setdefault(segment, set()).add(vec_id)
    out = []
    for rec in state.integrity.segments:
        if rec.segment in lost_segments:
            continue
        ids = faiss.vector_to_array(read_segment(layout.index_dir / rec.file).id_map).astype(np.int64).tolist()
        out.append((rec.segment, sorted(set(ids) - listed.get(rec.segment, set()))))
    return out


# ---------------------------------------------------------------------------------------------- tables


def _drop_files(con: duckdb.DuckDBPyConnection, paths: Sequence[str], *, lexical_rebuilt: bool) -> None:
    """Forget the rows of ``paths`` (files, chunks, postings); vectors left without a chunk are tombstoned."""
    from codeindex.store.postings import remove_postings

    dbm.register_list(con, "bad_paths", "path", list(paths), pa.string())
    old = dbm.arrow(con, "SELECT chunk_id, vec_id FROM chunks WHERE path IN (SELECT path FROM bad_paths)")
    if not lexical_rebuilt:
        remove_postings(con, old.column("chunk_id"))
    con.execute("DELETE FROM chunks WHERE path IN (SELECT path FROM bad_paths)")
    con.execute("DELETE FROM files WHERE path IN (SELECT path FROM bad_paths)")
    dbm.register_list(con, "bad_vectors", "vec_id", sorted(set(old.column("vec_id").to_pylist())), pa.int64())
    con.execute("""INSERT INTO tombstones SELECT v.vec_id, v.segment FROM vectors v
                   WHERE v.vec_id IN (SELECT vec_id FROM bad_vectors)
                   AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vec_id = v.vec_id)""")
    con.execute("DELETE FROM vectors WHERE vec_id IN (SELECT vec_id FROM bad_vectors) "
                "AND vec_id IN (SELECT vec_id FROM tombstones)")


def _rebuild_lexical(con: duckdb.DuckDBPyConnection) -> int:
    """Postings and statistics from the chunks, batch by batch, then stored sorted by term."""
    from codeindex.search.analysis import postings_table

    con.execute("DELETE FROM postings")
    n_docs = 0
    total_len = 0
    last = -1
    while True:
        rows = dbm.arrow(con, "SELECT chunk_id, text, path, symbol FROM chunks WHERE chunk_id > ? "
                              "ORDER BY chunk_id LIMIT ?", [last, LEXICAL_BATCH])
        if rows.num_rows == 0:
            break
        ids = rows.column("chunk_id").to_pylist()
        table, lex_lens = postings_table(ids, rows.column("text").to_pylist(), rows.column("path").to_pylist(),
                                         [s or "" for s in rows.column("symbol").to_pylist()])
        con.from_arrow(table).insert_into("postings")
        con.register("lex_fix", pa.table({"chunk_id": pa.array(ids, pa.int64()),
                                          "lex_len": pa.array(lex_lens, pa.int32())}))
        con.execute("UPDATE chunks SET lex_len = f.lex_len FROM lex_fix f "
                    "WHERE chunks.chunk_id = f.chunk_id AND chunks.lex_len IS DISTINCT FROM f.lex_len")
        con.unregister("lex_fix")
        n_docs += len(ids)
        total_len += int(sum(lex_lens))
        last = ids[-1]
    cluster_postings(con)
    con.execute("DELETE FROM lex_stats")
    con.execute("INSERT INTO lex_stats VALUES ('n_docs', ?), ('total_len', ?), ('unclustered_rows', 0), "
                "('dead_chunks', 0)", [n_docs, total_len])
    return n_docs


def _rebuild_merkle(con: duckdb.DuckDBPyConnection) -> None:
    leaves = dict(con.execute("SELECT path, hash FROM files").fetchall())
    nodes = build_tree(leaves) if leaves else {}
    con.execute("DELETE FROM merkle_nodes")
    dbm.insert_arrow(con, "merkle_nodes", pa.table({"path": pa.array(list(nodes), pa.string()),
                                                    "hash": pa.array(list(nodes.values()), pa.string())}))
    dbm.set_meta(con, {"root_hash": nodes.get("", "")})


def _fix_counters(con: duckdb.DuckDBPyConnection) -> None:
    meta = dbm.get_meta(con)
    highest = {
        "next_chunk_id": "SELECT greatest((SELECT max(chunk_id) FROM chunks), (SELECT max(chunk_id) FROM postings))",
        "next_vec_id": "SELECT greatest((SELECT max(vec_id) FROM vectors), (SELECT max(vec_id) FROM tombstones))",
        "next_segment": "SELECT max(segment) FROM segments",
    }
    values = {}
    for key, sql in highest.items():
        top = con.execute(sql).fetchall()[0][0]
        try:
            current = int(meta.get(key, "0"))
        except ValueError:
            current = 0
        values[key] = str(max(current, int(top) + 1 if top is not None else 0))
    dbm.set_meta(con, values)
