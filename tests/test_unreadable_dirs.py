"""Transient unreadability never deletes data: a directory that cannot be listed keeps its files' entries,
exactly as an unreadable file keeps its own, and they are back in step once it is readable again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import cli_cmd

SCENARIO = Path(__file__).parent / "scenarios" / "e2e_repo"


def _unprivileged() -> list[str]:
    """A command prefix under which a mode-000 directory really is unreadable (root reads anything)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: root reads directories whatever their mode")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _run(prefix: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *cli_cmd(*args)], capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_an_unreadable_directory_keeps_its_files_in_the_index(tmp_path: Path) -> None:
    prefix = _unprivileged()
    root = tmp_path / "tree"
    shutil.copytree(SCENARIO, root)
    assert _run([], "-q", "rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync").returncode == 0
    (root / "util").chmod(0)
    try:
        proc = _run(prefix, "update", str(root), "--json", "--scheduler", "sync")
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["files_deleted"] == 0, "an unreadable directory's files were taken for deleted"
        assert report["files_unreadable"] == 1  # util/text.py, the one file in util/
        hits = _run(prefix, "search", "slugify", "--root", str(root), "--mode", "lexical", "--json")
        assert hits.returncode == 0, hits.stderr
        assert "util/text.py" in {h["path"] for h in json.loads(hits.stdout)["results"]}
    finally:
        (root / "util").chmod(0o755)
    again = _run([], "update", str(root), "--json", "--scheduler", "sync")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["files_added"], report["files_modified"], report["files_deleted"]) == (0, 0, 0)
    assert _run([], "verify", str(root)).returncode == 0
