"""What a run reuses instead of recomputing: stored vector keys (content addressing) and the chunk rows
of moved files, carried to their new path without re-parsing."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from codeindex.chunking.source import module_path
from codeindex.engine.context import RunContext
from codeindex.engine.pipeline import CHUNK_SCHEMA
from codeindex.search.analysis import postings_table
from codeindex.store import db as dbm
from codeindex.store.session import ReadSession


class KnownKeys(dict[str, int]):
    """Vector keys already stored (key -> vec_id). With a read session, ``prefetch`` fills it on demand."""

    def __init__(self, session: ReadSession | None) -> None:
        super().__init__()
        self.session = session
        self._asked: set[str] = set()

    def prefetch(self, keys: Iterable[str]) -> None:
        wanted = [k for k in set(keys) if k not in self._asked]
        if self.session is None or not wanted:
            return
        self._asked.update(wanted)
        con = self.session.con()
        dbm.register_list(con, "wanted_keys", "vec_key", wanted, pa.string())
        self.update(con.execute("SELECT vec_key, vec_id FROM vectors WHERE vec_key IN "
                                "(SELECT vec_key FROM wanted_keys)").fetchall())



def reuse_inputs(ctx: RunContext, n_items: int) -> tuple[KnownKeys, list[pa.Table]]:
    """Known vector keys (content addressing) and chunk rows carried without re-parsing.

    A small update looks its keys up when it has them (one query per parse batch, on the run's read
    session); a big one loads every stored key once, which is cheaper than many look-ups.
    """
    if ctx.kind != "update":
        return KnownKeys(None), []
    plan = ctx.plan
    moved = plan.moved
    model_change = bool(plan.model_change)
    cols = ", ".join(f for f in CHUNK_SCHEMA.names)
    carried: list[pa.Table] = []
    lazy = n_items < ctx.config["engine.small_update_files"] and not model_change
    known = KnownKeys(ctx.reads if lazy else None)
    con = ctx.reads.con()
    if not model_change and not lazy:
        keys = dbm.arrow(con, "SELECT vec_key, vec_id FROM vectors")
        known.update(zip(keys.column(0).to_pylist(), keys.column(1).to_pylist(), strict=True))
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
        dbm.register_list(con, "reparsed", "path", [*plan.to_parse, *plan.deleted, *(old for old, _ in moved)])
        rows = dbm.arrow(con, f"SELECT {cols} FROM chunks WHERE path NOT IN (SELECT path FROM reparsed) "
                           "ORDER BY path, start_byte")
        carried.append(rows.cast(CHUNK_SCHEMA))
    return known, carried


def move_symbol(symbol: str, old_path: str, new_path: str) -> str:
    """The symbol a moved chunk gets: its module prefix (``chunking.source.module_path``) follows the file."""
    old_mod, new_mod = module_path(old_path), module_path(new_path)
    if symbol == old_mod:
        return new_mod
    if symbol.startswith(old_mod + "."):
        return new_mod + symbol[len(old_mod):]
    return symbol
