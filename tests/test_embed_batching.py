"""Token-budget batching: the pure plan, and OOM halving with a fake embedder (no model, no disk)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeindex.embedders.batching import embed_batched, is_out_of_memory, plan_batches
from codeindex.errors import EmbedderError


@given(lengths=st.lists(st.integers(min_value=0, max_value=600), max_size=300),
       budget=st.integers(min_value=1, max_value=5000), max_len=st.integers(min_value=1, max_value=512))
def test_plan_covers_every_index_once_within_budget(lengths: list[int], budget: int, max_len: int) -> None:
    batches = plan_batches(lengths, budget, max_len)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        assert batch
        longest = max(min(max(lengths[i], 1), max_len) for i in batch)
        assert len(batch) * longest <= budget or len(batch) == 1


@given(lengths=st.lists(st.integers(min_value=1, max_value=300), max_size=100),
       budget=st.integers(min_value=1, max_value=4000))
def test_plan_is_deterministic_and_length_sorted(lengths: list[int], budget: int) -> None:
    batches = plan_batches(lengths, budget, 256)
    assert batches == plan_batches(list(lengths), budget, 256)
    flat = [i for b in batches for i in b]
    clipped = [min(n, 256) for n in lengths]
    assert [clipped[i] for i in flat] == sorted(clipped)


def test_plan_fills_batches_greedily() -> None:
    # 10 rows of 100 tokens under a 450-token budget: 4 + 4 + 2.
    assert [len(b) for b in plan_batches([100] * 10, 450, 256)] == [4, 4, 2]
    # Clipping: 1000-token rows count as 256, so 3 fit in 800.
    assert [len(b) for b in plan_batches([1000] * 4, 800, 256)] == [3, 1]


def test_plan_rejects_empty_budget() -> None:
    with pytest.raises(ValueError):
        plan_batches([1, 2], 0, 256)


class FakeEmbedder:
    """Row vectors encode the text's number; batches above ``max_rows`` raise ``error``."""

    backend = "fake"
    model_id = "fake-1"
    dim = 4
    max_tokens = 256
    device = "cpu"

    def __init__(self, max_rows: int, error: BaseException | None = None) -> None:
        self.max_rows = max_rows
        self.error = error or MemoryError("fake allocation failure")
        self.calls: list[int] = []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if len(texts) > self.max_rows:
            raise self.error
        return np.array([[float(t), 1.0, 0.0, 0.0] for t in texts], dtype=np.float32)


def test_embed_batched_keeps_input_order() -> None:
    texts = [str(i) for i in range(50)]
    lengths = [(i * 37) % 200 + 1 for i in range(50)]
    out = embed_batched(FakeEmbedder(max_rows=1000), texts, lengths, budget_tokens=600)
    assert out[:, 0].tolist() == list(range(50))


@pytest.mark.parametrize("error", [
    MemoryError(),
    type("RuntimeException", (Exception,), {"__module__": "onnxruntime.capi.onnxruntime_pybind11_state"})(
        "Failed to allocate memory for requested buffer of size 123"),
    type("OutOfMemoryError", (RuntimeError,), {"__module__": "torch.cuda"})("CUDA out of memory."),
])
def test_out_of_memory_batches_are_halved(error: BaseException) -> None:
    fake = FakeEmbedder(max_rows=3, error=error)
    texts = [str(i) for i in range(40)]
    out = embed_batched(fake, texts, [10] * 40, budget_tokens=400)  # plan: one batch of 40 rows
    assert out[:, 0].tolist() == list(range(40))
    assert fake.calls[0] == 40
    assert fake.calls[1:3] == [20, 10]  # halving, not giving up
    assert max(fake.calls[-5:]) <= 3   # later batches were re-planned to a size that fits


def test_single_row_out_of_memory_is_an_embedder_error() -> None:
    with pytest.raises(EmbedderError, match="fake"):
        embed_batched(FakeEmbedder(max_rows=0), ["a", "b"], [5, 5], budget_tokens=100)


