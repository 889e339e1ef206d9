"""Integrity of the index on disk: what is damaged, found cheaply on every use and fully by ``verify``.

What is recorded, and where:

* **Segments** are immutable once committed. The commit records each segment file's size, blake3
  checksum and stat (``segments.n_bytes``, ``checksum``, ``file_stat``). Every command that relies on
  a segment checks it *quickly*: present, of the recorded size, with a FAISS ``IndexIDMap2`` header,
  and, when its stat moved since the commit (an immutable file that was written to, or a copied
  index), by its checksum too. A search checks the full checksum of the bytes it loads, once per
  loaded segment, so a flipped bit never changes an answer silently. ``verify`` checks every
  checksum whatever the stat says.
* **The database** checks its own blocks (DuckDB stores a checksum per block and verifies each block
  it reads); ``verify`` reads every column of every table so that every block is checked.
* **Consistency** between the tables (lexical statistics and postings vs chunks, chunks vs vectors vs
  segments, file rows vs chunks, the Merkle nodes vs the file rows): the lexical counts are checked
  on every update and status (two aggregates), everything by ``verify``.

Each finding is a ``Problem`` that says what is damaged and whether ``codeindex update`` can mend it
from what the index still holds (``engine/repair.py``): lost vectors are re-embedded from the stored
chunk texts, postings rebuilt from the chunks, inconsistent file rows re-read and re-hashed. A damaged
database block in a table that holds primary data (chunks, files, vectors, segments, meta) can only
be recovered by a rebuild.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codeindex.errors import REBUILD_HINT, REPAIR_HINT, CorruptIndexError, SchemaVersionError, environment_problem
from codeindex.store import db as dbm
from codeindex.store.checksums import fingerprint_file, stat_token
from codeindex.store.schema import expected_columns

if TYPE_CHECKING:
    import duckdb

SEGMENT_MAGIC = b"IxM2"
"""The FAISS fourcc every segment file starts with (``IndexIDMap2``, flat or HNSW inside)."""

SEGMENT_COLUMNS = "segment, file, n_vectors, index_type, n_bytes, checksum, file_stat"

DERIVED_TABLES = frozenset({"postings", "lex_stats", "tombstones", "merkle_nodes", "runs"})
"""Tables ``update`` can recreate from the others; a damaged primary table needs a rebuild."""


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """One live segment as the committed state lists it."""

    segment: int
    file: str
    n_vectors: int
    index_type: str
    n_bytes: int | None = None
    checksum: str | None = None
    file_stat: str | None = None


def read_segment_records(con: duckdb.DuckDBPyConnection) -> list[SegmentRecord]:
    rows = con.execute(f"SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY segment").fetchall()
    return [SegmentRecord(int(s), str(f), int(n), str(t), b, c, st) for s, f, n, t, b, c, st in rows]


@dataclass(frozen=True, slots=True)
class LexicalCounts:
    """The lexical statistics next to what the chunks say they should be (two aggregates)."""

    n_docs: float
    total_len: float
    chunks: int
    chunks_len: int

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> LexicalCounts:
        stats = dict(con.execute("SELECT k, v FROM lex_stats").fetchall())
        [(chunks, length)] = con.execute("SELECT count(*), coalesce(sum(lex_len), 0) FROM chunks").fetchall()
        return cls(float(stats.get("n_docs", -1)), float(stats.get("total_len", -1)), int(chunks), int(length))

    def problem(self) -> Problem | None:
        if self.n_docs == self.chunks and self.total_len == self.chunks_len:
            return None
        return Problem("lexical index", f"statistics say {self.n_docs:.0f} chunks of total length "
                       f"{self.total_len:.0f}; the chunks table holds {self.chunks} of {self.chunks_len}",
                       repairable=True, kind="lexical")


@dataclass(frozen=True, slots=True)
class IntegrityFacts:
    """What the quick check needs from the database, read in the caller's session (~1 ms)."""

    segments: list[SegmentRecord]
    lexical: LexicalCounts | None
    """None when the lexical tables are missing (reported as such already)."""

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, missing: Iterable[str] = ()) -> IntegrityFacts:
        lexical = None if {"lex_stats", "chunks"} & set(missing) else LexicalCounts.read(con)
        return cls(read_segment_records(con), lexical)


