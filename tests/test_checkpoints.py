"""Progressive builds: checkpoint decisions, planned work and its ETA, and what a stopped build leaves.

The SIGKILL-at-every-checkpoint-point cases are in test_crash_safety.py; the kills at 25/50/90% of the
embedding in test_resume.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from codeindex import Index
from codeindex.engine.checkpoint import CheckpointPolicy
from codeindex.progress import ProgressEvent, RunProgress
from codeindex.render import progress_line
from tests.crash_helpers import check_invariants, make_tree, read_state

CHECKPOINTING = {"CODEINDEX_ENGINE__CHECKPOINT_S": "3600", "CODEINDEX_ENGINE__LEXICAL_CHECKPOINT_S": "0",
                 "CODEINDEX_ENGINE__CHECKPOINT_CHUNKS": "8"}


# ---------------------------------------------------------------------------------------------- pure decisions

def test_checkpoint_policy() -> None:
    policy = CheckpointPolicy(every_s=30, every_chunks=100, lexical_s=3)
    due = policy.due
    assert not due(since_last=99, parsed_since=0, embedded_since=0)  # nothing new
    assert not due(since_last=2, parsed_since=5, embedded_since=0)
    assert due(since_last=3, parsed_since=5, embedded_since=0)  # parsed files wait no longer: lexical search
    assert not due(since_last=29, parsed_since=0, embedded_since=50)  # vectors alone wait for the cadence
    assert due(since_last=30, parsed_since=0, embedded_since=1)  # time
    assert due(since_last=1, parsed_since=0, embedded_since=100)  # size
    update = CheckpointPolicy(every_s=30, every_chunks=100)  # not a first build: no lexical cadence
    assert not update.due(since_last=5, parsed_since=50, embedded_since=0)
    off = CheckpointPolicy(every_s=0, every_chunks=100, lexical_s=0)
    assert not off.enabled
    assert not off.due(since_last=99, parsed_since=9, embedded_since=999)


def test_lexical_checkpoints_come_when_parsing_ends_or_memory_fills_and_spread_out_as_the_run_goes_on() -> None:
    policy = CheckpointPolicy(every_s=30, every_chunks=100, lexical_s=3)
    assert policy.due(since_last=0.1, parsed_since=5, embedded_since=0, parsing_done=True)  # the last files: at once
    assert not policy.due(since_last=0.1, parsed_since=0, embedded_since=5, parsing_done=True)  # all committed
    assert policy.due(since_last=3, parsed_since=5, embedded_since=0, elapsed=20)
    assert not policy.due(since_last=5, parsed_since=5, embedded_since=0, elapsed=600)  # a tenth of 600 s apart
    assert policy.due(since_last=60, parsed_since=5, embedded_since=0, elapsed=600)
    assert policy.due(since_last=0.5, parsed_since=5, embedded_since=0, memory_full=True, elapsed=600)  # early
    every_batch = CheckpointPolicy(every_s=3600, every_chunks=8, lexical_s=0)  # the crash tests': no clock
    assert every_batch.due(since_last=0.0, parsed_since=1, embedded_since=0, elapsed=5000)
    update = CheckpointPolicy(every_s=30, every_chunks=100)
    assert not update.due(since_last=1, parsed_since=5, embedded_since=0, parsing_done=True, memory_full=True)


def test_waiting_texts_hand_out_fifo_windows_and_keep_no_committed_text() -> None:
    from codeindex.engine.waiting import PendingText, WaitingTexts

    waiting = WaitingTexts()
    waiting.add(PendingText("resumed", None, 100, vec_id=1, chunk_id=10))  # committed by a killed run
    for i in range(2, 6):
        waiting.add(PendingText(f"k{i}", f"text {i}", 100 * i, vec_id=i, chunk_id=10 * i))
    assert len(waiting) == 5 and waiting.tokens == 100 + 200 + 300 + 400 + 500
    assert waiting.texts_held() == 4 and waiting.held_tokens == 1400
    waiting.drop_texts()  # a checkpoint committed their chunks
    assert waiting.texts_held() == 0 and waiting.held_tokens == 0 and len(waiting) == 5
    waiting.add(PendingText("k6", "text 6", 9000, vec_id=6, chunk_id=60))
    assert waiting.held_tokens == 512  # counted as the model sees it: truncated
    window = waiting.take(600)  # oldest first, until the window holds 600 tokens
    assert [(p.key, p.text, p.chunk_id) for p in window] == [("resumed", None, 10), ("k2", None, 20),
                                                             ("k3", None, 30)]
    assert [p.key for p in waiting.take(1)] == ["k4"]  # at least one
    rest = waiting.take(10**6)
    assert [(p.key, p.text) for p in rest] == [("k5", None), ("k6", "text 6")]
    assert not waiting and waiting.tokens == 0 and waiting.held_tokens == 0
    big = WaitingTexts()  # taken entries are compacted away; what is left keeps its order and texts
    for i in range(10_000):
        big.add(PendingText(f"b{i}", None if i < 9_000 else f"t{i}", 1, vec_id=i, chunk_id=i))
    assert [p.key for p in big.take(6_000)][-1] == "b5999"
    assert big.texts_held() == 1_000
    assert [(p.key, p.text) for p in big.take(10**6)][3_000:3_002] == [("b9000", "t9000"), ("b9001", "t9001")]


def test_run_progress_plans_from_bytes_then_from_what_parsing_measures() -> None:
    plan = RunProgress(bytes_total=10_000_000, tokens_per_byte=0.2, texts_per_byte=0.002)
    assert plan.planned_tokens == 2_000_000 and plan.planned_texts == 20_000  # before any parse: the prior
    assert plan.eta_s(0.0) is None  # no rate measured, none recorded
    plan.parsed(5_000_000, 500_000, 5_000)  # this tree has 0.1 tokens per byte
    assert 1_000_000 < plan.planned_tokens < 1_100_000  # the prior fades with what was measured
    plan.parse_finished = True
    assert plan.planned_tokens == 500_000  # exact once parsing is done
    plan.embedded(50_000, 500, now=10.0)  # the first batch (it also loaded the model): the rate starts after it
    assert plan.tokens_per_s(10.0) is None
    plan.embedded(100_000, 1_000, now=20.0)
    assert plan.tokens_per_s(20.0) == pytest.approx(10_000)
    assert plan.eta_s(20.0) == pytest.approx(35.0)  # 350k tokens left at 10k/s
    recorded = RunProgress(bytes_total=1000, prior_tokens_per_s=500.0)
    assert recorded.eta_s(0.0) == pytest.approx(1000 * 0.2 / 500)  # before measuring: the recorded rate


def test_progress_lines_say_what_is_estimated_and_why_embed_counts_less() -> None:
    name, text = progress_line(ProgressEvent("run", done=2_000, total=10_000, detail={
        "eta_s": 125.0, "tokens_per_s": 9_000.0, "exact": False}))
    assert name == "run" and "~10,000 tokens" in text and "ETA 0:02:05" in text and "20%" in text
    _, text = progress_line(ProgressEvent("run", done=0, total=10_000, detail={"eta_s": None}))
    assert "measuring" in text
    _, text = progress_line(ProgressEvent("embed", done=100, total=900, detail={
        "chunks": 1_000, "shared": 90, "exact": True}))
    assert "100 of 900 distinct texts" in text and "90 of 1,000 chunks share a text" in text
    name, text = progress_line(ProgressEvent("checkpoint", done=2, detail={
        "files": 10, "chunks": 50, "chunks_embedded": 20}))
    assert name == "checkpoint" and "embedded 20" in text


# ---------------------------------------------------------------------------------------------- a real run

def _tree(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        body = "\n".join(f"    value_{j} = {i} * {j} + len('{'x' * (j % 7)}')" for j in range(24))
        (root / f"mod_{i:03d}.py").write_text(f"def function_{i}(x):\n{body}\n    return x\n\n"
                                             f"class Thing{i}:\n    def method(self):\n        return {i}\n")
    return root


@pytest.mark.slow
def test_progress_events_plan_the_embedding_and_the_eta_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embed total is known before the first batch is embedded, and after 20% of the work the ETA is
    within 2x of the time that really remained. The embedder costs a steady time per token, as a model does."""
    from codeindex.embedders import hashing

    plain = hashing.HashingEmbedder.embed

    def steady(self: hashing.HashingEmbedder, texts: list[str]) -> object:
        time.sleep(sum(hashing.count_tokens(texts)) * 4e-5)
        return plain(self, texts)

    monkeypatch.setattr(hashing.HashingEmbedder, "embed", steady)
    root = _tree(tmp_path / "tree", 200)
    events: list[tuple[float, ProgressEvent]] = []
    index = Index(root, **{"embedder.backend": "hashing", "embedder.batch_tokens": 512, "engine.scheduler": "sync",
                           "engine.parse_batch_files": 8})
    report = index.rebuild(progress=lambda e: events.append((time.perf_counter(), e)))
    end = time.perf_counter()
    embeds = [e for _, e in events if e.stage == "embed"]
    first_batch = next(i for i, e in enumerate(embeds) if e.done)
    assert all(e.total for e in embeds[:first_batch + 1]), "an embed line without a total"
    assert embeds[0].total and embeds[0].done == 0  # there from the start, before any batch
    at_first_batch = embeds[first_batch].total
    assert not embeds[first_batch].detail["exact"], "parsing had finished: the test would not test the estimate"
    assert 0.67 * report.chunks_embedded <= at_first_batch <= 1.5 * report.chunks_embedded
    runs = [(t, e) for t, e in events if e.stage == "run" and e.total]
    when, event = next((t, e) for t, e in runs if e.done >= 0.2 * report.tokens_embedded)
    remaining = end - when
    assert event.detail["eta_s"] is not None
    assert remaining / 2 <= event.detail["eta_s"] <= remaining * 2, (event.detail["eta_s"], remaining)


