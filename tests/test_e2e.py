"""End to end with the real embedded model: rebuild → search → edit → update → delete → no-op."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from tests.helpers import last_run

pytestmark = pytest.mark.slow


def _paths(results: list) -> list[str]:
    return [r.path for r in results]


def test_rebuild_search_edit_delete_noop(scenario) -> None:
    root = scenario("e2e_repo")
    index = Index(root)
    report = index.rebuild(scheduler="sync")
    assert report.embedder == "onnx"
    assert report.chunks_embedded > 0
    assert report.chunks_total >= 8

    # a natural-language description finds the function in the top 3
    hits = index.search("great-circle distance between two points on the globe", k=3)
    assert any(h.path == "geo/distance.py" and "haversine_km" in h.symbol for h in hits), hits
    hits = index.search("evict the least recently used entry when the cache is full", k=3)
    assert any(h.path == "util/text.py" and "LruCache" in h.symbol for h in hits), hits
    hits = index.search("limit how many requests a client can make", k=3)
    assert "web/server.go" in _paths(hits), hits

    # edit: replace count_vowels by a new function; the new code is found, the old text is gone
    text_py = root / "util" / "text.py"
    source = text_py.read_text()
    start = source.index("def count_vowels")
    end = source.index("class LruCache")
    new_fn = ('def fibonacci_numbers(n: int) -> list[int]:\n'
              '    """Return the first n numbers of the Fibonacci sequence."""\n'
              '    seq = [0, 1]\n    while len(seq) < n:\n        seq.append(seq[-1] + seq[-2])\n'
              '    return seq[:n]\n\n\n')
    text_py.write_text(source[:start] + new_fn + source[end:])
    report = index.update(scheduler="sync")
    assert report.files_modified == 1
    assert report.chunks_embedded >= 1
    hits = index.search("sequence where each number is the sum of the previous two", k=3)
    assert any("fibonacci_numbers" in h.symbol for h in hits), hits
    assert not any("count_vowels" in h.text for h in index.search("count_vowels", k=20, mode="lexical"))
    assert not any("count_vowels" in h.text for h in index.search("count the vowels in text", k=20))
    run = last_run(root / ".codeindex")
    assert run["kind"] == "update" and run["files_modified"] == 1

    # delete: no result points at the deleted file
    (root / "web" / "query.js").unlink()
    report = index.update(scheduler="sync")
    assert report.files_deleted == 1
    for query in ("parse the query string of a url", "parseQueryString", "retry with backoff"):
        for mode in ("hybrid", "vector", "lexical"):
            assert "web/query.js" not in _paths(index.search(query, k=20, mode=mode)), (query, mode)

    # no change: 0 chunks embedded, read from the runs table
    report = index.update(scheduler="sync")
    run = last_run(root / ".codeindex")
    assert run["chunks_embedded"] == 0 and run["files_added"] == 0 and run["files_modified"] == 0
    assert report.run_id == run["run_id"]


def test_local_cluster_rebuild_matches_sync(scenario, tmp_path: Path) -> None:
    """The same tree indexed on a LocalCluster and in-process gives the same chunks and vectors."""
    root = scenario("e2e_repo")
    sync_dir, local_dir = tmp_path / "idx-sync", tmp_path / "idx-local"
    Index(root, index_dir=sync_dir).rebuild(scheduler="sync", embedder="hashing")
    Index(root, index_dir=local_dir, **{"engine.small_update_files": 0}).rebuild(
        scheduler="local", embedder="hashing")

    def dump(d: Path) -> list[tuple]:
        con = duckdb.connect(str(d / "meta.duckdb"), read_only=True)
        try:
            return con.execute("SELECT c.path, c.start_line, c.end_line, c.symbol, v.vec_key FROM chunks c "
                               "JOIN vectors v USING (vec_id) ORDER BY 1, 2").fetchall()
        finally:
            con.close()

    assert dump(sync_dir) == dump(local_dir)
