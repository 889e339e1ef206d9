"""A damaged index is detected by every command, explained, and repaired by ``update`` where it can be.

The damage matrix: each kind of damage, applied to a fresh copy of an indexed tree, meets each command.
Every cell must exit 5 naming the damage and the exact repair, or (``update`` only) repair it so that
``verify`` passes and vector search answers as a clean rebuild does. Never exit 0 with a wrong answer,
never exit 1 ("internal error"). ``-s`` prints the table.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from tests.crash_helpers import QUERIES, apply_edits, check_invariants, make_tree
from tests.helpers import run_cli

VECTOR_QUERY = ("search", "distance between two points", "--mode", "vector", "-k", "500", "--json")
"""k above the chunk count: the answer is every chunk with its score, so no tie between ids is cut."""


def _db(root: Path) -> Path:
    return root / ".codeindex" / "meta.duckdb"


def _segments(root: Path) -> list[tuple[int, str, int]]:
    """(segment, file, live vectors) of the committed state, biggest first."""
    with duckdb.connect(str(_db(root)), read_only=True) as con:
        return con.execute("SELECT s.segment, s.file, count(v.vec_id) AS live FROM segments s "
                           "LEFT JOIN vectors v USING (segment) GROUP BY ALL ORDER BY live DESC, s.segment").fetchall()


def _biggest_segment(root: Path) -> Path:
    return root / ".codeindex" / _segments(root)[0][1]


def _overwrite_db(root: Path) -> None:
    """80 KB of noise over live data: from the start of a block of the ``chunks`` table in the middle of
    its blocks, as the fault campaign did to the middle of the file. (The middle of the file itself can
    be free space, which DuckDB never reads: then nothing is damaged, and the index is rightly sound.)"""
    path = _db(root)
    with duckdb.connect(str(path), read_only=True) as con:
        blocks = sorted({b for (b,) in con.execute(
            "SELECT block_id FROM pragma_storage_info('chunks') WHERE block_id >= 0").fetchall()})
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
    assert blocks, "the chunks table has no block on disk"
    noise = random.Random(1).randbytes(80 * 1024)
    with open(path, "r+b") as fh:
        fh.seek(DB_HEADER_BYTES + blocks[len(blocks) // 2] * block_size)
        fh.write(noise)


DB_HEADER_BYTES = 3 * 4096
"""DuckDB's file header and its two database headers come before block 0."""


