"""A rebuild SIGKILLed at 25%, 50% and 90% of its embedding resumes each time and re-embeds at most one
checkpoint's worth of chunks, counted from the ``runs`` table; the final index equals a clean rebuild.

The kills come from outside (``benchmarks.progressive.kill_and_resume``, which the medium-corpus
measurement runs with the default model): the rebuild runs as a real CLI process that reports its
embed batches and, here, waits after each one, so the SIGKILL lands at an exact point of the embedding.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import duckdb
import pytest

from benchmarks.progressive import kill_and_resume
from codeindex import Index
from tests.crash_helpers import check_invariants, read_state

pytestmark = pytest.mark.slow

CONFIG = """\
[embedder]
backend = "hashing"
batch_tokens = 256

[engine]
scheduler = "sync"
parse_batch_files = 8
max_in_flight = 1
checkpoint_s = 3600.0
lexical_checkpoint_s = 0.0
checkpoint_chunks = 25
"""


def _tree(root: Path, n: int, variant: str = "") -> Path:
    root.mkdir(exist_ok=True)
    for i in range(n):
        body = "\n".join(f"    value_{j} = {i} * {j} + len('{'x' * (j % 7)}{variant}')" for j in range(12))
        (root / f"mod_{i:03d}.py").write_text(f"def function_{i}(x):\n{body}\n    return x\n\n\n"
                                             f"class Thing{i}:\n    def method(self):\n        return {i}\n\n\n"
                                             f"def helper_{i}():\n    return 'helper {i} {variant}'\n")
    (root / ".codeindex.toml").write_text(CONFIG)
    return root


def _vectors(root: Path) -> int:
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM vectors").fetchall()[0][0])


@pytest.mark.parametrize("beside", [False, True], ids=["first-build", "rebuild-beside-an-index"])
def test_killed_at_25_50_90_percent_resumes_without_reembedding_finished_work(tmp_path: Path, beside: bool) -> None:
    root = _tree(tmp_path / "tree", 160)
    clean = tmp_path / "clean"
    shutil.copytree(root, clean)
    Index(clean, **{"engine.checkpoint_s": 0}).rebuild()
    n_vectors = _vectors(clean)
    if beside:  # an index of an older version of the tree keeps serving while the rebuild runs
        old = _tree(tmp_path / "old", 160, variant="old")
        Index(old).rebuild()
        shutil.copytree(old / ".codeindex", root / ".codeindex")
    result = kill_and_resume(root, (0.25, 0.5, 0.9), n_vectors, step=True)
    runs = result["runs"]
    killed = [r for r in runs if r["killed"]]
    assert [r["rc"] for r in killed] == [-signal.SIGKILL] * 3 and runs[-1]["rc"] == 0, runs
    worth = max(r["checkpoint_chunks_max"] for r in runs)
    assert worth > 0
    for run in killed:
        assert run["checkpoints"] > 0, "killed before its first checkpoint: nothing to resume from"
        assert 0 <= run["lost_reembedded_next"] <= worth, (run, worth)
    assert any(r["lost_reembedded_next"] for r in killed), "no kill lost work: the test would not test the bound"
    statuses = [row["status"] for row in result["runs_table"]]
    assert statuses == ["killed", "killed", "killed", "ok"]
    assert result["committed_sum"] == n_vectors, "a vector committed by one run was embedded again by another"
    check_invariants(root)
    assert read_state(root) == read_state(clean)
    assert not (root / ".codeindex" / "build.duckdb").exists()
