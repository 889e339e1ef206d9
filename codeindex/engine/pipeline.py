"""The driver: overlaps parse → embed → write with bounded in-flight work.

Parse tasks (coarse batches of files) and embed tasks (token-budget batches across files) run on the
executor; the write stage runs here in the driver, so results land on the machine that owns the
index even when the workers are remote. While batch N embeds, batch N+1 parses and batch N-1 is
written. Chunk rows and postings are staged to Parquet files and vectors to segment files as they
arrive, so memory stays flat on huge trees; nothing becomes visible until the commit.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from codeindex.changes.merkle import leaf_hash
from codeindex.changes.read import ReadSkip
from codeindex.embedders.batching import plan_batches
from codeindex.engine.executor import Executor
from codeindex.engine.results import FileOutcome, PipelineResult
from codeindex.engine.tasks import EmbedContext, EmbeddedBatch, ParsedBatch, ParseItem, vector_key
from codeindex.errors import EmbedderError, Interrupted, UsageError, environment_problem
from codeindex.models import Chunk, ParseResult
from codeindex.progress import ProgressCallback, ProgressEvent
from codeindex.store.checksums import fingerprint_file
from codeindex.store.segments import SegmentWriter

CHUNK_SCHEMA = pa.schema([
    ("chunk_id", pa.int64()), ("path", pa.string()), ("language", pa.string()),
    ("start_line", pa.int32()), ("end_line", pa.int32()), ("start_byte", pa.int64()),
    ("end_byte", pa.int64()), ("kind", pa.string()), ("symbol", pa.string()), ("text", pa.string()),
    ("n_tokens", pa.int32()), ("vec_id", pa.int64()), ("lex_len", pa.int32()), ("embed_head", pa.string()),
])

FULL_TEXT_MARK = "\x00"

EMBED_WINDOW_BUDGETS = 64
"""Texts waiting to be embedded are planned into batches once they fill this many ``batch_tokens``
budgets (about 1M tokens, a few MB of text, at the default budget). Rows are sorted by length only
within a window, and every batch is padded to its longest row, so small windows waste compute on
padding: replaying the small and medium corpora's chunk lengths, a window of 8 budgets padded to
1.10-1.13x the real tokens, 32 to 1.04x, 64 to 1.03x; sorting everything at once, 1.01x. A bigger
window delays the first embed task by the time it takes to parse its ~4,000 chunks (seconds)."""

PARSE_BACKLOG_BUDGETS = 2 * EMBED_WINDOW_BUDGETS
"""No new parse task is submitted while this many budgets of parsed text wait to be embedded: parsing
stays a window ahead of embedding, and memory stays flat however large the tree."""


def split_embed_text(chunk: Chunk) -> str:
    """What to store so that ``embed_text`` can be rebuilt from the display text: the header."""
    if chunk.embed_text.endswith(chunk.text):
        return chunk.embed_text[: len(chunk.embed_text) - len(chunk.text)]
    return FULL_TEXT_MARK + chunk.embed_text


def join_embed_text(head: str, text: str) -> str:
    return head[1:] if head.startswith(FULL_TEXT_MARK) else head + text


class KnownKeyLookup(Protocol):
    """Stored vector keys: a mapping that may fill itself (``prefetch``) before it is asked."""

    def __contains__(self, key: object) -> bool: ...
    def __getitem__(self, key: str) -> int: ...
    def prefetch(self, keys: Iterable[str]) -> None: ...


@dataclass(slots=True)
class _Pending:
    key: str
    text: str
    n_tokens: int


class Pipeline:
    """One run's parse → embed → write over an executor. Construct, then ``run``."""

    def __init__(self, *, root: Path, executor: Executor, ctx: EmbedContext, staging: Path,
                 segments: SegmentWriter, known_keys: KnownKeyLookup, next_chunk_id: int, next_vec_id: int,
                 parse_batch_files: int, max_in_flight: int, progress: ProgressCallback,
                 read_file: Callable[[str], bytes] | None = None) -> None:
        self.root = root
        self.executor = executor
        self.ctx = ctx
        self.staging = staging
        self.segments = segments
        self.known = known_keys
        self.parse_batch_files = max(1, parse_batch_files)
        self.max_in_flight = max(1, max_in_flight) * max(1, executor.n_slots)
        self.progress = progress
        self.read_file = read_file or (lambda rel: (root / rel).read_bytes())
        self.result = PipelineResult(next_chunk_id=next_chunk_id, next_vec_id=next_vec_id)
        self._assigned: dict[str, int] = {}  # key -> vec_id for vectors new in this run
        self._queue: list[_Pending] = []
        self._queued_tokens = 0
        self._part = 0
        self._chunks_total_hint = 0
        self._changed_since_scan: set[str] = set()

    # ------------------------------------------------------------------ staging (the write stage)

    def _vec_id_for(self, key: str, embed_text: str, n_tokens: int) -> int:
        if key in self.known:
            self.result.chunks_reused += 1
            return self.known[key]
        if key in self._assigned:
            self.result.chunks_reused += 1
            return self._assigned[key]
        vec_id = self.result.next_vec_id
        self.result.next_vec_id += 1
        self._assigned[key] = vec_id
        self._queue.append(_Pending(key, embed_text, n_tokens))
        self._queued_tokens += min(n_tokens, 512)
        return vec_id

    def stage_rows(self, rows: pa.Table, postings: pa.Table | None) -> None:
        """Stage chunk rows (``CHUNK_SCHEMA`` minus chunk_id/vec_id) with fresh ids; postings use row indices."""
        start = time.perf_counter()
        n = rows.num_rows
        if n:
            first = self.result.next_chunk_id
            self.result.next_chunk_id += n
            heads = rows.column("embed_head").to_pylist()
            texts = rows.column("text").to_pylist()
            n_tokens = rows.column("n_tokens").to_pylist()
            embed_texts = [join_embed_text(head, text) for head, text in zip(heads, texts, strict=True)]
            keys = [vector_key(self.ctx.key_prefix, t) for t in embed_texts]
            self.known.prefetch(keys)
            vec_ids = [self._vec_id_for(key, text, ntok) for key, text, ntok in zip(keys, embed_texts, n_tokens,
                                                                                     strict=True)]
            chunk_ids = pa.array(np.arange(first, first + n, dtype=np.int64))
            rows = rows.set_column(rows.schema.get_field_index("chunk_id"), "chunk_id", chunk_ids)
            rows = rows.set_column(rows.schema.get_field_index("vec_id"), "vec_id",
                                   pa.array(vec_ids, pa.int64()))
            self._part += 1
            part = self.staging / f"chunks-{self._part:06d}.parquet"
            self._write_part(rows.cast(CHUNK_SCHEMA), part)
            self.result.chunk_parts.append(part)
            self.result.chunks_written += n
            if postings is not None and postings.num_rows:
                local = postings.column("chunk_id")
                postings = postings.set_column(postings.schema.get_field_index("chunk_id"), "chunk_id",
                                               pa.array(local.to_numpy().astype(np.int64) + first))
                ppart = self.staging / f"postings-{self._part:06d}.parquet"
                self._write_part(postings, ppart)
                self.result.postings_parts.append(ppart)
        self.result.times.write += time.perf_counter() - start

    def _write_part(self, table: pa.Table, path: Path) -> None:
        """Write a staged part and record its checksum (the commit checks it before reading the part)."""
        try:
            pq.write_table(table, path)
            self.result.staged[path] = fingerprint_file(path)
        except OSError as exc:
            raise environment_problem(exc, path, "write the staged part") from exc

    def _stage_parsed(self, batch: ParsedBatch) -> None:
        self.result.times.parse += batch.seconds
        chunks: list[Chunk] = []
        for res in batch.results:
            self._record_outcome(res)
            chunks.extend(res.chunks)
        rows = chunks_to_table(chunks, batch.lex_lens)
        self.stage_rows(rows, batch.postings)
        self._stage_symbols(batch.results)
        self.progress(ProgressEvent("parse", done=len(self.result.outcomes),
                                    detail={"chunks": self.result.chunks_written}))

    def _stage_symbols(self, results: Sequence[ParseResult]) -> None:
        """The batch's definitions → a Parquet part of ``symbols`` rows (``store/symbols.py``)."""
        from codeindex.store.symbols import symbols_table

        rows = [(res.path, d) for res in results for d in res.definitions]
        if not rows:
            return
        start = time.perf_counter()
        part = self.staging / f"symbols-{len(self.result.symbol_parts) + 1:06d}.parquet"
        pq.write_table(symbols_table(rows), part)
        self.result.symbol_parts.append(part)
        self.result.times.write += time.perf_counter() - start

    def _record_outcome(self, res: ParseResult) -> None:
        self.result.outcomes[res.path] = FileOutcome(res.path, res.parser_id, len(res.chunks), res.skip_reason,
                                                     res.content_hash, res.path in self._changed_since_scan,
                                                     list(res.redactions))

    def _stage_embedded(self, keys: Sequence[str], out: EmbeddedBatch) -> None:
        start = time.perf_counter()
        self.result.times.embed += out.seconds
        vectors = out.vectors
        if vectors.shape[0] != len(keys):
            raise EmbedderError(f"embedder {self.ctx.backend} returned {vectors.shape[0]} vectors for "
                                f"{len(keys)} texts")
        ids = np.array([self._assigned[k] for k in keys], dtype=np.int64)
        placed = self.segments.add(ids, vectors)
        for key, vec_id, seg in zip(keys, ids.tolist(), placed, strict=True):
            self.result.new_vectors[key] = (vec_id, seg)
        self.result.chunks_embedded += len(keys)
        self.result.tokens_embedded += out.tokens
        self.result.devices.add(out.device)
        by_worker = self.result.embed_s_by_worker
        by_worker[out.worker] = by_worker.get(out.worker, 0.0) + out.seconds
        self.result.times.write += time.perf_counter() - start
        self.progress(ProgressEvent("embed", done=self.result.chunks_embedded,
                                    total=len(self._assigned),
                                    detail={"tokens": self.result.tokens_embedded,
                                            "embed_s": self.result.times.embed}))

    # ------------------------------------------------------------------ scheduling

    def _take_embed_batches(self, final: bool) -> list[list[_Pending]]:
        """Form token-budget batches from the queue once it holds enough to sort by length meaningfully."""
        budget = self.ctx.settings.batch_tokens
        if not self._queue or (not final and self._queued_tokens < EMBED_WINDOW_BUDGETS * budget):
            return []
        lengths = [p.n_tokens for p in self._queue]
        order = plan_batches(lengths, budget, self.ctx.max_tokens)
        batches = [[self._queue[i] for i in idx] for idx in order]
        self._queue, self._queued_tokens = [], 0
        return batches

    def run(self, items: Sequence[tuple[str, str, str, str]], carried: Sequence[pa.Table] = ()) -> PipelineResult:
        """``items``: (path, language, parser name, content hash) to parse; ``carried``: chunk rows to re-stage."""
        wall_start = time.perf_counter()
        for rows in carried:  # moved files and model switches: no parse, maybe embed
            from codeindex.search.analysis import postings_table

            postings, _ = postings_table(list(range(rows.num_rows)), rows.column("text").to_pylist(),
                                         rows.column("path").to_pylist(), rows.column("symbol").to_pylist())
            self.stage_rows(rows, postings)
        batches: deque[list[tuple[str, str, str, str]]] = deque(
            list(items[i:i + self.parse_batch_files]) for i in range(0, len(items), self.parse_batch_files))
        parse_futs: dict[Any, None] = {}
        embed_futs: dict[Any, list[str]] = {}
        embed_ready: deque[list[_Pending]] = deque()
        self.progress(ProgressEvent("parse", done=0, total=len(items)))
        try:
            while True:
                backlog = self._queued_tokens + sum(p.n_tokens for b in embed_ready for p in b)
                while (batches and len(parse_futs) < self.max_in_flight
                       and backlog < PARSE_BACKLOG_BUDGETS * self.ctx.settings.batch_tokens):
                    parse_futs[self.executor.submit_parse(self._read(batches.popleft()), self.ctx)] = None
                final = not batches and not parse_futs
                embed_ready.extend(self._take_embed_batches(final))
                while embed_ready and len(embed_futs) < self.max_in_flight:
                    group = embed_ready.popleft()
                    keys = [p.key for p in group]
                    fut = self.executor.submit_embed(keys, [p.text for p in group], [p.n_tokens for p in group],
                                                     self.ctx)
                    embed_futs[fut] = keys
                if not parse_futs and not embed_futs:
                    if batches or embed_ready or self._queue:
                        continue
                    break
                done, _ = self.executor.wait_any([*parse_futs, *embed_futs])
                for fut in done:
                    if fut in parse_futs:
                        del parse_futs[fut]
                        self._stage_parsed(fut.result())
                    else:
                        keys = embed_futs.pop(fut)
                        try:
                            out = fut.result()
                        except (EmbedderError, UsageError):
                            raise
                        except Exception as exc:
                            raise EmbedderError(f"embedder {self.ctx.backend} failed: "
                                                f"{type(exc).__name__}: {exc}") from exc
                        self._stage_embedded(keys, out)
        except KeyboardInterrupt:
            for fut in [*parse_futs, *embed_futs]:
                cancel = getattr(fut, "cancel", None)
                if cancel is not None:
                    cancel()
            raise Interrupted("interrupted") from None
        self.result.times.wall = time.perf_counter() - wall_start
        return self.result

    def _read(self, batch: Sequence[tuple[str, str, str, str]]) -> list[ParseItem]:
        """Read a batch for parsing: the one read whose bytes are chunked, and hashed again here.

        The scan hashed each file a moment ago; if the bytes read now differ (a checkout, an editor,
        a truncation mid-run), the file is parsed from these bytes and its stored hash becomes theirs,
        marked so that the next run hashes the file again (``FileOutcome.changed_since_scan``): the
        index never holds chunks of one content under the hash of another.
        """
        start = time.perf_counter()
        out = []
        for path, language, parser, scanned_hash in batch:
            try:
                data = self.read_file(path)
            except ReadSkip as skip:
                self._record_outcome(ParseResult(path, scanned_hash, "", skip_reason=skip.reason))
                continue
            except OSError as exc:
                self._record_outcome(ParseResult(path, scanned_hash, "", skip_reason=f"unreadable: {exc.strerror}"))
                continue
            content_hash = leaf_hash(data)
            if content_hash != scanned_hash:
                self._changed_since_scan.add(path)
            out.append(ParseItem(path, language, parser, content_hash, data))
        self.result.times.read += time.perf_counter() - start
        return out


def chunks_to_table(chunks: Sequence[Chunk], lex_lens: Sequence[int]) -> pa.Table:
    """Chunk records → Arrow rows in ``CHUNK_SCHEMA`` (ids filled in by ``stage_rows``)."""
    n = len(chunks)
    return pa.table({
        "chunk_id": pa.array([0] * n, pa.int64()),
        "path": [c.path for c in chunks],
        "language": [c.language for c in chunks],
        "start_line": pa.array([c.start_line for c in chunks], pa.int32()),
        "end_line": pa.array([c.end_line for c in chunks], pa.int32()),
        "start_byte": pa.array([c.start_byte for c in chunks], pa.int64()),
        "end_byte": pa.array([c.end_byte for c in chunks], pa.int64()),
        "kind": [c.kind for c in chunks],
        "symbol": [c.symbol for c in chunks],
        "text": [c.text for c in chunks],
        "n_tokens": pa.array([c.n_tokens for c in chunks], pa.int32()),
        "vec_id": pa.array([0] * n, pa.int64()),
        "lex_len": pa.array(list(lex_lens), pa.int32()),
        "embed_head": [split_embed_text(c) for c in chunks],
    }, schema=CHUNK_SCHEMA)