def test_a_first_build_parses_ahead_of_the_embedding_holding_no_committed_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file of a first build is lexically searchable before a quarter of its vectors are embedded,
    however much text that is; after each checkpoint the pipeline holds no text of a committed chunk (it
    reads each back when its window is embedded), and the build equals one that held every text.

    A small ``batch_tokens`` makes the tree span many embed windows and memory budgets; on the sync
    scheduler each round parses 4 batches and embeds 4, and the commits that drop the texts come when
    they fill memory, so the order of events is fixed, not timed."""
    from codeindex.embedders import hashing
    from codeindex.engine import pipeline as pl
    from codeindex.engine.results import PipelineResult
    from codeindex.engine.waiting import capped

    budget = 64
    seen: list[tuple[str, int, int, int]] = []  # (what, texts held, texts waiting, tokens held)

    def look(self: pl.Pipeline, what: str) -> None:
        seen.append((what, self.texts_held, self.texts_waiting, self._waiting.held_tokens + self._ready_tokens))

    commit_checkpoint, stage_parsed, run = pl.Pipeline._commit_checkpoint, pl.Pipeline._stage_parsed, pl.Pipeline.run
    read_back: list[int] = []

    def run_and_count(self: pl.Pipeline, *args: Any) -> PipelineResult:
        result = run(self, *args)
        read_back.append(result.texts_read_back)
        return result

    def checkpoint_and_look(self: pl.Pipeline) -> None:
        commit_checkpoint(self)
        look(self, "checkpoint")

    def stage_and_look(self: pl.Pipeline, *args: object) -> None:
        stage_parsed(self, *args)  # type: ignore[arg-type]
        look(self, "parsed")

    embedded: list[list[str]] = [[]]  # per run, the texts given to the embedder
    embed = hashing.HashingEmbedder.embed

    def recording(self: hashing.HashingEmbedder, texts: list[str]) -> object:
        embedded[-1].extend(texts)
        return embed(self, texts)

    monkeypatch.setattr(pl.Pipeline, "_commit_checkpoint", checkpoint_and_look)
    monkeypatch.setattr(pl.Pipeline, "_stage_parsed", stage_and_look)
    monkeypatch.setattr(pl.Pipeline, "run", run_and_count)
    monkeypatch.setattr(hashing.HashingEmbedder, "embed", recording)
    config: dict[str, Any] = {"embedder.backend": "hashing", "embedder.batch_tokens": budget,
                              "engine.scheduler": "sync", "engine.parse_batch_files": 4, "engine.checkpoint_chunks": 0}
    root = _tree(tmp_path / "tree", 160)
    events: list[ProgressEvent] = []
    report = Index(root, **config).rebuild(progress=events.append)
    tokens = sum(capped(n) for n in _chunk_tokens(root))
    assert tokens > 4 * pl.PARSE_BACKLOG_BUDGETS * budget, "the tree must be far more than parsing may hold"
    checkpoints = [e.detail for e in events if e.stage == "checkpoint"]
    everything = next(c for c in checkpoints if c["files"] == 160)
    assert everything["chunks_embedded"] < 0.25 * report.chunks_total, checkpoints
    assert [h for what, h, _, _ in seen if what == "checkpoint"] == [0] * len(checkpoints)
    assert max(w for what, _, w, _ in seen if what == "checkpoint") > 100  # committed, waiting, not held
    assert read_back[0] > 0.5 * report.chunks_total  # most texts were read back from the database
    assert max(t for _, _, _, t in seen) < pl.PARSE_BACKLOG_BUDGETS * budget + 4 * 4 * 3 * 512  # + one round
    parsed_events = [i for i, (what, *_) in enumerate(seen) if what == "parsed"]
    assert parsed_events[-1] < len(seen) - 1 and seen[parsed_events[-1] + 1][0] == "checkpoint"  # at once

    reference = _tree(tmp_path / "reference", 160)
    embedded.append([])
    Index(reference, **{**config, "engine.checkpoint_s": 0}).rebuild()  # one commit: holds every text
    assert sorted(embedded[0]) == sorted(embedded[1])  # the texts read back are the texts parsed
    assert read_state(root) == read_state(reference)


def _chunk_tokens(root: Path) -> list[int]:
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        return [int(r[0]) for r in con.execute("SELECT n_tokens FROM chunks").fetchall()]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_keeps_the_last_checkpoint_says_so_and_update_finishes(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    reference = make_tree(tmp_path / "reference")
    Index(reference).rebuild()
    marker = tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, "-m", "codeindex.cli", "rebuild", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
                            env={**os.environ, **CHECKPOINTING, "CODEINDEX_PAUSE_AT": "after-checkpoint:30",
                                 "CODEINDEX_PAUSE_MARKER": str(marker)})
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), "the build never reached its first checkpoint"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "kept the last checkpoint" in err and "Traceback" not in err, err
    check_invariants(root)
    status = json.loads(subprocess.run([sys.executable, "-m", "codeindex.cli", "status", str(root), "--json",
                                        "--no-stale"], capture_output=True, text=True, check=True).stdout)
    assert status["build_in_progress"] and status["chunks_embedded"] < status["chunks"]
    lexical = Index(root).search("compute_total_price_3", mode="lexical", k=3)
    assert lexical and lexical[0].path == "gen/mod3.py"  # searchable while unfinished
    Index(root).update()
    assert read_state(root) == read_state(reference)


@pytest.mark.slow
def test_an_unfinished_build_is_searchable_and_says_how_much_has_vectors(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    # no lexical cadence: the first checkpoint comes when parsing ends (every parsed file, no vector),
    # the second after 8 embedded chunks
    env = {**os.environ, **CHECKPOINTING, "CODEINDEX_ENGINE__LEXICAL_CHECKPOINT_S": "3600",
           "CODEINDEX_CRASH_AT": "after-checkpoint#2"}
    killed = subprocess.run([sys.executable, "-m", "codeindex.cli", "rebuild", str(root)], env=env,
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL
    cli = [sys.executable, "-m", "codeindex.cli"]
    status = json.loads(subprocess.run([*cli, "status", str(root), "--json", "--no-stale"], capture_output=True,
                                       text=True, check=True).stdout)
    assert 0 < status["chunks_embedded"] < status["chunks"] and status["build_in_progress"]
    human = subprocess.run([*cli, "status", str(root), "--no-stale"], capture_output=True, text=True, check=True)
    assert f"embedded {status['chunks_embedded']:,} of {status['chunks']:,} chunks" in human.stdout
    found = subprocess.run([*cli, "search", "Inventory", "--root", str(root)], capture_output=True, text=True,
                           check=True)
    assert "Inventory" in found.stdout
    assert f"embedded {status['chunks_embedded']:,} of {status['chunks']:,} chunks so far" in found.stdout
    index = Index(root)
    hits = index.search("Keeps stock levels for warehouse", mode="vector", k=50)
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        embedded = {r[0] for r in con.execute("SELECT c.chunk_id FROM chunks c JOIN vectors v USING (vec_id) "
                                               "WHERE v.segment IS NOT NULL").fetchall()}
    assert hits and all(h.chunk_id in embedded for h in hits)  # vector ranks cover the embedded chunks only
    assert index.search_coverage() == (status["chunks_embedded"], status["chunks"])


@pytest.mark.slow
def test_a_rebuild_beside_the_index_keeps_serving_the_old_one_until_complete(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    before = read_state(root)
    (root / "gen" / "late.py").write_text("def arrived_late() -> int:\n    return 7\n")
    env = {**os.environ, **CHECKPOINTING, "CODEINDEX_CRASH_AT": "after-checkpoint#2"}
    killed = subprocess.run([sys.executable, "-m", "codeindex.cli", "rebuild", str(root)], env=env,
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert read_state(root) == before  # the old index still serves
    assert (root / ".codeindex" / "build.duckdb").exists()
    status = Index(root).status()
    assert status["rebuild_in_progress"] and status["rebuild_in_progress"]["chunks_embedded"] > 0
    report = Index(root).rebuild()  # resumes
    assert any("resuming" in w for w in report.warnings)
    assert not (root / ".codeindex" / "build.duckdb").exists()
    assert Index(root).search("arrived_late", mode="lexical", k=1)[0].path == "gen/late.py"


def test_update_plan_counts_only_what_it_would_embed(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        chunks_of_three = con.execute("SELECT count(*) FROM chunks WHERE path IN "
                                      "('gen/mod0.py', 'gen/mod1.py', 'gen/mod2.py')").fetchall()[0][0]
    for name in ("mod0", "mod1", "mod2"):
        path = root / "gen" / f"{name}.py"
        path.write_text(path.read_text() + f"\n\ndef extra_{name}() -> int:\n    return 1\n")
    plan = Index(root).plan()
    report = Index(root).update()
    assert (plan.estimated_chunks, plan.estimated_tokens) == (report.chunks_embedded, report.tokens_embedded)
    assert 0 < plan.estimated_chunks < chunks_of_three  # their unchanged chunks reuse their vectors


REHASH = '''
import codeindex
from codeindex.embedders import hashing
from codeindex.hookspecs import EmbedderBackend

class Rehash(hashing.HashingEmbedder):
    backend = "rehash"
    model_id = "rehash-1"

@codeindex.hookimpl
def codeindex_embedders():
    return [EmbedderBackend("rehash", "hashing under another model id", lambda s: Rehash(),
                            lambda s: ("rehash-1", hashing.DIM, hashing.MAX_TOKENS), hashing.token_counter)]
'''


def _with_rehash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the ``rehash`` embedder (hashing under another model id) in this process."""
    from importlib import metadata

    from codeindex import plugins

    site = tmp_path / "site"
    site.mkdir()
    (site / "rehash_embedder.py").write_text(REHASH)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_manager", plugins.build_plugin_manager(
        [metadata.EntryPoint("rehash_embedder", "rehash_embedder", "codeindex.embedders")]))


