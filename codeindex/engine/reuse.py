"""What a run reuses instead of recomputing: stored vector keys (content addressing), the chunk rows
of moved files, carried to their new path without re-parsing, a killed run's committed chunks whose
vectors it did not finish, and the texts of committed chunks read back when they are embedded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa

from codeindex.chunking.source import module_path
from codeindex.engine.context import RunContext
from codeindex.engine.pipeline import CHUNK_SCHEMA, join_embed_text
from codeindex.engine.waiting import PendingText
from codeindex.search.analysis import postings_table
from codeindex.store import db as dbm
from codeindex.store.session import ReadSession


class KnownKeys(dict[str, int]):
    """Vector keys already stored (key -> vec_id). With a read session, ``prefetch`` fills it on demand.

    ``pending`` holds the vector ids whose rows a killed run committed before their vectors.
    """

    def __init__(self, session: ReadSession | None) -> None:
        super().__init__()
        self.session = session
        self.pending: set[int] = set()
        self._asked: set[str] = set()

    def load(self, rows: Iterable[tuple[str, int, bool]]) -> None:
        for key, vec_id, pending in rows:
            self[key] = vec_id
            if pending:
                self.pending.add(vec_id)

    def prefetch(self, keys: Iterable[str]) -> None:
        wanted = [k for k in set(keys) if k not in self._asked]
        if self.session is None or not wanted:
            return
        self._asked.update(wanted)
        con = self.session.con()
        dbm.register_list(con, "wanted_keys", "vec_key", wanted, pa.string())
        self.load(con.execute("SELECT vec_key, vec_id, segment IS NULL FROM vectors WHERE vec_key IN "
                              "(SELECT vec_key FROM wanted_keys)").fetchall())

    def is_pending(self, vec_id: int) -> bool:
        return vec_id in self.pending

    def forget(self, keys: Iterable[str]) -> None:
        """Drop keys whose vectors a checkpoint retired (the lookup must match the committed state)."""
        for key in keys:
            vec_id = self.pop(key, None)
            if vec_id is not None:
                self.pending.discard(vec_id)


def reuse_inputs(ctx: RunContext, n_items: int) -> tuple[KnownKeys, list[pa.Table], list[PendingText]]:
    """Known vector keys (content addressing), chunk rows carried without re-parsing, and the texts a
    killed run left without a vector (``resumed``: their chunks stay, only the vector is computed).

    A small update looks its keys up when it has them (one query per parse batch, on the run's read
    session); a big one loads every stored key once, which is cheaper than many look-ups. A fresh
    target (a first build, a new rebuild) has nothing to reuse.
    """
    if ctx.target.fresh:
        return KnownKeys(None), [], []
    plan = ctx.plan
    moved = plan.moved
    model_change = bool(plan.model_change)
    cols = ", ".join(f for f in CHUNK_SCHEMA.names)
    carried: list[pa.Table] = []
    lazy = n_items < ctx.config["engine.small_update_files"] and not model_change
    known = KnownKeys(ctx.reads if lazy else None)
    con = ctx.reads.con()
    if not model_change and not lazy:
        keys = dbm.arrow(con, "SELECT vec_key, vec_id, segment IS NULL AS pending FROM vectors")
        known.update(zip(keys.column(0).to_pylist(), keys.column(1).to_pylist(), strict=True))
        pending = keys.filter(keys.column("pending")).column("vec_id").to_pylist()
        known.pending.update(pending)
    replaced = [*plan.to_parse, *plan.deleted, *(old for old, _ in moved)]
    if moved:
        dbm.register_list(con, "moved_src", "path", [old for old, _ in moved])
        rows = dbm.arrow(con, f"SELECT {cols} FROM chunks WHERE path IN (SELECT path FROM moved_src) "
                           "ORDER BY path, start_byte")
        new_of = dict(moved)
        paths = rows.column("path").to_pylist()
        symbols = rows.column("symbol").to_pylist()
        new_paths = [new_of[p] for p in paths]
        new_symbols = [move_symbol(s, p, n) for s, p, n in zip(symbols, paths, new_paths, strict=True)]
        rows = rows.set_column(rows.schema.get_field_index("path"), "path", pa.array(new_paths, pa.string()))
        rows = rows.set_column(rows.schema.get_field_index("symbol"), "symbol",
                               pa.array(new_symbols, pa.string()))
        # The lexical document includes path and symbol, so a move changes lex_len too; a stale
        # one skews BM25 length normalisation (found by the crash tests: moved != rebuilt).
        _, lex_lens = postings_table(list(range(rows.num_rows)), rows.column("text").to_pylist(),
                                     new_paths, new_symbols)
        rows = rows.set_column(rows.schema.get_field_index("lex_len"), "lex_len",
                               pa.array(lex_lens, pa.int32()))
        carried.append(rows.cast(CHUNK_SCHEMA))
    if model_change:
        dbm.register_list(con, "reparsed", "path", replaced)
        rows = dbm.arrow(con, f"SELECT {cols} FROM chunks WHERE path NOT IN (SELECT path FROM reparsed) "
                           "ORDER BY path, start_byte")
        carried.append(rows.cast(CHUNK_SCHEMA))
        return known, carried, []
    return known, carried, resumed_texts(ctx, replaced)


def resumed_texts(ctx: RunContext, replaced: list[str]) -> list[PendingText]:
    """The pending vectors of chunks this run keeps: a killed run committed them before their vectors.

    Pending vectors only referenced by files this run re-parses are not resumed: those chunks go,
    and a re-parsed chunk with the same text finds the pending key and queues it itself. Their texts
    are not read here: the pipeline reads each back from its chunk when its window is embedded.
    """
    if ctx.state.meta.get("vectors_pending", "0") == "0":
        return []
    con = ctx.reads.con()
    dbm.register_list(con, "replaced_paths", "path", replaced, pa.string())
    rows = con.execute("""
        SELECT DISTINCT ON (v.vec_id) v.vec_key, v.vec_id, c.chunk_id, c.n_tokens
        FROM vectors v JOIN chunks c ON c.vec_id = v.vec_id
        WHERE v.segment IS NULL AND c.path NOT IN (SELECT path FROM replaced_paths)
        ORDER BY v.vec_id, c.chunk_id""").fetchall()
    return [PendingText(key, None, n_tokens, vec_id, chunk_id) for key, vec_id, chunk_id, n_tokens in rows]


def stored_texts(session: ReadSession, chunk_ids: Sequence[int]) -> dict[int, str]:
    """The embed texts of committed chunks (chunk id -> text), on the run's read session.

    The pipeline asks for one window's texts at a time (a few thousand chunks, ids close together: a
    run numbers its chunks in the order it stages them), so the range lets DuckDB skip the row groups
    outside it.
    """
    if not chunk_ids:
        return {}
    con = session.con()
    dbm.register_list(con, "wanted_chunks", "chunk_id", chunk_ids, pa.int64())
    rows = con.execute("SELECT chunk_id, embed_head, text FROM chunks WHERE chunk_id BETWEEN ? AND ? "
                       "AND chunk_id IN (SELECT chunk_id FROM wanted_chunks)",
                       [min(chunk_ids), max(chunk_ids)]).fetchall()
    con.unregister("wanted_chunks")
    return {chunk_id: join_embed_text(head, text) for chunk_id, head, text in rows}


def move_symbol(symbol: str, old_path: str, new_path: str) -> str:
    """The symbol a moved chunk gets: its module prefix (``chunking.source.module_path``) follows the file."""
    old_mod, new_mod = module_path(old_path), module_path(new_path)
    if symbol == old_mod:
        return new_mod
    if symbol.startswith(old_mod + "."):
        return new_mod + symbol[len(old_mod):]
    return symbol
