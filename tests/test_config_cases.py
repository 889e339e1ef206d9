"""Configuration values that would make a run lose data are refused, naming the setting and its source."""

from __future__ import annotations

import shutil
from pathlib import Path

from codeindex.errors import ExitCode

SCENARIO = Path(__file__).parent / "scenarios" / "e2e_repo"


def test_a_negative_size_cap_is_refused_not_taken_as_delete_everything(cli, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(SCENARIO, root)
    assert cli("-q", "rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync").returncode == 0
    proc = cli("update", str(root), "--plan", "--json", env={"CODEINDEX_DISCOVERY__MAX_FILE_BYTES": "-1"})
    assert proc.returncode == ExitCode.USAGE, proc.stdout
    assert "CODEINDEX_DISCOVERY__MAX_FILE_BYTES" in proc.stderr and "discovery.max_file_bytes" in proc.stderr
    assert cli("status", str(root)).returncode == 0  # nothing was planned, nothing lost