def _truncate_db(root: Path) -> None:
    os.truncate(_db(root), _db(root).stat().st_size // 2)


def _delete_segment(root: Path) -> None:
    _biggest_segment(root).unlink()


def _truncate_segment(root: Path) -> None:
    path = _biggest_segment(root)
    os.truncate(path, path.stat().st_size // 2)


def _flip_bits(root: Path, n: int = 2000) -> None:
    path = _biggest_segment(root)
    data = bytearray(path.read_bytes())
    rnd = random.Random(2)
    for _ in range(n):  # past the header: the file still looks like a FAISS index
        i = rnd.randrange(64, len(data))
        data[i] ^= 1 << rnd.randrange(8)
    path.write_bytes(bytes(data))


def _sql(statement: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        with duckdb.connect(str(_db(root))) as con:
            con.execute(statement)
    return damage


DAMAGES: dict[str, Callable[[Path], None]] = {
    "DB bytes overwritten": _overwrite_db,
    "DB truncated": _truncate_db,
    "segment deleted": _delete_segment,
    "segment truncated": _truncate_segment,
    "segment bit-flipped": _flip_bits,
    "table dropped (chunks)": _sql("DROP TABLE chunks"),
    "table dropped (postings)": _sql("DROP TABLE postings"),
    "schema garbage": _sql("UPDATE meta SET v = 'garbage' WHERE k = 'schema_version'"),
}
REPAIRABLE = {"segment deleted", "segment truncated", "segment bit-flipped", "table dropped (postings)"}

COMMANDS: dict[str, Callable[[Path], tuple[str, ...]]] = {
    "search": lambda root: (*VECTOR_QUERY, "--root", str(root)),
    "status": lambda root: ("status", str(root)),
    "update": lambda root: ("update", str(root)),
    "compact": lambda root: ("compact", str(root)),
    "verify": lambda root: ("verify", str(root)),
}


def _hits(stdout: str) -> frozenset[tuple[str, int, int, float]]:
    return frozenset((h["path"], h["start_line"], h["end_line"], round(h["score"], 4))
                     for h in json.loads(stdout)["results"])


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, frozenset[tuple[str, int, int, float]]]:
    root = make_tree(tmp_path_factory.mktemp("damage") / "clean")
    Index(root).rebuild()
    apply_edits(root)
    Index(root).update()  # several segments, tombstones: a lived-in index
    assert len(_segments(root)) > 1
    proc = run_cli(*COMMANDS["search"](root))
    assert proc.returncode == 0, proc.stderr
    return root, _hits(proc.stdout)


def _hint_command(stderr: str) -> list[str]:
    """The command the error's hint says to run (a --json command prints its error as JSON)."""
    if stderr.lstrip().startswith("{"):
        stderr = "hint: " + (json.loads(stderr)["error"]["hint"] or "")
    found = re.search(r"hint: run `(codeindex [^`]+)`", stderr)
    assert found, stderr
    return shlex.split(found.group(1))[1:]


def _cell(clean: tuple[Path, frozenset], damage: str, command: str, where: Path) -> str:
    """Run one cell; return what the table shows, after asserting the cell's rule."""
    source, clean_hits = clean
    root = where / re.sub(r"\W+", "-", f"{damage}-{command}")
    shutil.copytree(source, root)
    DAMAGES[damage](root)
    proc = run_cli(*COMMANDS[command](root))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 1, f"{damage} x {command}: internal error\n{proc.stderr}"
    if proc.returncode == 0:
        assert command == "update" and damage in REPAIRABLE, f"{damage} x {command}: exit 0\n{proc.stdout}"
        assert "repaired:" in proc.stdout, proc.stdout
        assert run_cli("verify", str(root)).returncode == 0
        after = run_cli(*COMMANDS["search"](root))
        assert after.returncode == 0 and _hits(after.stdout) == clean_hits, "repaired, but answers differ"
        check_invariants(root)
        return "repaired"
    assert proc.returncode == 5, f"{damage} x {command}: exit {proc.returncode}\n{proc.stderr}"
    assert "damaged" in proc.stderr or "not a codeindex database" in proc.stderr, proc.stderr
    repair = _hint_command(proc.stderr)
    expected = ["update", "--repair"] if damage in REPAIRABLE else ["rebuild"]
    assert repair[: len(expected)] == expected, proc.stderr
    if command == "verify":  # the hint is the exact repair: follow it
        assert run_cli(*repair).returncode == 0
        assert run_cli("verify", str(root)).returncode == 0
        after = run_cli(*COMMANDS["search"](root))
        assert after.returncode == 0 and _hits(after.stdout) == clean_hits
    return "5 " + " ".join(expected)


@pytest.mark.slow
def test_damage_matrix(clean: tuple[Path, frozenset], tmp_path: Path) -> None:
    table: dict[str, dict[str, str]] = {}
    for damage in DAMAGES:
        table[damage] = {command: _cell(clean, damage, command, tmp_path) for command in COMMANDS}
    width = max(map(len, DAMAGES))
    lines = [f"{'damage':<{width}} | " + " | ".join(f"{c:<20}" for c in COMMANDS)]
    lines += [f"{d:<{width}} | " + " | ".join(f"{row[c]:<20}" for c in COMMANDS) for d, row in table.items()]
    print("\n" + "\n".join(lines))


# ---------------------------------------------------------------------------------------------- repairs


def _vector_answers(root: Path) -> list[frozenset[tuple[str, int, int, float]]]:
    index = Index(root)
    return [frozenset((h.path, h.start_line, h.end_line, round(h.score, 4))
                      for h in index.search(q, k=500, mode="vector")) for q in QUERIES]


def test_update_repairs_a_deleted_segment_like_a_clean_rebuild(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    _, file, live = _segments(root)[0]
    assert live > 0
    (root / ".codeindex" / file).unlink()
    report = Index(root).update()
    assert report.vectors_repaired == live, report.repairs
    assert any(f"re-embedded {live} lost vector(s) of {file}" in line for line in report.repairs)
    assert Index(root).verify().ok
    check_invariants(root)
    fresh = make_tree(tmp_path / "fresh")
    Index(fresh).rebuild()
    repaired, clean = _vector_answers(root), _vector_answers(fresh)
    same = sum(a == b for a, b in zip(repaired, clean, strict=True))
    print(f"\nlost {file}: {live} vectors; update re-embedded {report.vectors_repaired}; vector answers of "
          f"{len(QUERIES)} queries equal to a clean rebuild's: {same}/{len(QUERIES)}")
    assert repaired == clean


@pytest.mark.slow
def test_search_checks_the_full_checksum_even_when_the_stat_looks_untouched(tmp_path: Path) -> None:
    """Bit rot keeps a file's stat: the quick check cannot see it, a search and ``verify`` must."""
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    path = _biggest_segment(root)
    _flip_bits(root)
    from codeindex.store.checksums import stat_token

    with duckdb.connect(str(_db(root))) as con:  # as if the flips happened on the platter
        con.execute("UPDATE segments SET file_stat = ? WHERE file = ?", [stat_token(os.stat(path)), path.name])
    assert run_cli("status", str(root)).returncode == 0  # the quick check is blind to this, by design
    proc = run_cli(*VECTOR_QUERY, "--root", str(root))
    assert proc.returncode == 5 and "checksum mismatch" in proc.stderr, proc.stderr
    assert "update --repair" in proc.stderr
    verify = run_cli("verify", str(root), "--json")
    assert verify.returncode == 5
    assert [p["kind"] for p in json.loads(verify.stdout)["problems"]] == ["segment-damaged"]
    repaired = run_cli("update", "--repair", str(root), "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["vectors_repaired"] > 0
    assert run_cli("verify", str(root)).returncode == 0


@pytest.mark.parametrize("damage, kind", [
    ("UPDATE lex_stats SET v = v + 7 WHERE k = 'n_docs'", "lexical"),
    ("DELETE FROM files WHERE path = 'gen/mod3.py'", "files"),
    ("UPDATE merkle_nodes SET hash = 'bad' WHERE path = 'gen'", "merkle"),
    ("DELETE FROM tombstones", None),
    ("DROP TABLE merkle_nodes", "table-missing"),
    ("UPDATE meta SET v = '0' WHERE k = 'next_chunk_id'", "counters"),
])
def test_verify_finds_and_update_repair_mends_inconsistent_tables(tmp_path: Path, damage: str,
                                                                  kind: str | None) -> None:
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    apply_edits(root)
    Index(root).update()
    before = {q: _hits_of(root, q) for q in QUERIES}
    _sql(damage)(root)
    found = Index(root).verify()
    if kind is None:  # dead vectors forgotten: every segment then holds ids no table lists
        assert {p.kind for p in found.problems} <= {"segment-extra"} and found.problems
    else:
        assert kind in {p.kind for p in found.problems}, found.problems
    assert found.repairable
    report = Index(root).update(repair=True)
    assert report.repairs
    assert Index(root).verify().ok, Index(root).verify().problems
    check_invariants(root)
    assert {q: _hits_of(root, q) for q in QUERIES} == before


def _hits_of(root: Path, query: str) -> tuple[frozenset[tuple[str, int, int, float]], ...]:
    """Vector and lexical answers with scores, k above the chunk count: no tie is cut at the boundary
    (fused ranks would depend on how ties between ids fall, and a repair renumbers a file's chunks)."""
    index = Index(root)
    return tuple(frozenset((h.path, h.start_line, h.end_line, round(h.score, 4))
                           for h in index.search(query, k=500, mode=mode)) for mode in ("vector", "lexical"))


@pytest.mark.slow
def test_verify_is_sound_on_every_healthy_state(tmp_path: Path, cli) -> None:
    root = make_tree(tmp_path / "tree")
    assert cli("-q", "rebuild", str(root)).returncode == 0
    assert cli("verify", str(root)).returncode == 0
    apply_edits(root)
    assert cli("-q", "update", str(root)).returncode == 0
    proc = cli("verify", str(root), "--json")
    assert proc.returncode == 0, proc.stdout
    report = json.loads(proc.stdout)
    assert report["ok"] and report["checked"]["segments"] > 1 and report["checked"]["rows.chunks"] > 0
    assert cli("-q", "compact", str(root)).returncode == 0
    assert cli("verify", str(root)).returncode == 0
    status = cli("status", str(root), "--verify", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["integrity"]["ok"]


def test_a_copied_index_is_checked_once_and_its_new_stats_recorded(tmp_path: Path) -> None:
    """Copying an index changes every segment's stat: the checksums are verified, the stats re-recorded,
    and the next update is quiet again (no hashing of every segment on every run)."""
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    report = Index(copy).update()
    assert any("recorded the new stat" in line for line in report.repairs), report.repairs
    assert report.vectors_repaired == 0
    assert Index(copy).update().repairs == []


@pytest.mark.slow
def test_the_hint_is_a_command_that_runs_as_given_with_an_index_dir(tmp_path: Path) -> None:
    root = tmp_path / "my tree"  # a space: the hint quotes it
    shutil.copytree(Path(__file__).parent / "scenarios" / "e2e_repo", root)
    index_dir = tmp_path / "elsewhere"
    assert run_cli("--index-dir", str(index_dir), "-q", "rebuild", str(root), "--embedder", "hashing").returncode == 0
    next(index_dir.glob("seg-*.faiss")).unlink()
    proc = run_cli("--index-dir", str(index_dir), "search", "distance", "--root", str(root))
    assert proc.returncode == 5, proc.stderr
    repair = _hint_command(proc.stderr)
    assert repair == ["--index-dir", str(index_dir), "update", "--repair", str(root)]
    assert run_cli(*repair).returncode == 0
    assert run_cli("--index-dir", str(index_dir), "search", "distance", "--root", str(root)).returncode == 0


def test_a_damaged_database_block_is_located_so_the_hint_is_the_exact_repair(tmp_path: Path) -> None:
    """DuckDB says only "corrupt block at location N"; the CLI runs the full check to name the table:
    a postings block can be rebuilt from the chunks, a chunks block cannot."""
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    before = _hits_of(root, "compute total price")
    with duckdb.connect(str(_db(root)), read_only=True) as con:
        owners: dict[int, set[str]] = {}
        for table in ("postings", "chunks", "files", "meta", "vectors", "segments", "lex_stats", "merkle_nodes"):
            for (block,) in con.execute(f"SELECT DISTINCT block_id FROM pragma_storage_info('{table}') "
                                        "WHERE block_id IS NOT NULL AND block_id >= 0").fetchall():
                owners.setdefault(int(block), set()).add(table)
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
    only_postings = sorted(b for b, tables in owners.items() if tables == {"postings"})
    assert only_postings, owners
    with open(_db(root), "r+b") as fh:  # past the three 4 KiB headers, inside the block's payload
        fh.seek(3 * 4096 + only_postings[0] * block_size + 512)
        fh.write(b"\x55" * 256)
    proc = run_cli("search", "compute total price", "--root", str(root), "--mode", "lexical")
    assert proc.returncode == 5, proc.stderr
    assert "table postings: unreadable" in proc.stderr
    assert _hint_command(proc.stderr) == ["update", "--repair", str(root)]
    assert run_cli("update", "--repair", str(root)).returncode == 0
    assert _hits_of(root, "compute total price") == before


def test_lost_vectors_are_never_re_made_by_another_model(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    _sql("UPDATE meta SET v = 'hashing-v0-384' WHERE k = 'model_id'")(root)  # as if the model had changed since
    _delete_segment(root)
    proc = run_cli("update", str(root))
    assert proc.returncode == 5, proc.stderr
    assert "cannot be re-made alike" in proc.stderr and _hint_command(proc.stderr)[0] == "rebuild"
    assert run_cli("-q", "rebuild", str(root)).returncode == 0 and run_cli("verify", str(root)).returncode == 0