@pytest.mark.slow
def test_a_model_switch_stopped_after_a_checkpoint_never_mixes_models(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A model switch's first checkpoint drops every old chunk: files it has not re-parsed yet leave the
    snapshot (never listed with old-model vectors), and the next update finishes the switch."""
    from codeindex.errors import Interrupted

    _with_rehash(tmp_path, monkeypatch)
    trees = [make_tree(tmp_path / name) for name in ("tree", "clean")]
    Index(trees[0]).rebuild()
    with duckdb.connect(str(trees[0] / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        old_segments = {r[0] for r in con.execute("SELECT segment FROM segments").fetchall()}
    for root in trees:
        for name in ("mod5", "mod6", "mod7"):
            path = root / "gen" / f"{name}.py"
            path.write_text(path.read_text() + f"\n\ndef switched_{name}() -> int:\n    return 5\n")
    Index(trees[1]).rebuild(embedder="rehash")

    def stop_at_first_checkpoint(event: ProgressEvent) -> None:
        if event.stage == "checkpoint":
            raise KeyboardInterrupt

    index = Index(trees[0], **{"engine.checkpoint_chunks": 4, "engine.max_in_flight": 1})
    with pytest.raises(Interrupted, match="kept the last checkpoint"):
        index.update(embedder="rehash", progress=stop_at_first_checkpoint)
    check_invariants(trees[0])
    with duckdb.connect(str(trees[0] / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        assert con.execute("SELECT v FROM meta WHERE k = 'model_id'").fetchall()[0][0] == "rehash-1"
        live = {r[0] for r in con.execute("SELECT segment FROM segments").fetchall()}
        assert live and not live & old_segments, "an old-model segment is still live"
        files = {r[0] for r in con.execute("SELECT path FROM files").fetchall()}
        pending = con.execute("SELECT count(*) FROM vectors WHERE segment IS NULL").fetchall()[0][0]
    assert pending > 0, "the switch finished before its first checkpoint: nothing was tested"
    unparsed = {f"gen/{n}.py" for n in ("mod5", "mod6", "mod7")} - files
    assert all(not any(c[0] == p for c in read_state(trees[0]).chunks) for p in unparsed)
    finished = Index(trees[0]).update(embedder="rehash")  # the tree's config names hashing: say which
    assert not any("model changed" in w for w in finished.warnings)  # the switch was committed already
    assert read_state(trees[0]) == read_state(trees[1])


@pytest.mark.slow
def test_an_unfinished_rebuild_with_another_embedder_is_started_over(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root, clean = make_tree(tmp_path / "tree"), make_tree(tmp_path / "clean")
    Index(root).rebuild()
    env = {**os.environ, **CHECKPOINTING, "CODEINDEX_CRASH_AT": "after-checkpoint#2"}
    killed = subprocess.run([sys.executable, "-m", "codeindex.cli", "rebuild", str(root)], env=env,
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL and (root / ".codeindex" / "build.duckdb").exists()
    _with_rehash(tmp_path, monkeypatch)
    report = Index(root).rebuild(embedder="rehash")
    assert not any("resuming" in w for w in report.warnings)  # its vectors are another model's: not reusable
    assert report.chunks_embedded + report.chunks_reused == report.chunks_total
    Index(clean).rebuild(embedder="rehash")
    assert read_state(root) == read_state(clean)
    assert not (root / ".codeindex" / "build.duckdb").exists()
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        listed = {r[0] for r in con.execute("SELECT file FROM segments").fetchall()}
    assert {p.name for p in (root / ".codeindex").glob("seg-*")} == listed  # the discarded build's are gone


def _described(root: Path) -> tuple[set[str], set[tuple[object, ...]], set[tuple[object, ...]]]:
    """The files a state lists, and its symbols and redactions (the tables that describe a file's content)."""
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        files = {r[0] for r in con.execute("SELECT path FROM files").fetchall()}
        symbols = set(con.execute("SELECT path, name, qualified, kind, start_line, end_line FROM symbols").fetchall())
        redactions = set(con.execute("SELECT path, line, kind, name FROM redactions").fetchall())
    return files, symbols, redactions


def test_a_checkpoint_holds_the_symbols_and_masked_secrets_of_exactly_its_files(tmp_path: Path) -> None:
    """A checkpoint commits a file's definitions and the record of its masked secrets with its chunks:
    those of every file it lists, none of a file it has not reached; the next run completes them."""
    trees = [make_tree(tmp_path / name) for name in ("tree", "clean")]
    for root in trees:
        for i in range(8):
            path = root / "gen" / f"mod{i}.py"
            path.write_text(f"API_TOKEN = 'Zq8rT2mX9vL4nB7kP1sW6yH{i}'\n" + path.read_text())
    Index(trees[1]).rebuild()
    clean_files, clean_symbols, clean_redactions = _described(trees[1])
    assert len({r[0] for r in clean_redactions}) == 8, "the tree's secrets were not masked: nothing tested"

    def stop_halfway(event: ProgressEvent) -> None:
        if event.stage == "checkpoint" and event.detail["files"] >= len(clean_files) // 2:
            raise KeyboardInterrupt

    from codeindex.errors import Interrupted

    # a first build commits what it parsed at every parse batch (lexical cadence 0): files come in twos
    index = Index(trees[0], **{"engine.checkpoint_s": 3600.0, "engine.lexical_checkpoint_s": 0.0,
                               "engine.max_in_flight": 1})
    with pytest.raises(Interrupted, match="kept the last checkpoint"):
        index.rebuild(progress=stop_halfway)
    check_invariants(trees[0])
    files, symbols, redactions = _described(trees[0])
    assert files < clean_files and any(r[0] in files for r in clean_redactions), "nothing tested"
    assert symbols == {s for s in clean_symbols if s[0] in files}
    assert redactions == {r for r in clean_redactions if r[0] in files}
    Index(trees[0]).update()
    assert _described(trees[0]) == (clean_files, clean_symbols, clean_redactions)
    assert read_state(trees[0]) == read_state(trees[1])
