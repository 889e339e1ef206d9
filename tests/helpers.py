"""Helpers shared by the tests (fixtures live in conftest.py and use these)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb


def cli_cmd(*args: str) -> list[str]:
    """The command line of ``codeindex ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "codeindex.cli", *args]


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300, user: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``codeindex`` in a subprocess, as a user would (as ``user``'s uid when given)."""
    cmd = cli_cmd(*args)
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False)


def last_run(index_dir: Path) -> dict[str, object]:
    """The newest row of the ``runs`` table of the index in ``index_dir``."""
    con = duckdb.connect(str(index_dir / "meta.duckdb"), read_only=True)
    try:
        cur = con.execute("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")
        row = cur.fetchone()
        assert row is not None, "no run recorded"
        return dict(zip([d[0] for d in cur.description], row, strict=True))
    finally:
        con.close()


def interpreter_usable_by(uid: int) -> str | None:
    """Why user ``uid`` cannot run codeindex with this interpreter (None when it can).

    Tests that run the CLI as another user need this interpreter's environment to be readable by that
    user; tox, for one, keeps its environments in a private ``.tox`` folder.
    """
    probe = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-c",
             "import codeindex.cli"]
    proc = subprocess.run(probe, capture_output=True, text=True, check=False, cwd="/")
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return f"uid {uid} cannot use this interpreter's environment ({sys.prefix}): {last}"