# ---------------------------------------------------------------------------------------------- problems


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing found damaged. ``kind`` tells ``engine/repair.py`` what to do; ``items`` what to do it to
    (segment numbers, paths, vector ids)."""

    what: str
    detail: str
    repairable: bool
    kind: str
    items: tuple[Any, ...] = ()

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["items"] = list(self.items)[:50]
        out["repair"] = "update --repair" if self.repairable else "rebuild"
        return out


class DamagedSegment(CorruptIndexError):
    """A segment file is not what its commit recorded (raised by ``load_segment``)."""


def damage_error(problems: Sequence[Problem], index_dir: Path,
                 cls: type[CorruptIndexError] = CorruptIndexError) -> CorruptIndexError:
    """The one error every command raises for damage it found: what is damaged, and the exact repair."""
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s): `codeindex verify` lists them)" if len(problems) > 1 else ""
    repairable = all(p.repairable for p in problems)
    return cls(f"the index at {index_dir} is damaged: {first}{more}",
               hint=REPAIR_HINT if repairable else REBUILD_HINT, repairable=repairable)


def raise_if_damaged(problems: Sequence[Problem], index_dir: Path) -> None:
    if problems:
        raise damage_error(problems, index_dir)


class SegmentCheck:
    """The result of checking one segment: a problem, or fine (``restat``: fine, but its stat moved
    since the commit, so the next writer should record the new stat)."""

    __slots__ = ("problem", "restat", "stat")

    def __init__(self, problem: Problem | None, restat: bool = False, stat: str | None = None) -> None:
        self.problem = problem
        self.restat = restat
        self.stat = stat


def segment_problem(rec: SegmentRecord, detail: str, kind: str = "segment-damaged") -> Problem:
    return Problem(f"segment {rec.file}", f"{detail} (it holds {rec.n_vectors} vectors)", repairable=True,
                   kind=kind, items=(rec.segment,))


def check_segment(index_dir: Path, rec: SegmentRecord, *, full: bool) -> SegmentCheck:
    """Size and header always; the checksum when ``full`` or when the file's stat moved since the commit."""
    path = index_dir / rec.file
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return SegmentCheck(segment_problem(rec, "missing", "segment-missing"))
    except OSError as exc:
        raise environment_problem(exc, path, "read") from exc
    if rec.n_bytes is not None and st.st_size != rec.n_bytes:
        return SegmentCheck(segment_problem(rec, f"{st.st_size} bytes, the commit recorded {rec.n_bytes}"))
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SEGMENT_MAGIC))
    except OSError as exc:
        raise environment_problem(exc, path, "read") from exc
    if head != SEGMENT_MAGIC:
        return SegmentCheck(segment_problem(rec, f"not a FAISS segment (starts with {head!r})"))
    token = stat_token(st)
    moved = rec.file_stat is not None and token != rec.file_stat
    if full or moved:
        try:
            got = fingerprint_file(path)
        except FileNotFoundError:
            return SegmentCheck(segment_problem(rec, "missing", "segment-missing"))
        except OSError as exc:
            raise environment_problem(exc, path, "read") from exc
        if rec.checksum is not None and got.checksum != rec.checksum:
            return SegmentCheck(segment_problem(
                rec, f"checksum mismatch (recorded {rec.checksum[:12]}…, file {got.checksum[:12]}…)"))
    return SegmentCheck(None, restat=moved, stat=token)


def quick_check(index_dir: Path, facts: IntegrityFacts) -> tuple[list[Problem], dict[str, str]]:
    """The checks every update and status runs: each live segment (size, header, checksum if its stat
    moved) and the lexical counts. Returns the problems and the segments whose stat should be re-recorded."""
    problems: list[Problem] = []
    restat: dict[str, str] = {}
    for rec in facts.segments:
        result = check_segment(index_dir, rec, full=False)
        if result.problem is not None:
            problems.append(result.problem)
        elif result.restat and result.stat is not None:
            restat[rec.file] = result.stat
    lexical = facts.lexical.problem() if facts.lexical is not None else None
    if lexical is not None:
        problems.append(lexical)
    return problems, restat


