"""Scenario trees, edit sets and index-state snapshots for the crash-safety and concurrency tests.

A *state* is what a user can observe of an index: the chunk set (path, lines, text), the vector keys,
and the results of a few searches. The tests compare a state after a crash with the states of clean
rebuilds of the old and the new tree; ``check_invariants`` checks what must hold in any state.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

SCENARIOS = Path(__file__).parent / "scenarios"

# Small segments and batches so a run writes several segments and several embed batches (every
# crash point is reached), HNSW for bulk segments so tombstones in HNSW segments are exercised.
TREE_CONFIG = """\
[embedder]
backend = "hashing"
batch_tokens = 128

[engine]
scheduler = "sync"
parse_batch_files = 2

[store]
segment_max_vectors = 16
ann_min_vectors = 8
"""

QUERIES = ("distance between two points", "parse query string", "http server handler", "slugify text",
           "compute_total_price", "Inventory")


def _generated_module(i: int) -> str:
    return (f'"""Generated module {i} for the crash tests."""\n\n\n'
            f"def compute_total_price_{i}(items: list[float], tax: float = 0.{i % 9 + 1}) -> float:\n"
            f'    """Sum item prices and add tax number {i}."""\n'
            f"    return sum(items) * (1 + tax)\n\n\n"
            f"class Inventory{i}:\n"
            f'    """Keeps stock levels for warehouse {i}."""\n\n'
            f"    def __init__(self) -> None:\n"
            f"        self.stock: dict[str, int] = {{}}\n\n"
            f"    def add(self, sku: str, n: int) -> None:\n"
            f"        self.stock[sku] = self.stock.get(sku, 0) + n * {i + 1}\n")


def make_tree(root: Path, n_generated: int = 8) -> Path:
    """The e2e scenario plus ``n_generated`` small Python modules and the test config."""
    shutil.copytree(SCENARIOS / "e2e_repo", root)
    (root / "gen").mkdir()
    for i in range(n_generated):
        (root / "gen" / f"mod{i}.py").write_text(_generated_module(i))
    (root / ".codeindex.toml").write_text(TREE_CONFIG)
    return root


def apply_edits(root: Path) -> None:
    """One of each change kind: modify, add, delete, move (and a new identical-text file)."""
    mod = root / "gen" / "mod0.py"
    mod.write_text(mod.read_text() + "\n\ndef refund_order(order_id: int) -> bool:\n    return order_id > 0\n")
    (root / "gen" / "added.py").write_text(_generated_module(100))
    (root / "gen" / "mod1.py").unlink()
    (root / "gen" / "moved").mkdir()
    (root / "gen" / "mod2.py").rename(root / "gen" / "moved" / "mod2_renamed.py")
    (root / "util" / "text_copy.py").write_text((root / "util" / "text.py").read_text())


@dataclass(frozen=True)
class State:
    chunks: frozenset[tuple[str, int, int, str]]
    vec_keys: frozenset[str]
    merkle: frozenset[tuple[str, str]]
    symbols: frozenset[tuple[str, str, str, int, int]]
    searches: tuple[frozenset[tuple[str, int, int, float]], ...]


def _db(root: Path) -> Path:
    return root / ".codeindex" / "meta.duckdb"


def read_state(root: Path) -> State:
    """The observable state of the index at ``root`` (opened read-only, as a search would)."""
    from codeindex import Index

    with duckdb.connect(str(_db(root)), read_only=True) as con:
        chunks = frozenset(con.execute("SELECT path, start_line, end_line, text FROM chunks").fetchall())
        keys = frozenset(r[0] for r in con.execute("SELECT vec_key FROM vectors").fetchall())
        merkle = frozenset(con.execute("SELECT path, hash FROM merkle_nodes").fetchall())
        symbols = frozenset(con.execute("SELECT path, qualified, kind, start_line, end_line FROM symbols").fetchall())
    index = Index(root)
    searches = []
    for query in QUERIES:
        for mode in ("lexical", "vector"):  # k above the chunk count: no ties cut at the boundary
            hits = index.search(query, k=500, mode=mode)
            searches.append(frozenset((h.path, h.start_line, h.end_line, round(h.score, 4)) for h in hits))
    return State(chunks, keys, merkle, symbols, tuple(searches))


def check_invariants(root: Path) -> None:
    """What any committed state must satisfy: nothing lost, nothing doubled, nothing dangling."""
    import faiss
    import numpy as np

    index_dir = root / ".codeindex"
    with duckdb.connect(str(_db(root)), read_only=True) as con:
        def one(sql: str) -> object:
            return con.execute(sql).fetchall()[0][0]

        assert one("SELECT count(*) - count(DISTINCT chunk_id) FROM chunks") == 0, "duplicate chunk ids"
        assert one("SELECT count(*) - count(DISTINCT (path, start_byte, end_byte)) FROM chunks") == 0, \
            "duplicate chunk rows"
        assert one("SELECT count(*) FROM chunks WHERE path NOT IN (SELECT path FROM files)") == 0, \
            "chunks of a file the files table does not know"
        assert one("SELECT count(*) - count(DISTINCT path) FROM files") == 0, "duplicate file rows"
        assert one("SELECT count(*) FROM symbols WHERE path NOT IN (SELECT path FROM files)") == 0, \
            "symbols of a file the index does not list"
        assert one("SELECT count(*) - count(DISTINCT (path, qualified, kind, start_line)) FROM symbols") == 0, \
            "duplicate symbol rows"
        assert one("SELECT count(*) - count(DISTINCT path) FROM merkle_nodes") == 0, "duplicate Merkle nodes"
        assert one("SELECT count(*) - count(DISTINCT vec_key) FROM vectors") == 0, "duplicate vector keys"
        assert one("SELECT count(*) - count(DISTINCT vec_id) FROM vectors") == 0, "duplicate vector ids"
        assert one("SELECT count(*) FROM chunks WHERE vec_id NOT IN (SELECT vec_id FROM vectors)") == 0, \
            "chunk whose vector is missing"
        assert one("SELECT count(*) FROM chunks WHERE vec_id IN (SELECT vec_id FROM tombstones)") == 0, \
            "chunk pointing at a tombstoned vector"
        assert one("SELECT count(*) FROM vectors WHERE segment NOT IN (SELECT segment FROM segments)") == 0, \
            "vector in a segment that is not live"
        unused_sql = "SELECT count(*) FROM vectors WHERE vec_id NOT IN (SELECT vec_id FROM chunks)"
        assert one(unused_sql) == 0, "live vector that no chunk uses (it should have been tombstoned)"
        # lexical index consistent with the chunks
        stats = dict(con.execute("SELECT k, v FROM lex_stats").fetchall())
        assert stats["n_docs"] == one("SELECT count(*) FROM chunks")
        assert stats["total_len"] == one("SELECT coalesce(sum(lex_len), 0) FROM chunks")
        dead_sql = "SELECT count(DISTINCT chunk_id) FROM postings WHERE chunk_id NOT IN (SELECT chunk_id FROM chunks)"
        assert one(dead_sql) == stats.get("dead_chunks", 0), "postings of removed chunks not counted as dead"
        next_chunk_id = int(str(one("SELECT v FROM meta WHERE k = 'next_chunk_id'")))
        assert one("SELECT coalesce(max(chunk_id), -1) FROM postings") < next_chunk_id, \
            "a posting whose chunk id may be handed out again"
        assert one("SELECT count(*) FROM (SELECT chunk_id, term_id FROM postings GROUP BY ALL HAVING count(*) > 1)") \
            == 0, "doubled postings"
        assert one("SELECT count(*) FROM chunks WHERE chunk_id NOT IN (SELECT chunk_id FROM postings)") == 0, \
            "chunk without postings (its path and symbol alone give it terms)"
        segments = con.execute("SELECT segment, file, n_vectors FROM segments").fetchall()
        vec_seg = con.execute("SELECT vec_id, segment FROM vectors").fetchall()
    by_segment: dict[int, set[int]] = {}
    for vec_id, seg in vec_seg:
        by_segment.setdefault(seg, set()).add(vec_id)
    for seg, file, n_vectors in segments:
        path = index_dir / file
        assert path.exists(), f"live segment {file} is missing"
        stored = faiss.read_index(str(path))
        assert stored.ntotal == n_vectors, f"{file}: {stored.ntotal} vectors, the database says {n_vectors}"
        ids = set(faiss.vector_to_array(stored.id_map).astype(np.int64).tolist())
        missing = by_segment.get(seg, set()) - ids
        assert not missing, f"{file} lacks vectors {sorted(missing)[:5]}"
