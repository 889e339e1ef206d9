"""The DuckDB schema, one place. Bump ``SCHEMA_VERSION`` on any incompatible change."""

from __future__ import annotations

SCHEMA_VERSION = 5
"""3: the ``redactions`` table (``store/redactions.py``); 4: the ``symbols`` table (every definition, for
identifier lookups and result grouping); 5: segments carry their file's size, blake3 checksum and stat at
commit (``store/integrity.py``)."""

TABLES = """
CREATE TABLE IF NOT EXISTS meta (k VARCHAR PRIMARY KEY, v VARCHAR);
CREATE TABLE IF NOT EXISTS files (
    path VARCHAR, language VARCHAR, size BIGINT, mtime_ns BIGINT, inode BIGINT, ctime_ns BIGINT,
    hash VARCHAR, parser_id VARCHAR, n_chunks INTEGER, skip_reason VARCHAR
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id BIGINT, path VARCHAR, language VARCHAR, start_line INTEGER, end_line INTEGER,
    start_byte BIGINT, end_byte BIGINT, kind VARCHAR, symbol VARCHAR, text VARCHAR,
    n_tokens INTEGER, vec_id BIGINT, lex_len INTEGER, embed_head VARCHAR
);
CREATE TABLE IF NOT EXISTS vectors (vec_key VARCHAR, vec_id BIGINT, segment INTEGER);
CREATE TABLE IF NOT EXISTS tombstones (vec_id BIGINT, segment INTEGER);
CREATE TABLE IF NOT EXISTS segments (
    segment INTEGER, file VARCHAR, n_vectors BIGINT, index_type VARCHAR,
    n_bytes BIGINT, checksum VARCHAR, file_stat VARCHAR
);
CREATE TABLE IF NOT EXISTS merkle_nodes (path VARCHAR, hash VARCHAR);
CREATE TABLE IF NOT EXISTS symbols (
    path VARCHAR, name VARCHAR, qualified VARCHAR, kind VARCHAR, start_line INTEGER, end_line INTEGER
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER, kind VARCHAR, started_at TIMESTAMP, wall_s DOUBLE, status VARCHAR,
    scheduler VARCHAR, embedder VARCHAR, model_id VARCHAR,
    files_seen INTEGER, files_added INTEGER, files_modified INTEGER, files_deleted INTEGER,
    files_moved INTEGER, files_reparsed INTEGER, files_skipped INTEGER, files_unreadable INTEGER,
    chunks_total BIGINT, chunks_written BIGINT, chunks_embedded BIGINT, chunks_reused BIGINT,
    tokens_embedded BIGINT, stages_json VARCHAR, skipped_json VARCHAR, secrets_redacted BIGINT
);
CREATE TABLE IF NOT EXISTS redactions (path VARCHAR, line INTEGER, kind VARCHAR, name VARCHAR);
"""

POSTINGS_DDL = """
CREATE TABLE IF NOT EXISTS postings (
    term_id BIGINT NOT NULL,
    chunk_id BIGINT NOT NULL,
    tf INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lex_stats (
    k VARCHAR PRIMARY KEY,
    v DOUBLE NOT NULL
);
INSERT INTO lex_stats VALUES ('n_docs', 0), ('total_len', 0), ('unclustered_rows', 0), ('dead_chunks', 0)
    ON CONFLICT DO NOTHING;
"""
"""Tables of the lexical index (``store/postings.py``); idempotent."""


def expected_columns() -> dict[str, tuple[str, ...]]:
    """Every table this schema creates and its columns in order, read from the DDL above (one place)."""
    import re

    out: dict[str, tuple[str, ...]] = {}
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\);", TABLES + POSTINGS_DDL, re.S):
        out[name] = tuple(part.split()[0] for part in body.replace("\n", " ").split(",") if part.strip())
    return out