def load_segment(index_dir: Path, rec: SegmentRecord, *, mmap_bytes: int = 64 * 1024 * 1024) -> Any:
    """Load a live segment for searching, after checking the bytes are the ones committed.

    Raises ``FileNotFoundError`` when the file is gone (a writer may have just replaced it: the caller
    re-reads the committed state) and ``CorruptIndexError`` for damage.
    """
    from codeindex.store.segments import read_segment  # numpy and FAISS: not on a no-op update's path

    path = index_dir / rec.file
    check = check_segment(index_dir, rec, full=True)
    if check.problem is not None:
        if check.problem.kind == "segment-missing":
            raise FileNotFoundError(2, "No such file or directory", str(path))
        raise damage_error([check.problem], index_dir, DamagedSegment)
    try:
        index = read_segment(path, mmap=(rec.n_bytes or 0) > mmap_bytes)
    except RuntimeError as exc:  # FAISS could not open or parse it
        if not path.exists():
            raise FileNotFoundError(2, "No such file or directory", str(path)) from None
        raise damage_error([segment_problem(rec, f"FAISS cannot read it: {str(exc).splitlines()[0]}")],
                           index_dir, DamagedSegment) from exc
    if index.ntotal != rec.n_vectors:
        raise damage_error([segment_problem(rec, f"{index.ntotal} vectors inside, the commit recorded "
                                                  f"{rec.n_vectors}")], index_dir, DamagedSegment)
    return index


# ---------------------------------------------------------------------------------------------- verify


@dataclass(slots=True)
class VerifyReport:
    """What ``codeindex verify`` found and what it looked at."""

    index_dir: str
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def repairable(self) -> bool:
        return all(p.repairable for p in self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {"index_dir": self.index_dir, "ok": self.ok, "repairable": self.repairable,
                "problems": [p.as_dict() for p in self.problems], "checked": self.checked,
                "seconds": round(self.seconds, 3)}


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0] or 0)


def _values(con: duckdb.DuckDBPyConnection, sql: str, limit: int = 10_000) -> tuple[Any, ...]:
    return tuple(r[0] for r in con.execute(f"{sql} LIMIT {limit}").fetchall())


def check_schema(con: duckdb.DuckDBPyConnection, db_path: Path) -> list[Problem]:
    """The schema version (raises if not ours), then every table with its columns: a missing primary table
    raises; the missing tables ``update`` can recreate from the others (postings, statistics, tombstones,
    Merkle nodes, runs) are returned, for a reader to raise and for ``update`` to repair."""
    dbm.check_schema(con, db_path)
    problems = table_problems(con)
    fatal = [p for p in problems if not p.repairable]
    if fatal:
        raise damage_error(fatal, db_path.parent)
    return problems


def table_problems(con: duckdb.DuckDBPyConnection) -> list[Problem]:
    """Tables (or columns) of the schema the database lacks (one query on DuckDB's catalog, ~1 ms)."""
    present: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                                     "WHERE database_name = current_database()").fetchall():
        present.setdefault(table, set()).add(column)
    problems = []
    for table, columns in expected_columns().items():
        lacking = [c for c in columns if c not in present.get(table, ())]
        if lacking:
            detail = "missing" if table not in present else f"lacks column(s) {', '.join(lacking)}"
            problems.append(Problem(f"table {table}", detail, repairable=table in DERIVED_TABLES,
                                    kind="table-missing", items=(table,)))
    return problems


def check_tables(con: duckdb.DuckDBPyConnection) -> tuple[list[Problem], dict[str, int]]:
    """Every table of the schema present with its columns, and every block of it readable."""
    import duckdb

    problems = table_problems(con)
    absent = {p.items[0] for p in problems}
    rows: dict[str, int] = {}
    for table, columns in expected_columns().items():
        if table in absent:
            continue
        try:  # hashing every column makes DuckDB read (and verify the checksum of) every block
            rows[table] = _count(con, f"SELECT count(*) + 0 * coalesce(sum(hash({', '.join(columns)})), 0) "
                                      f"FROM {table}")
        except duckdb.Error as exc:
            problems.append(Problem(f"table {table}", f"unreadable: {str(exc).splitlines()[0]}",
                                    repairable=table in DERIVED_TABLES, kind="table-damaged", items=(table,)))
    return problems, rows


def check_consistency(con: duckdb.DuckDBPyConnection, index_dir: Path, healthy: set[str]) -> list[Problem]:
    """The tables agree with each other, with the segment files and with the Merkle snapshot.

    ``healthy``: the tables found present and readable; a check needing another one is skipped (the
    table's own problem is reported already).
    """
    problems: list[Problem] = []
    if {"chunks", "postings", "lex_stats"} <= healthy:
        lexical = LexicalCounts.read(con).problem()
        if lexical is not None:
            problems.append(lexical)
        bare = _count(con, "SELECT count(*) FROM chunks c WHERE NOT EXISTS "
                           "(SELECT 1 FROM postings p WHERE p.chunk_id = c.chunk_id)")
        if bare:
            problems.append(Problem("lexical index", f"{bare} chunk(s) have no postings", True, "lexical"))
    if {"chunks", "files"} <= healthy:
        problems.extend(_file_problems(con))
    if {"chunks", "vectors", "segments", "tombstones"} <= healthy:
        problems.extend(_vector_problems(con, index_dir, read_segment_records(con)))
    if {"files", "merkle_nodes", "meta"} <= healthy:
        problems.extend(_merkle_problems(con))
    if {"meta", "chunks", "postings", "vectors", "tombstones", "segments"} <= healthy:
        problems.extend(_counter_problems(con))
    return problems


