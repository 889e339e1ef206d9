"""A signal stops codeindex cleanly whatever the phase: exit 130, the standard message, no traceback,
no worker process left behind, and the index in its previous or its new state.

The signal goes to the whole process group, as a terminal's Ctrl-C does (the workers of a local
cluster are in the group too).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.crash_helpers import make_tree, read_state
from tests.helpers import cli_cmd, run_cli

STANDARD = "codeindex: error: interrupted"


def _default_sigint() -> None:
    """Children of a backgrounded test runner inherit SIGINT ignored: give them a terminal's default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], pause: str, marker: Path, **env: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cli_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint,
                            env={**os.environ, "CODEINDEX_PAUSE_AT": pause, "CODEINDEX_PAUSE_MARKER": str(marker),
                                 **env})
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), proc.communicate()[1]
    return proc


def _live_group_members(pgid: int) -> list[str]:
    out = []
    for p in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(p.info["pid"]) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(" ".join(p.info["cmdline"] or [])[:120])
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def _interrupt(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> str:
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    deadline = time.monotonic() + 20
    while _live_group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _live_group_members(proc.pid), f"left behind: {_live_group_members(proc.pid)}"
    return err


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_while_the_local_cluster_starts(tmp_path: Path, sig: int) -> None:
    root = tmp_path / "tree"
    shutil.copytree(Path(__file__).parent / "scenarios" / "e2e_repo", root)
    proc = _start(["rebuild", str(root), "--embedder", "hashing", "--scheduler", "local"], "cluster-start:2",
                  tmp_path / "paused", CODEINDEX_ENGINE__SMALL_UPDATE_FILES="0")
    err = _interrupt(proc, sig)
    assert proc.returncode == 130, err
    assert STANDARD in err and "Traceback" not in err and "Error in" not in err, err
    assert len(err.strip().splitlines()) == 2, err  # the message and its hint, nothing from dask
    assert not (root / ".codeindex" / "meta.duckdb").exists()
    assert run_cli("-q", "rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync").returncode == 0


@pytest.mark.slow
def test_interrupt_after_the_commit_leaves_the_new_state(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    assert run_cli("-q", "rebuild", str(root)).returncode == 0
    (root / "gen" / "late.py").write_text("def arrived_late() -> int:\n    return 7\n")
    proc = _start(["update", str(root)], "after-commit:30", tmp_path / "paused")
    err = _interrupt(proc)
    assert proc.returncode == 130, err
    assert STANDARD in err and "Traceback" not in err
    assert "previous or its new state" in err  # not "previous state": the commit is done
    assert any(path == "gen/late.py" for path, *_ in read_state(root).chunks)
    assert run_cli("verify", str(root)).returncode == 0
