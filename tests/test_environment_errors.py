"""The environment's refusals exit 2 naming the path and the OS reason; a busy index 4; only bugs exit 1.

Each case makes the machine say no for real: a read-only bind mount, a full tmpfs, a tree moved away
and a lock file deleted while a writer is paused mid-run (``CODEINDEX_PAUSE_AT``), a refused port.
Mounts need root with CAP_SYS_ADMIN; without it those cases skip and say why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from codeindex.errors import (
    BusyError,
    CorruptIndexError,
    EnvironmentProblem,
    ExitCode,
    classify,
)
from tests.crash_helpers import make_tree, read_state
from tests.helpers import cli_cmd, run_cli

SCENARIO = Path(__file__).parent / "scenarios" / "e2e_repo"


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode:
        pytest.skip(f"cannot mount here ({proc.stderr.strip() or 'mount failed'}): needs root with CAP_SYS_ADMIN")


@contextlib.contextmanager
def _mounted(target: Path, *args: str) -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) to make a read-only or a full filesystem")
    _mount(*args)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _indexed(tmp_path: Path, name: str = "tree") -> Path:
    root = tmp_path / name
    shutil.copytree(SCENARIO, root)
    assert run_cli("-q", "rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync").returncode == 0
    return root


@pytest.mark.slow
def test_read_only_index_folder(tmp_path: Path) -> None:
    root = _indexed(tmp_path)
    index_dir = root / ".codeindex"
    (root / "geo" / "extra.py").write_text("def extra_distance():\n    return 3\n")
    with _mounted(index_dir, "--bind", str(index_dir), str(index_dir)):
        _mount("-o", "remount,ro,bind", str(index_dir))
        for args in (("update", str(root)), ("rebuild", str(root)), ("compact", str(root))):
            proc = run_cli(*args)
            assert proc.returncode == ExitCode.ENVIRONMENT == 2, (args, proc.stderr)
            assert "Read-only file system" in proc.stderr and str(index_dir / "lock") in proc.stderr
            assert "hint:" in proc.stderr
            _no_traceback(proc)
        for args in (("search", "distance", "--root", str(root)), ("status", str(root)), ("verify", str(root))):
            proc = run_cli(*args)  # reading a read-only index works
            assert proc.returncode == 0, (args, proc.stderr)


def test_no_space_left_for_a_rebuild(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(SCENARIO, root)
    small = tmp_path / "small-disk"
    small.mkdir()
    with _mounted(small, "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(small)):
        proc = run_cli("--index-dir", str(small / "idx"), "rebuild", str(root), "--embedder", "hashing",
                       "--scheduler", "sync")
        assert proc.returncode == ExitCode.ENVIRONMENT, proc.stderr
        assert "No space left on device" in proc.stderr and str(small / "idx") in proc.stderr
        _no_traceback(proc)
        left = sorted(p.name for p in (small / "idx").iterdir())
        assert left == [".gitignore", "lock", "staging"], f"a failed rebuild left {left} taking the space"


@pytest.mark.slow
def test_no_space_left_for_an_update_keeps_the_previous_state(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    disk = tmp_path / "disk"
    disk.mkdir()
    with _mounted(disk, "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)):
        index_dir = disk / "idx"
        assert run_cli("--index-dir", str(index_dir), "-q", "rebuild", str(root)).returncode == 0
        for i in range(40):
            (root / "gen" / f"more{i}.py").write_text(f"def more_{i}(x):\n    return x * {i}\n" * 40)
        filler = disk / "filler"
        with open(filler, "wb") as fh:  # leave a few KB: the update fails part way
            free = shutil.disk_usage(disk).free
            fh.write(b"\0" * max(0, free - 24 * 1024))
        proc = run_cli("--index-dir", str(index_dir), "update", str(root))
        assert proc.returncode == ExitCode.ENVIRONMENT, proc.stderr
        assert "No space left on device" in proc.stderr
        _no_traceback(proc)
        filler.unlink()
        assert run_cli("--index-dir", str(index_dir), "verify", str(root)).returncode == 0
        status = json.loads(run_cli("--index-dir", str(index_dir), "status", str(root), "--json").stdout)
        assert status["stale"]["added"] == 40, "the failed update committed part of its work"
        assert run_cli("--index-dir", str(index_dir), "-q", "update", str(root)).returncode == 0


def _paused_update(root: Path, marker: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CODEINDEX_PAUSE_AT": "after-pipeline:3", "CODEINDEX_PAUSE_MARKER": str(marker)}
    proc = subprocess.Popen(cli_cmd(*extra, "update", str(root)), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), proc.communicate()[1]
    return proc


@pytest.mark.slow
def test_tree_moved_mid_run(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    assert run_cli("-q", "rebuild", str(root)).returncode == 0
    before = read_state(root)
    (root / "gen" / "late.py").write_text("def arrived_late() -> int:\n    return 7\n")
    proc = _paused_update(root, tmp_path / "paused")
    moved = tmp_path / "moved"
    root.rename(moved)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.ENVIRONMENT, err
    assert f"the indexed tree {root} vanished" in err and "nothing was committed" in err
    assert not root.exists(), "the failed run recreated the tree's old path"
    assert read_state(moved) == before
    assert run_cli("verify", str(moved)).returncode == 0


@pytest.mark.slow
def test_lock_deleted_mid_run(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    assert run_cli("-q", "rebuild", str(root)).returncode == 0
    before = read_state(root)
    (root / "gen" / "late.py").write_text("def arrived_late() -> int:\n    return 7\n")
    proc = _paused_update(root, tmp_path / "paused")
    (root / ".codeindex" / "lock").unlink()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.ENVIRONMENT, err
    assert "writer lock" in err and "was deleted" in err and "nothing was committed" in err
    assert read_state(root) == before
    assert run_cli("-q", "update", str(root)).returncode == 0


def test_refused_scheduler_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "tree"
    shutil.copytree(SCENARIO, root)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    proc = run_cli("rebuild", str(root), "--embedder", "hashing", "--scheduler", f"tcp://127.0.0.1:{port}")
    wall = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nrefused scheduler: exit {proc.returncode} in {wall:.2f}s (whole process)")
    assert proc.returncode == ExitCode.ENVIRONMENT, proc.stderr
    # the probe's answer, not distributed's "Timed out trying to connect ... after 10 s"
    assert f"cannot reach Dask scheduler tcp://127.0.0.1:{port}: Connection refused" in proc.stderr
    _no_traceback(proc)


def test_busy_database_is_exit_4_not_damage(tmp_path: Path) -> None:
    root = _indexed(tmp_path)
    db = root / ".codeindex" / "meta.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(30)", str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        from codeindex.store import db as dbm

        with pytest.raises(BusyError, match="stayed busy") as caught:
            dbm.connect(db, read_only=True, timeout_s=0.3)
        assert caught.value.exit_code == ExitCode.LOCKED == 4
    finally:
        holder.kill()
        holder.communicate()


def test_unreadable_database_is_an_environment_problem(tmp_path: Path) -> None:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: root reads files whatever their mode")
    root = _indexed(tmp_path)
    db = root / ".codeindex" / "meta.duckdb"
    db.chmod(0)
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        proc = subprocess.run([*prefix, *cli_cmd("search", "distance", "--root", str(root))],
                              capture_output=True, text=True, check=False)
    finally:
        db.chmod(0o644)
    assert proc.returncode == ExitCode.ENVIRONMENT, proc.stderr
    assert "Permission denied" in proc.stderr and str(db) in proc.stderr
    _no_traceback(proc)


def test_classify_names_the_cause_and_leaves_bugs_alone(tmp_path: Path) -> None:
    full = classify(OSError(28, "No space left on device", "/x/seg.faiss"))
    assert isinstance(full, EnvironmentProblem) and "/x/seg.faiss" in str(full) and "ENOSPC" in str(full)
    arrow_style = classify(OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"))
    assert isinstance(arrow_style, EnvironmentProblem)
    con = duckdb.connect()
    try:
        con.execute("SELECT * FROM no_such_table")
    except duckdb.Error as exc:
        assert isinstance(classify(exc, tmp_path / "meta.duckdb"), CorruptIndexError)
    try:
        con.execute("SELECT no_such_column FROM (SELECT 1 AS a)")
    except duckdb.Error as exc:
        assert classify(exc) is None, "a query we got wrong is our bug, not damage"
    assert classify(ValueError("boom")) is None
    assert classify(OSError(22, "Invalid argument")) is None


def test_a_true_bug_is_exit_1_and_asks_for_a_report(tmp_path: Path) -> None:
    root = _indexed(tmp_path)
    code = ("import sys; from codeindex import index; "
            "index.Index.status = lambda self: 1 / 0; "
            "from codeindex.cli import main; sys.exit(main(['status', sys.argv[1]]))")
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=False)
    assert proc.returncode == ExitCode.INTERNAL == 1
    assert "internal error: ZeroDivisionError" in proc.stderr and "report it" in proc.stderr


def test_index_in_a_path_that_vanished_before_the_run(tmp_path: Path) -> None:
    root = _indexed(tmp_path)
    Index(root)  # constructing works; then the tree goes
    shutil.rmtree(root)
    proc = run_cli("update", str(root))
    assert proc.returncode == ExitCode.USAGE and "does not exist" in proc.stderr