def _file_problems(con: duckdb.DuckDBPyConnection) -> list[Problem]:
    paths: set[str] = set()
    found: list[str] = []
    checks = {
        "chunks of files the files table does not list":
            "SELECT DISTINCT path FROM chunks WHERE path NOT IN (SELECT path FROM files)",
        "file rows listed more than once": "SELECT path FROM files GROUP BY path HAVING count(*) > 1",
        "file rows whose chunk count differs from their chunks":
            "SELECT f.path FROM files f LEFT JOIN (SELECT path, count(*) AS n FROM chunks GROUP BY path) c "
            "ON c.path = f.path WHERE f.skip_reason IS NULL AND coalesce(c.n, 0) <> f.n_chunks",
        "chunk ids used twice": "SELECT DISTINCT path FROM chunks WHERE chunk_id IN "
                                "(SELECT chunk_id FROM chunks GROUP BY chunk_id HAVING count(*) > 1)",
    }
    for label, sql in checks.items():
        got = _values(con, sql)
        if got:
            paths.update(got)
            found.append(f"{label}: {len(got)}")
    if not paths:
        return []
    return [Problem("file rows", "; ".join(found) + f" (e.g. {sorted(paths)[0]})", True, "files",
                    tuple(sorted(paths)))]


def _vector_problems(con: duckdb.DuckDBPyConnection, index_dir: Path,
                     segments: Iterable[SegmentRecord]) -> list[Problem]:
    import faiss
    import numpy as np

    from codeindex.store.segments import read_segment

    problems: list[Problem] = []
    if _count(con, "SELECT count(*) - count(DISTINCT vec_id) FROM vectors") or \
            _count(con, "SELECT count(*) - count(DISTINCT vec_key) FROM vectors"):
        problems.append(Problem("vectors table", "vector ids or keys listed twice", False, "vectors"))
        return problems
    missing = _values(con, "SELECT DISTINCT vec_id FROM chunks WHERE vec_id NOT IN (SELECT vec_id FROM vectors)")
    orphaned = _values(con, "SELECT vec_id FROM vectors WHERE segment NOT IN (SELECT segment FROM segments)")
    if missing or orphaned:
        problems.append(Problem("vectors", f"{len(missing)} chunk vector(s) not listed, {len(orphaned)} listed "
                                f"in no live segment", True, "vectors-lost", tuple(sorted({*missing, *orphaned}))))
    unused = _values(con, "SELECT vec_id FROM vectors WHERE vec_id NOT IN (SELECT vec_id FROM chunks)")
    if unused:
        problems.append(Problem("vectors", f"{len(unused)} live vector(s) no chunk uses (not tombstoned)",
                                True, "vectors-unused", tuple(sorted(unused))))
    for rec in segments:
        check = check_segment(index_dir, rec, full=True)
        if check.problem is not None:
            problems.append(check.problem)
            continue
        try:
            index = read_segment(index_dir / rec.file)
        except RuntimeError as exc:
            problems.append(segment_problem(rec, f"FAISS cannot read it: {str(exc).splitlines()[0]}"))
            continue
        ids = set(faiss.vector_to_array(index.id_map).astype(np.int64).tolist())
        listed = {r[0] for r in con.execute("SELECT vec_id FROM vectors WHERE segment = ?", [rec.segment]).fetchall()}
        dead = {r[0] for r in con.execute("SELECT vec_id FROM tombstones WHERE segment = ?",
                                          [rec.segment]).fetchall()}
        if index.ntotal != rec.n_vectors:
            problems.append(segment_problem(rec, f"{index.ntotal} vectors inside, the commit recorded "
                                                  f"{rec.n_vectors}"))
        lost = listed - ids
        if lost:
            problems.append(Problem(f"segment {rec.file}", f"lacks {len(lost)} vector(s) the database lists in it",
                                    True, "vectors-lost", tuple(sorted(lost))))
        extra = ids - listed - dead
        if extra:
            problems.append(Problem(f"segment {rec.file}", f"{len(extra)} vector(s) neither listed nor tombstoned",
                                    True, "segment-extra", (rec.segment, *sorted(extra))))
    return problems


