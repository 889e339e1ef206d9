"""What an update would really embed, for ``codeindex update --plan``: priced from its own texts.

Chunk counts by bytes overestimate an edit badly: most chunks of an edited file are unchanged and
reuse their stored vector (three edited files were once estimated at 446 chunks against 3 really
embedded). So the files the update would parse are chunked here, in-process, exactly as the run will
chunk them; their vector keys are looked up in the index, and only texts without a stored vector
count. When the files are many, a deterministic sample of them up to ``SAMPLE_BYTES`` is chunked and
the result scaled by bytes. Vectors a killed run left pending count too. Nothing is written.
"""

from __future__ import annotations

import os

from codeindex.changes.plan import IndexState, UpdatePlan
from codeindex.changes.read import ReadSkip, read_source
from codeindex.config import Config
from codeindex.embedders.choice import EmbedderChoice
from codeindex.engine.tasks import EmbedContext, ParseItem, parse_batch, vector_key
from codeindex.languages import LanguageMap
from codeindex.models import SourceFile
from codeindex.plugins import get_plugin_manager
from codeindex.store import db as dbm
from codeindex.store.layout import IndexLayout
from codeindex.store.session import ReadSession

SAMPLE_BYTES = 4 * 1024 * 1024
"""At most this much source is chunked for an estimate (~1-2 s); beyond it, the sample is scaled."""


def estimate_embedding(layout: IndexLayout, config: Config, plan: UpdatePlan, state: IndexState,
                       choice: EmbedderChoice, files: dict[str, SourceFile]) -> None:
    """Fill ``plan.estimated_chunks`` (texts to embed), ``estimated_tokens`` and ``estimated_seconds``.

    ``files``: what discovery found (each file's language, as it decided it, and its checked path).
    """
    with ReadSession(layout.db_path) as reads:
        if plan.model_change:  # every stored text is embedded again, with the other model
            chunks, tokens = _stored_texts(reads)
        else:
            chunks, tokens = _new_texts(layout, config, plan, choice, reads, files)
            pending = int(state.meta.get("vectors_pending", "0") or 0)
            if pending:
                more_chunks, more_tokens = _pending_texts(reads)
                chunks, tokens = chunks + more_chunks, tokens + more_tokens
    plan.estimated_chunks, plan.estimated_tokens = chunks, tokens
    if state.runs_throughput and state.runs_throughput[0]:
        plan.estimated_seconds = round(tokens / state.runs_throughput[0], 2)


def _new_texts(layout: IndexLayout, config: Config, plan: UpdatePlan, choice: EmbedderChoice,
               reads: ReadSession, files: dict[str, SourceFile]) -> tuple[int, int]:
    """(texts, tokens) of the files to parse that have no stored vector: chunked here, as the run will."""
    paths = [p for p in plan.to_parse if p in files]
    if not paths:
        return 0, 0
    sizes = {p: files[p].stat.size for p in paths}
    total = sum(sizes.values())
    sample = _sample(paths, sizes, SAMPLE_BYTES)
    sample_bytes = sum(sizes[p] for p in sample) or 1
    lang_map = LanguageMap.from_parsers(get_plugin_manager().parsers())
    ctx = EmbedContext(choice.backend, choice.settings, min(config["chunking.max_tokens"], choice.max_tokens),
                       choice.key_prefix)
    root, cap = os.fspath(layout.root), config["discovery.max_file_bytes"]
    items = []
    for path in sample:
        file = files[path]
        try:  # the run's checked read (changes/read.py): what it would refuse is not priced
            data = read_source(root, file, cap)
        except (ReadSkip, OSError):
            continue
        items.append(ParseItem(path, file.language, lang_map.parser_for(file.language) or "", "", data))
    batch = parse_batch(items, ctx)
    lengths: dict[str, int] = {}
    for result in batch.results:
        for chunk in result.chunks:
            lengths[vector_key(ctx.key_prefix, chunk.embed_text)] = min(chunk.n_tokens, 512)
    stored = _stored_keys(reads, list(lengths))
    new = [n for key, n in lengths.items() if key not in stored]
    scale = total / sample_bytes
    return round(len(new) * scale), round(sum(new) * scale)


def _sample(paths: list[str], sizes: dict[str, int], budget: int) -> list[str]:
    """Every ``step``-th file (sorted by path, so the same plan gets the same sample) up to ``budget`` bytes."""
    total = sum(sizes.values())
    if total <= budget:
        return paths
    step = max(1, round(total / budget))
    out, taken = [], 0
    for path in paths[::step]:
        if taken >= budget:
            break
        out.append(path)
        taken += sizes[path]
    return out


def _stored_keys(reads: ReadSession, keys: list[str]) -> set[str]:
    """The keys among ``keys`` whose vectors the index holds (pending ones do not count: not embedded)."""
    import pyarrow as pa

    if not keys or not reads.db_path.exists():
        return set()
    con = reads.con()
    dbm.register_list(con, "estimate_keys", "vec_key", keys, pa.string())
    return {r[0] for r in con.execute("SELECT vec_key FROM vectors WHERE segment IS NOT NULL AND vec_key IN "
                                      "(SELECT vec_key FROM estimate_keys)").fetchall()}


def _stored_texts(reads: ReadSession) -> tuple[int, int]:
    row = dbm.first_row(reads.con(), "SELECT count(*), coalesce(sum(least(n_tokens, 512)), 0) FROM "
                                     "(SELECT DISTINCT ON (vec_id) n_tokens FROM chunks)")
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _pending_texts(reads: ReadSession) -> tuple[int, int]:
    row = dbm.first_row(reads.con(), """
        SELECT count(*), coalesce(sum(least(n_tokens, 512)), 0) FROM (
            SELECT DISTINCT ON (v.vec_id) c.n_tokens FROM vectors v JOIN chunks c ON c.vec_id = v.vec_id
            WHERE v.segment IS NULL)""")
    return (int(row[0]), int(row[1])) if row else (0, 0)
