"""A writer SIGKILLed anywhere leaves the old or the new state, and the next update converges.

Each case copies an indexed tree, applies an edit set (modify, add, delete, move, duplicate text),
and kills ``codeindex update`` or ``codeindex rebuild`` either at a named crash point
(``CODEINDEX_CRASH_AT``, see codeindex/crashpoints.py) or with an external ``kill -9`` after a
seeded random delay. Then: the index opens, its invariants hold, what it answers is exactly the
old or the new state (both computed by clean rebuilds), and one ``update`` makes it equal to a
clean rebuild of the edited tree.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from codeindex import Index, crashpoints
from tests.crash_helpers import State, apply_edits, check_invariants, make_tree, read_db_state, read_state
from tests.helpers import cli_cmd, run_cli

pytestmark = pytest.mark.slow

UPDATE_POINTS = [p for p in crashpoints.POINTS
                 if p not in ("before-swap", "after-swap", *crashpoints.CHECKPOINT_POINTS)]
REBUILD_POINTS = [p for p in crashpoints.POINTS if p not in ("mid-commit", *crashpoints.CHECKPOINT_POINTS)]

NO_CHECKPOINTS = {"CODEINDEX_ENGINE__CHECKPOINT_S": "0"}
"""The runs above commit once, at the end: their state after a kill is exactly the old or the new one."""
CHECKPOINTING = {"CODEINDEX_ENGINE__CHECKPOINT_S": "3600", "CODEINDEX_ENGINE__LEXICAL_CHECKPOINT_S": "0",
                 "CODEINDEX_ENGINE__CHECKPOINT_CHUNKS": "8"}
"""Checkpoints at moments that do not depend on time: a first build's right after its first parse batch,
then one whenever 8 chunks were embedded since the last (TREE_CONFIG's sync scheduler runs in order)."""
CHECKPOINTING_UPDATE = {**CHECKPOINTING, "CODEINDEX_ENGINE__CHECKPOINT_CHUNKS": "1",
                        "CODEINDEX_ENGINE__MAX_IN_FLIGHT": "1"}
"""The edit set embeds a handful of chunks: one checkpoint per embed batch."""


@dataclass(frozen=True)
class Baseline:
    old_root: Path
    old: State
    new: State


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    base = tmp_path_factory.mktemp("crash")
    old_root = make_tree(base / "old")
    Index(old_root).rebuild()
    new_root = make_tree(base / "new")
    apply_edits(new_root)
    Index(new_root).rebuild()
    old, new = read_state(old_root), read_state(new_root)
    assert old != new and old.chunks != new.chunks  # the edit set must be observable
    return Baseline(old_root, old, new)


def _run_killed(*args: str, env: dict[str, str]) -> tuple[int, int]:
    """Run the CLI to completion or death; (return code, pid)."""
    proc = subprocess.Popen(cli_cmd(*args), env={**os.environ, **NO_CHECKPOINTS, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode in (0, -signal.SIGKILL), out
    return proc.returncode, proc.pid


def _edited_copy(baseline: Baseline, target: Path) -> Path:
    shutil.copytree(baseline.old_root, target)
    apply_edits(target)
    return target


def _which(state: State, baseline: Baseline) -> str:
    if state == baseline.old:
        return "old"
    if state == baseline.new:
        return "new"
    lost = baseline.old.chunks - state.chunks - baseline.new.chunks
    extra = state.chunks - baseline.old.chunks - baseline.new.chunks
    return f"neither (chunks lost {len(lost)}, foreign {len(extra)}, keys {len(state.vec_keys)})"


def _verify_and_converge(root: Path, baseline: Baseline, killed_pid: int | None) -> str:
    check_invariants(root)
    status = run_cli("status", str(root), "--json")
    assert status.returncode == 0, status.stderr
    which = _which(read_state(root), baseline)
    assert which in ("old", "new"), which
    report = Index(root).update()
    stale = [w for w in report.warnings if "stale lock" in w]
    if killed_pid is not None and stale:
        assert all(f"pid {killed_pid} " in w for w in stale), stale
    check_invariants(root)
    final = read_state(root)
    assert final.chunks == baseline.new.chunks
    assert final.vec_keys == baseline.new.vec_keys
    assert final == baseline.new
    index_dir = root / ".codeindex"
    leftovers = [p.name for p in index_dir.iterdir() if p.name.endswith((".tmp", ".new", ".new.wal"))]
    assert not leftovers
    assert not (index_dir / "staging").exists() or not any((index_dir / "staging").iterdir())
    return which


@pytest.mark.parametrize("point", UPDATE_POINTS)
def test_update_killed_at_crash_point(baseline: Baseline, tmp_path: Path, point: str) -> None:
    root = _edited_copy(baseline, tmp_path / "tree")
    rc, pid = _run_killed("update", str(root), env={"CODEINDEX_CRASH_AT": point})
    assert rc == -signal.SIGKILL, f"crash point {point} was not reached"
    which = _verify_and_converge(root, baseline, pid)
    assert which == ("new" if point in ("after-db-commit", "after-commit") else "old")


@pytest.mark.parametrize("point", REBUILD_POINTS)
def test_rebuild_killed_at_crash_point(baseline: Baseline, tmp_path: Path, point: str) -> None:
    root = _edited_copy(baseline, tmp_path / "tree")
    rc, pid = _run_killed("rebuild", str(root), env={"CODEINDEX_CRASH_AT": point})
    assert rc == -signal.SIGKILL, f"crash point {point} was not reached"
    which = _verify_and_converge(root, baseline, pid)
    assert which == ("new" if point in ("after-commit", "after-swap") else "old")  # its db-commit is in the .new file


def test_killed_writer_leaves_stale_lock_that_is_taken_over(baseline: Baseline, tmp_path: Path) -> None:
    root = _edited_copy(baseline, tmp_path / "tree")
    rc, pid = _run_killed("update", str(root), env={"CODEINDEX_CRASH_AT": "after-segments"})
    assert rc == -signal.SIGKILL
    assert str(pid) in (root / ".codeindex" / "lock").read_text()
    after = run_cli("update", str(root))
    assert after.returncode == 0, after.stderr
    assert f"pid {pid}" in after.stdout + after.stderr and "stale" in after.stdout + after.stderr
    assert read_state(root) == baseline.new


@pytest.mark.parametrize("kind", ["update", "rebuild"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_external_kill_at_random_time(baseline: Baseline, tmp_path: Path, kind: str, seed: int) -> None:
    root = _edited_copy(baseline, tmp_path / "tree")
    # A CLI run here takes ~1.5-4 s, most of it start-up; the delays cover start-up, run and commit.
    delay = random.Random(f"{kind}-{seed}").uniform(0.8, 4.0)
    proc = subprocess.Popen(cli_cmd(kind, str(root)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=60)
    if not (root / ".codeindex" / "meta.duckdb").exists():
        pytest.fail("the index vanished")
    _verify_and_converge(root, baseline, proc.pid)


def test_rebuild_killed_right_after_swap_with_a_committed_wal(baseline: Baseline, tmp_path: Path) -> None:
    """An update killed between COMMIT and close leaves a WAL holding that commit; a later rebuild
    killed right after its swap must neither replay that WAL onto the new database nor lose data."""
    root = _edited_copy(baseline, tmp_path / "tree")
    rc, _ = _run_killed("update", str(root), env={"CODEINDEX_CRASH_AT": "after-db-commit"})
    assert rc == -signal.SIGKILL
    assert (root / ".codeindex" / "meta.duckdb.wal").exists()  # the case this test is about
    assert _which(read_state(root), baseline) == "new"
    (root / "gen" / "mod3.py").write_text("def late_edit() -> int:\n    return 3\n")
    rc, _ = _run_killed("rebuild", str(root), env={"CODEINDEX_CRASH_AT": "after-swap"})
    assert rc == -signal.SIGKILL
    check_invariants(root)
    assert any(c[0] == "gen/mod3.py" and "late_edit" in c[3] for c in read_state(root).chunks)
    Index(root).update()
    check_invariants(root)
    assert any(c[0] == "gen/mod3.py" and "late_edit" in c[3] for c in read_state(root).chunks)


# ---------------------------------------------------------------------------------------------- checkpoints

KINDS = ("first-build", "update", "rebuild")
"""A first build of the edited tree (checkpoints in the new live database), an update of the indexed old
tree (checkpoints in the live database), a rebuild of it (checkpoints in ``build.duckdb`` beside it)."""
BEFORE_COMMIT = ("checkpoint-sealed", "checkpoint-mid-commit", "checkpoint-mid-commit-inserted",
                 "checkpoint-before-db-commit")
"""Killed here, a run keeps its previous checkpoint; at the other checkpoint points, the one it was making."""
COMMAND = {"first-build": "rebuild", "update": "update", "rebuild": "rebuild"}
"""A rebuild that finds a first build unfinished resumes it in place; one over a complete index builds beside it."""
ENV = {"first-build": CHECKPOINTING, "update": CHECKPOINTING_UPDATE, "rebuild": CHECKPOINTING}


def _start(kind: str, baseline: Baseline, target: Path) -> Path:
    root = _edited_copy(baseline, target)
    if kind == "first-build":
        shutil.rmtree(root / ".codeindex")
    return root


def _checkpoint_state(root: Path, kind: str, baseline: Baseline) -> State | None:
    """The state a run's checkpoints write: the live index's, or for a rebuild its own database's (the
    live index must stay the old one until the swap)."""
    index_dir = root / ".codeindex"
    if kind == "rebuild" and (index_dir / "meta.duckdb").exists() and read_state(root) == baseline.old:
        if (index_dir / "build.duckdb").exists():
            check_invariants(root, "build.duckdb")
        return read_db_state(index_dir / "build.duckdb")
    if not (index_dir / "meta.duckdb").exists():
        return None
    check_invariants(root)
    return read_db_state(index_dir / "meta.duckdb")


def _embedded_keys(db_path: Path) -> set[str]:
    if not db_path.exists():
        return set()
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT vec_key FROM vectors WHERE segment IS NOT NULL").fetchall()}


@pytest.fixture(scope="module")
def checkpoint_states(baseline: Baseline, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[State | None]]:
    """Per kind, the state after each checkpoint of an uninterrupted run (index 0: before the run)."""
    out: dict[str, list[State | None]] = {}
    for kind in KINDS:
        base = tmp_path_factory.mktemp(f"checkpoints-{kind}")
        states = [None if kind in ("first-build", "rebuild") else read_db_state(
            baseline.old_root / ".codeindex" / "meta.duckdb")]
        for k in range(1, 20):
            root = _start(kind, baseline, base / f"k{k}")
            rc, _ = _run_killed(COMMAND[kind], str(root),
                                env={**ENV[kind], "CODEINDEX_CRASH_AT": f"after-checkpoint#{k}"})
            if rc == 0:
                break
            states.append(_checkpoint_state(root, kind, baseline))
        assert len(states) >= 3, f"{kind}: only {len(states) - 1} checkpoints; the test needs at least 2"
        assert len(set(states)) == len(states), f"{kind}: two checkpoints wrote the same state"
        out[kind] = states
    return out


CHECKPOINT_CASES = [(kind, point, nth) for kind in KINDS for point in crashpoints.CHECKPOINT_POINTS for nth in (1, 2)
                    if not (point == "checkpoint-mid-commit" and (kind != "update" or nth > 1))]
"""``checkpoint-mid-commit`` follows the deletion of replaced rows: a build replaces none, and the update
replaces its files' rows in its first checkpoint (it has parsed them all by then)."""


def _kept_checkpoint(kind: str, point: str, nth: int) -> int:
    """Which checkpoint a kill at ``point#nth`` leaves. A new database's first checkpoint commits into
    ``<name>.new``, which becomes the state only when renamed into place, after ``checkpoint-after-db-commit``."""
    if point in BEFORE_COMMIT or (point == "checkpoint-after-db-commit" and nth == 1 and kind != "update"):
        return nth - 1
    return nth


@pytest.mark.parametrize(("kind", "point", "nth"), CHECKPOINT_CASES)
def test_killed_at_a_checkpoint_point(baseline: Baseline, checkpoint_states: dict[str, list[State | None]],
                                      tmp_path: Path, kind: str, point: str, nth: int) -> None:
    """Killed at the n-th checkpoint's crash points, a run leaves exactly the checkpoint before it or that
    checkpoint (never a mix); the next run converges to a clean rebuild and embeds only what was missing."""
    root = _start(kind, baseline, tmp_path / "tree")
    rc, _ = _run_killed(COMMAND[kind], str(root), env={**ENV[kind], "CODEINDEX_CRASH_AT": f"{point}#{nth}"})
    assert rc == -signal.SIGKILL, f"crash point {point}#{nth} was not reached"
    expected = checkpoint_states[kind][_kept_checkpoint(kind, point, nth)]
    assert _checkpoint_state(root, kind, baseline) == expected
    db = root / ".codeindex" / ("build.duckdb" if kind == "rebuild" else "meta.duckdb")
    finished = _embedded_keys(db)
    resumed = run_cli(COMMAND[kind], str(root), "--json", env=ENV[kind])
    assert resumed.returncode == 0, resumed.stderr
    check_invariants(root)
    final = read_state(root)
    assert final == baseline.new
    assert json.loads(resumed.stdout)["chunks_embedded"] == len(final.vec_keys - finished), \
        "the resumed run re-embedded vectors the killed one had committed"
    assert not (root / ".codeindex" / "build.duckdb").exists()