def _merkle_problems(con: duckdb.DuckDBPyConnection) -> list[Problem]:
    from codeindex.changes.merkle import build_tree

    leaves = dict(con.execute("SELECT path, hash FROM files").fetchall())
    nodes = dict(con.execute("SELECT path, hash FROM merkle_nodes").fetchall())
    root_hash = con.execute("SELECT v FROM meta WHERE k = 'root_hash'").fetchall()
    expected = build_tree(leaves) if leaves else {}
    if leaves and nodes != expected:
        wrong = sorted(p for p in set(nodes) | set(expected) if nodes.get(p) != expected.get(p))
        return [Problem("Merkle snapshot", f"{len(wrong)} directory node(s) disagree with the file rows "
                        f"(e.g. {wrong[0] or '/'})", True, "merkle")]
    if leaves and root_hash and root_hash[0][0] != expected.get(""):
        return [Problem("Merkle snapshot", "the recorded root hash disagrees with the file rows", True, "merkle")]
    return []


def _counter_problems(con: duckdb.DuckDBPyConnection) -> list[Problem]:
    meta = dict(con.execute("SELECT k, v FROM meta").fetchall())
    checks = {
        "next_chunk_id": "SELECT greatest((SELECT max(chunk_id) FROM chunks), (SELECT max(chunk_id) FROM postings))",
        "next_vec_id": "SELECT greatest((SELECT max(vec_id) FROM vectors), (SELECT max(vec_id) FROM tombstones))",
        "next_segment": "SELECT max(segment) FROM segments",
    }
    wrong = []
    for key, sql in checks.items():
        highest = con.execute(sql).fetchall()[0][0]
        try:
            value = int(meta.get(key, "0"))
        except ValueError:
            value = -1
        if highest is not None and value <= int(highest):
            wrong.append(f"{key} {value} would hand out {highest} again")
    if wrong:
        return [Problem("meta counters", "; ".join(wrong), True, "counters")]
    return []


VERIFY_ATTEMPTS = 3
"""A writer that commits while ``verify`` runs can make it see a segment vanish: it then looks again."""


def verify_index(index_dir: Path, db_path: Path) -> VerifyReport:
    """Check everything: database blocks and schema, segments' checksums, every cross-reference.

    Read-only. When the database changed while it ran (a writer committed) and something looked
    wrong, the check runs again on the new state, so a concurrent writer is never reported as damage.
    """
    from codeindex.store.reader import database_stamp

    started = time.perf_counter()
    for _ in range(VERIFY_ATTEMPTS):
        stamp = database_stamp(db_path)
        report = _verify_once(index_dir, db_path)
        if report.ok or database_stamp(db_path) == stamp:
            break
    report.seconds = time.perf_counter() - started
    return report


def _verify_once(index_dir: Path, db_path: Path) -> VerifyReport:
    report = VerifyReport(str(index_dir))
    try:
        con = dbm.connect(db_path, read_only=True)
    except SchemaVersionError:
        raise  # another codeindex's index: its hint says to upgrade, not to rebuild
    except CorruptIndexError as exc:
        report.problems.append(Problem(f"database {db_path.name}", _about(exc, db_path), False, "database"))
        return report
    try:
        try:
            dbm.check_schema(con, db_path)
        except SchemaVersionError:
            raise
        except CorruptIndexError as exc:
            report.problems.append(Problem(f"database {db_path.name}", _about(exc, db_path), False, "schema"))
        else:
            problems, rows = check_tables(con)
            report.problems.extend(problems)
            report.checked.update({f"rows.{t}": n for t, n in rows.items()})
            healthy = set(expected_columns()) - {p.items[0] for p in problems}
            report.problems.extend(check_consistency(con, index_dir, healthy))
            if "segments" in healthy:
                segments = read_segment_records(con)
                report.checked["segments"] = len(segments)
                report.checked["segment_bytes"] = sum(r.n_bytes or 0 for r in segments)
    finally:
        con.close()
    report.checked["database_bytes"] = db_path.stat().st_size
    return report


def _about(exc: Exception, db_path: Path) -> str:
    """An error's message without the database path it starts with (the problem names the file)."""
    text = str(exc)
    for prefix in (f"cannot open {db_path}: ", f"{db_path} is damaged: ", f"{db_path} "):
        text = text.removeprefix(prefix)
    return text
