"""The driver: overlaps parse → embed → write with bounded in-flight work.

Parse tasks (coarse batches of files) and embed tasks (token-budget batches across files) run on the
executor; the write stage runs here in the driver, so results land on the machine that owns the
index even when the workers are remote. While batch N embeds, batch N+1 parses and batch N-1 is
written. Chunk rows and postings are staged to Parquet files and vectors to segment files as they
arrive, so memory stays flat on huge trees; nothing becomes visible until a commit. A long run hands
its staged work to a checkpoint (``engine/checkpoint.py``) every so often and starts staging anew.

Parsing is bounded by the parsed text held in memory, not by the embedding: a checkpoint commits the
chunks of the texts waiting for their vectors, after which the pipeline keeps only their keys and
reads the texts back from the database when their window is embedded (``engine/waiting.py``). A
first build's lexical checkpoints come every few seconds, so it parses the whole tree ahead of the
embedding and every file is lexically searchable soon after the parsing ends.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from codeindex.changes.merkle import leaf_hash
from codeindex.changes.read import ReadSkip
from codeindex.embedders.batching import plan_batches
from codeindex.engine.executor import Executor
from codeindex.engine.results import FileOutcome, PipelineResult, StagedWork
from codeindex.engine.tasks import EmbedContext, EmbeddedBatch, ParsedBatch, ParseItem, vector_key
from codeindex.engine.waiting import PendingText, WaitingTexts, capped
from codeindex.errors import CorruptIndexError, EmbedderError, Interrupted, UsageError, environment_problem
from codeindex.models import Chunk, ParseResult
from codeindex.progress import ProgressCallback, ProgressEvent, RunProgress
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
"""No new parse task is submitted while this many budgets of parsed text are held in memory: texts not
committed yet, and those of the embed batches formed but not submitted. A checkpoint commits the chunks
of the waiting texts, which are then dropped (and read back when embedded): with checkpoints, parsing
runs ahead of embedding; without (``engine.checkpoint_s = 0``) it stays a window ahead. Either way
memory stays flat however large the tree."""

EMBEDS_PER_WORKER = 2
"""Embed tasks in flight per worker: the one running and the next, so a worker never waits on the driver.
More only queue, and they crowd parsing out: the scheduler gives a worker as many tasks as it has threads
(a little more: ``worker-saturation``) and holds the rest back in submission order, so with four embed
tasks in flight on a two-thread worker no parse task reached it for minutes (a medium first build parsed
900 of 2,127 files, then nothing until the embedding caught up; with two, the whole tree in 50 s)."""

LEXICAL_FLUSH_BUDGETS = EMBED_WINDOW_BUDGETS
"""A run with lexical checkpoints (a first build) commits once the uncommitted texts it holds reach this
many budgets, without waiting for the next timed one (``engine/checkpoint.py``): parsing never waits on
memory. Such commits come at fixed points of the run (a window's worth of text each), not on the clock."""

__all__ = ["CHUNK_SCHEMA", "PendingText", "Pipeline", "chunks_to_table", "join_embed_text", "split_embed_text"]


def split_embed_text(chunk: Chunk) -> str:
    """What to store so that ``embed_text`` can be rebuilt from the display text: the header."""
    if chunk.embed_text.endswith(chunk.text):
        return chunk.embed_text[: len(chunk.embed_text) - len(chunk.text)]
    return FULL_TEXT_MARK + chunk.embed_text


def join_embed_text(head: str, text: str) -> str:
    return head[1:] if head.startswith(FULL_TEXT_MARK) else head + text


class KnownKeyLookup(Protocol):
    """Stored vector keys: a mapping that may fill itself (``prefetch``) before it is asked.

    A stored key may be *pending*: a killed run committed the chunk but not yet its vector.
    """

    def __contains__(self, key: object) -> bool: ...
    def __getitem__(self, key: str) -> int: ...
    def prefetch(self, keys: Iterable[str]) -> None: ...
    def is_pending(self, vec_id: int) -> bool: ...
    def forget(self, keys: Iterable[str]) -> None: ...


class CheckpointHook(Protocol):
    """Commits the pipeline's staged work while it runs (``engine/checkpoint.py: Checkpointer``).

    ``due`` hears whether parsing is done and whether the uncommitted texts held fill their share of
    memory (``LEXICAL_FLUSH_BUDGETS``): a first build's lexical checkpoints then come early.
    """

    def due(self, result: PipelineResult, now: float, *, parsing_done: bool, memory_full: bool) -> bool: ...
    def __call__(self, result: PipelineResult) -> set[str]: ...


StoredTexts = Callable[[Sequence[int]], Mapping[int, str]]
"""Committed chunk ids -> their embed texts, read on the run's own read session (``engine/reuse.py``)."""


class Pipeline:
    """One run's parse → embed → write over an executor. Construct, then ``run``."""

    def __init__(self, *, root: Path, executor: Executor, ctx: EmbedContext, staging: Path,
                 segments: SegmentWriter, known_keys: KnownKeyLookup, next_chunk_id: int, next_vec_id: int,
                 parse_batch_files: int, max_in_flight: int, progress: ProgressCallback,
                 read_file: Callable[[str], bytes] | None = None, checkpoint: CheckpointHook | None = None,
                 run_progress: RunProgress | None = None, resumed: Sequence[PendingText] = (),
                 stored_texts: StoredTexts | None = None) -> None:
        """``resumed``: a killed run's committed texts without vectors (read back through ``stored_texts``);
        ``stored_texts``: reads committed chunks' texts back. Without it, texts are held until embedded."""
        self.root = root
        self.executor = executor
        self.ctx = ctx
        self.staging = staging
        self.segments = segments
        self.known = known_keys
        self.parse_batch_files = max(1, parse_batch_files)
        self.max_in_flight = max(1, max_in_flight) * max(1, executor.n_slots)
        self.max_embeds_in_flight = EMBEDS_PER_WORKER * max(1, executor.n_workers)
        self.progress = progress
        self.read_file = read_file or (lambda rel: (root / rel).read_bytes())
        self.checkpoint = checkpoint
        self.plan = run_progress or RunProgress(bytes_total=0)
        self.result = PipelineResult(next_chunk_id=next_chunk_id, next_vec_id=next_vec_id)
        self._vec_ids: dict[str, int] = {}  # key -> vec_id of every vector this run embeds or reuses new
        self.stored_texts = stored_texts
        self._waiting = WaitingTexts()
        self._ready_tokens = 0  # capped tokens of the embed batches formed and not yet submitted
        self._part = 0
        self._files_total = 0
        self._symbol_part = 0
        self._changed_since_scan: set[str] = set()
        for pending in resumed:  # a killed run's chunks whose vectors it did not finish: embed them first
            self._vec_ids[pending.key] = pending.vec_id
            self._enqueue(pending)
        self.plan.add_known(sum(capped(p.n_tokens) for p in resumed), len(resumed))

    # ------------------------------------------------------------------ staging (the write stage)

    def _enqueue(self, pending: PendingText) -> None:
        self._waiting.add(pending)

    @property
    def texts_held(self) -> int:
        """Texts held in memory while they wait for their vectors (not those of formed batches)."""
        return self._waiting.texts_held()

    @property
    def texts_waiting(self) -> int:
        return len(self._waiting)

    def _vec_id_for(self, key: str, embed_text: str, n_tokens: int, chunk_id: int) -> int:
        if key in self._vec_ids:  # this run already embeds (or embedded) this text
            self.result.chunks_reused += 1
            return self._vec_ids[key]
        if key in self.known:
            vec_id = self.known[key]
            if not self.known.is_pending(vec_id):
                self.result.chunks_reused += 1
                return vec_id
            self._vec_ids[key] = vec_id  # stored, but a killed run never embedded it: do it now
            self._enqueue(PendingText(key, embed_text, n_tokens, vec_id, chunk_id))
            return vec_id
        vec_id = self.result.next_vec_id
        self.result.next_vec_id += 1
        self._vec_ids[key] = vec_id
        self.result.work.new_keys[key] = vec_id
        self._enqueue(PendingText(key, embed_text, n_tokens, vec_id, chunk_id))
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
            vec_ids = [self._vec_id_for(key, text, ntok, first + i)
                       for i, (key, text, ntok) in enumerate(zip(keys, embed_texts, n_tokens, strict=True))]
            chunk_ids = pa.array(np.arange(first, first + n, dtype=np.int64))
            rows = rows.set_column(rows.schema.get_field_index("chunk_id"), "chunk_id", chunk_ids)
            rows = rows.set_column(rows.schema.get_field_index("vec_id"), "vec_id",
                                   pa.array(vec_ids, pa.int64()))
            self._part += 1
            part = self.staging / f"chunks-{self._part:06d}.parquet"
            self._write_part(rows.cast(CHUNK_SCHEMA), part)
            self.result.work.chunk_parts.append(part)
            self.result.chunks_written += n
            if postings is not None and postings.num_rows:
                local = postings.column("chunk_id")
                postings = postings.set_column(postings.schema.get_field_index("chunk_id"), "chunk_id",
                                               pa.array(local.to_numpy().astype(np.int64) + first))
                ppart = self.staging / f"postings-{self._part:06d}.parquet"
                self._write_part(postings, ppart)
                self.result.work.postings_parts.append(ppart)
        self.result.times.write += time.perf_counter() - start

    def _write_part(self, table: pa.Table, path: Path) -> None:
        """Write a staged part and record its checksum (the commit checks it before reading the part)."""
        try:
            pq.write_table(table, path)
            self.result.work.staged[path] = fingerprint_file(path)
        except OSError as exc:
            raise environment_problem(exc, path, "write the staged part") from exc

    def _stage_parsed(self, batch: ParsedBatch, n_bytes: int) -> None:
        self.result.times.parse += batch.seconds
        chunks: list[Chunk] = []
        for res in batch.results:
            self._record_outcome(res)
            chunks.extend(res.chunks)
        rows = chunks_to_table(chunks, batch.lex_lens)
        queued, tokens = len(self._waiting), self._waiting.tokens
        self.stage_rows(rows, batch.postings)
        self._stage_symbols(batch.results)
        self.plan.parsed(n_bytes, self._waiting.tokens - tokens, len(self._waiting) - queued)
        self.progress(ProgressEvent("parse", done=len(self.result.outcomes), total=self._files_total,
                                    detail={"chunks": self.result.chunks_written}))

    def _stage_symbols(self, results: Sequence[ParseResult]) -> None:
        """The batch's definitions → a Parquet part of ``symbols`` rows (``store/symbols.py``)."""
        from codeindex.store.symbols import symbols_table

        rows = [(res.path, d) for res in results for d in res.definitions]
        if not rows:
            return
        start = time.perf_counter()
        self._symbol_part += 1
        part = self.staging / f"symbols-{self._symbol_part:06d}.parquet"
        self._write_part(symbols_table(rows), part)
        self.result.work.symbol_parts.append(part)
        self.result.times.write += time.perf_counter() - start

    def _record_outcome(self, res: ParseResult) -> None:
        outcome = FileOutcome(res.path, res.parser_id, len(res.chunks), res.skip_reason, res.content_hash,
                              res.path in self._changed_since_scan, list(res.redactions))
        self.result.outcomes[res.path] = outcome
        self.result.work.outcomes[res.path] = outcome

    def _stage_embedded(self, keys: Sequence[str], out: EmbeddedBatch) -> None:
        start = time.perf_counter()
        self.result.times.embed += out.seconds
        vectors = out.vectors
        if vectors.shape[0] != len(keys):
            raise EmbedderError(f"embedder {self.ctx.backend} returned {vectors.shape[0]} vectors for "
                                f"{len(keys)} texts")
        ids = np.array([self._vec_ids[k] for k in keys], dtype=np.int64)
        placed = self.segments.add(ids, vectors)
        for key, vec_id, seg in zip(keys, ids.tolist(), placed, strict=True):
            self.result.work.embedded[key] = (vec_id, seg)
        self.result.chunks_embedded += len(keys)
        self.result.tokens_embedded += out.tokens
        self.result.devices.add(out.device)
        by_worker = self.result.embed_s_by_worker
        by_worker[out.worker] = by_worker.get(out.worker, 0.0) + out.seconds
        self.result.times.write += time.perf_counter() - start
        self.plan.embedded(out.tokens, len(keys), time.perf_counter())
        self._embed_event()

    def _embed_event(self) -> None:
        now = time.perf_counter()
        self.progress(ProgressEvent("embed", done=self.result.chunks_embedded, total=self.plan.planned_texts,
                                    detail={"tokens": self.result.tokens_embedded,
                                            "embed_s": self.result.times.embed,
                                            "tokens_per_s": self.plan.tokens_per_s(now),
                                            "chunks": self.result.chunks_written,
                                            "shared": self.result.chunks_reused,
                                            "exact": self.plan.parse_finished}))

    def _run_event(self, phase: str) -> None:
        self.progress(self.plan.event(time.perf_counter(), phase))

    # ------------------------------------------------------------------ checkpoints

    def _commit_checkpoint(self) -> None:
        """Hand the staged work to the checkpoint hook, then start a new one (its parts are in the database)."""
        assert self.checkpoint is not None
        self._run_event("checkpoint")
        retired = self.checkpoint(self.result)
        self.known.forget(retired)  # their vectors are gone: a text seen again gets a new one
        if self.stored_texts is not None:  # every waiting text's chunk is committed: read back when embedded
            self._waiting.drop_texts()
        done = self.result.work
        for part in [*done.chunk_parts, *done.postings_parts, *done.symbol_parts]:
            part.unlink(missing_ok=True)
        self.result.work = StagedWork()
        self.result.checkpoints += 1

    # ------------------------------------------------------------------ scheduling

    def _take_embed_window(self, final: bool) -> list[list[PendingText]]:
        """The next window of waiting texts (the oldest, ``EMBED_WINDOW_BUDGETS`` budgets of them) as
        token-budget batches sorted by length, once enough wait to sort meaningfully (or parsing is done)."""
        budget = self.ctx.settings.batch_tokens
        window = EMBED_WINDOW_BUDGETS * budget
        if not self._waiting or (not final and self._waiting.tokens < window):
            return []
        group = self._waiting.take(window)
        self._read_back(group)
        order = plan_batches([p.n_tokens for p in group], budget, self.ctx.max_tokens)
        self._ready_tokens += sum(capped(p.n_tokens) for p in group)
        return [[group[i] for i in idx] for idx in order]

    def _read_back(self, group: Sequence[PendingText]) -> None:
        """Fill in the texts of committed chunks, read from the database; each must still have its key."""
        missing = [p for p in group if p.text is None]
        if not missing:
            return
        if self.stored_texts is None:
            raise RuntimeError("texts of committed chunks to embed, but no way to read them back")
        start = time.perf_counter()
        texts = self.stored_texts([p.chunk_id for p in missing])
        for p in missing:
            text = texts.get(p.chunk_id)
            if text is None or vector_key(self.ctx.key_prefix, text) != p.key:
                what = "is gone" if text is None else "no longer has the text its vector key names"
                raise CorruptIndexError(f"chunk {p.chunk_id}, committed by this run, {what}: nothing more was "
                                        "committed", hint="run `codeindex verify`, then rerun the command")
            p.text = text
        self.result.texts_read_back += len(missing)
        self.result.times.read += time.perf_counter() - start

    def run(self, items: Sequence[tuple[str, str, str, str]], carried: Sequence[pa.Table] = ()) -> PipelineResult:
        """``items``: (path, language, parser name, content hash) to parse; ``carried``: chunk rows to re-stage."""
        wall_start = time.perf_counter()
        self._files_total = len(items)
        for rows in carried:  # moved files and model switches: no parse, maybe embed
            from codeindex.search.analysis import postings_table

            postings, _ = postings_table(list(range(rows.num_rows)), rows.column("text").to_pylist(),
                                         rows.column("path").to_pylist(), rows.column("symbol").to_pylist())
            queued, tokens = len(self._waiting), self._waiting.tokens
            self.stage_rows(rows, postings)
            self.plan.add_known(self._waiting.tokens - tokens, len(self._waiting) - queued)
            self.result.work.carried = True
        batches: deque[list[tuple[str, str, str, str]]] = deque(
            list(items[i:i + self.parse_batch_files]) for i in range(0, len(items), self.parse_batch_files))
        parse_futs: dict[Any, int] = {}  # future -> bytes it parses
        embed_futs: dict[Any, list[str]] = {}
        embed_ready: deque[list[PendingText]] = deque()
        self.progress(ProgressEvent("parse", done=0, total=len(items)))
        self._embed_event()
        self._run_event("parse")
        budget = self.ctx.settings.batch_tokens
        try:
            while True:
                while (batches and len(parse_futs) < self.max_in_flight
                       and self._waiting.held_tokens + self._ready_tokens < PARSE_BACKLOG_BUDGETS * budget):
                    read = self._read(batches.popleft())
                    parse_futs[self.executor.submit_parse(read, self.ctx)] = sum(len(i.data) for i in read)
                final = not batches and not parse_futs
                if final and not self.plan.parse_finished:
                    self.plan.parse_finished = True  # from here on the plan is exact
                    self._embed_event()
                if not embed_ready:  # one window at a time: its texts are all that is read back
                    embed_ready.extend(self._take_embed_window(final))
                while embed_ready and len(embed_futs) < self.max_embeds_in_flight:
                    group = embed_ready.popleft()
                    self._ready_tokens -= sum(capped(p.n_tokens) for p in group)
                    keys = [p.key for p in group]
                    texts = [p.text for p in group if p.text is not None]  # all of them: read back
                    assert len(texts) == len(keys)
                    fut = self.executor.submit_embed(keys, texts, [p.n_tokens for p in group], self.ctx)
                    embed_futs[fut] = keys
                if not parse_futs and not embed_futs:
                    if batches or embed_ready or self._waiting:
                        continue
                    break
                finished, _ = self.executor.wait_any([*parse_futs, *embed_futs])
                # in the order submitted, not the set's: the same run stages and batches the same way
                # every time, so its checkpoints are reproducible (the crash tests rely on it)
                for fut in [f for f in (*parse_futs, *embed_futs) if f in finished]:
                    if fut in parse_futs:
                        n_bytes = parse_futs.pop(fut)
                        self._stage_parsed(fut.result(), n_bytes)
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
                self._run_event("embed" if self.result.chunks_embedded else "parse")
                if self.checkpoint is not None and self._checkpoint_due(budget, not batches and not parse_futs):
                    self._commit_checkpoint()
        except KeyboardInterrupt:
            for fut in [*parse_futs, *embed_futs]:
                cancel = getattr(fut, "cancel", None)
                if cancel is not None:
                    cancel()
            raise Interrupted("interrupted") from None
        self.result.times.wall = time.perf_counter() - wall_start
        return self.result

    def _checkpoint_due(self, budget: int, parsing_done: bool) -> bool:
        assert self.checkpoint is not None
        full = self.stored_texts is not None and self._waiting.held_tokens >= LEXICAL_FLUSH_BUDGETS * budget
        return self.checkpoint.due(self.result, time.perf_counter(), parsing_done=parsing_done, memory_full=full)

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