def test_other_errors_are_not_retried() -> None:
    fake = FakeEmbedder(max_rows=1, error=ValueError("bad input"))
    with pytest.raises(ValueError):
        embed_batched(fake, ["a", "b"], [5, 5], budget_tokens=100)
    assert fake.calls == [2]


def test_is_out_of_memory_ignores_unrelated_runtime_errors() -> None:
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))


def test_embed_batched_empty_and_mismatched() -> None:
    assert embed_batched(FakeEmbedder(10), [], [], 100).shape == (0, 4)
    with pytest.raises(ValueError):
        embed_batched(FakeEmbedder(10), ["a"], [], 100)


class _RecordingExecutor:
    """The in-process executor, noting the token lengths of every embed batch the pipeline submits."""

    def __init__(self) -> None:
        from codeindex.engine.executor import SyncExecutor

        self.inner = SyncExecutor()
        self.name, self.n_workers, self.n_slots, self.has_gpu = "sync", 1, 1, False
        self.batches: list[list[int]] = []

    def submit_parse(self, items, ctx):  # type: ignore[no-untyped-def]
        return self.inner.submit_parse(items, ctx)

    def submit_embed(self, keys, texts, lengths, ctx):  # type: ignore[no-untyped-def]
        self.batches.append(list(lengths))
        return self.inner.submit_embed(keys, texts, lengths, ctx)

    def wait_any(self, futures):  # type: ignore[no-untyped-def]
        return self.inner.wait_any(futures)

    def close(self) -> None:
        pass


def test_pipeline_batches_pad_little_more_than_sorting_everything(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The pipeline plans batches over windows of parsed text, not over the whole run; the windows must
    be large enough that padding stays close to the global sort's (a window of 8 budgets padded ~10%
    more on real corpora)."""
    import random

    from codeindex.engine.pipeline import Pipeline
    from codeindex.engine.tasks import EmbedContext
    from codeindex.hookspecs import EmbedderSettings
    from codeindex.store.segments import SegmentWriter

    class NothingKnown(dict):  # type: ignore[type-arg]
        def prefetch(self, keys) -> None:  # type: ignore[no-untyped-def]
            pass

    rng = random.Random(7)
    files: dict[str, bytes] = {}
    for f in range(320):
        funcs = []
        for g in range(rng.randint(1, 8)):
            body = "\n".join(f"    v{j} = compute_{f}_{g}(v{j - 1}, {rng.randint(0, 999)})"
                             for j in range(1, rng.choice([2, 4, 8, 16, 40])))
            funcs.append(f"def fn_{f}_{g}(v0):\n{body}\n    return v0\n")
        files[f"m{f:03d}.py"] = "\n\n".join(funcs).encode()
    executor = _RecordingExecutor()
    budget = 512
    ctx = EmbedContext("hashing", EmbedderSettings(batch_tokens=budget), 256, "hashing|test")
    staging = tmp_path / "staging"
    staging.mkdir()
    pipeline = Pipeline(root=tmp_path, executor=executor, ctx=ctx, staging=staging,  # type: ignore[arg-type]
                        segments=SegmentWriter(tmp_path, 384, 0, max_vectors=65536, ann_min_vectors=10**9,
                                               bulk=False),
                        known_keys=NothingKnown(), next_chunk_id=0, next_vec_id=0, parse_batch_files=4,
                        max_in_flight=2, progress=lambda event: None, read_file=files.__getitem__)
    result = pipeline.run([(p, "python", "treesitter", p) for p in sorted(files)])
    lengths = [n for batch in executor.batches for n in batch]
    assert result.chunks_embedded == len(lengths) > 300
    assert sum(lengths) > 3 * 64 * budget, "the run must span several windows to test anything"

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(min(max(n, 1), 256) for n in b) for b in batches)

    everything_sorted = padded([[lengths[i] for i in idx] for idx in plan_batches(lengths, budget, 256)])
    assert padded(executor.batches) <= 1.04 * everything_sorted, (padded(executor.batches), everything_sorted)
