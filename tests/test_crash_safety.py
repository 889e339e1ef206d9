"""A writer SIGKILLed anywhere leaves the old or the new state, and the next update converges.

Each case copies an indexed tree, applies an edit set (modify, add, delete, move, duplicate text),
and kills ``codeindex update`` or ``codeindex rebuild`` either at a named crash point
(``CODEINDEX_CRASH_AT``, see codeindex/crashpoints.py) or with an external ``kill -9`` after a
seeded random delay. Then: the index opens, its invariants hold, what it answers is exactly the
old or the new state (both computed by clean rebuilds), and one ``update`` makes it equal to a
clean rebuild of the edited tree.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from codeindex import Index, crashpoints
from tests.crash_helpers import State, apply_edits, check_invariants, make_tree, read_state
from tests.helpers import cli_cmd, run_cli

pytestmark = pytest.mark.slow

UPDATE_POINTS = [p for p in crashpoints.POINTS if p not in ("before-swap", "after-swap")]
REBUILD_POINTS = [p for p in crashpoints.POINTS if p not in ("mid-commit",)]


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
    proc = subprocess.Popen(cli_cmd(*args), env={**os.environ, **env}, stdout=subprocess.PIPE,
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
