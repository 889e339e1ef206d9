"""File names that are not UTF-8: indexed under an escaped name, read under the real one, never a failed run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codeindex import Index
from codeindex.changes.discovery import discover
from codeindex.changes.names import display_name

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes")

LATIN1 = b"caf\xe9.py"  # "café.py" in Latin-1: not UTF-8
DIR = b"r\xe9sum\xe9s"


def _write(root: Path, rel: bytes, text: str) -> None:
    path = os.path.join(os.fsencode(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(text.encode())


def test_display_name_escapes_exactly_the_undecodable_bytes() -> None:
    assert display_name("plain.py") == "plain.py"
    assert display_name("café.py") == "café.py"  # valid UTF-8 stays as it is
    assert display_name(os.fsdecode(LATIN1)) == "caf\\xe9.py"


def test_discovery_keeps_the_real_name_to_open_beside_the_escaped_one(tmp_path: Path) -> None:
    _write(tmp_path, LATIN1, "x = 1\n")
    _write(tmp_path, DIR + b"/" + LATIN1, "y = 2\n")
    _write(tmp_path, b"ok.py", "z = 3\n")
    found = {f.path: f for f in discover(tmp_path, lambda p: "python", max_file_bytes=1 << 20).files}
    assert set(found) == {"caf\\xe9.py", "r\\xe9sum\\xe9s/caf\\xe9.py", "ok.py"}
    assert found["ok.py"].fs_path is None
    assert os.fsencode(found["r\\xe9sum\\xe9s/caf\\xe9.py"].open_path) == DIR + b"/" + LATIN1
    for f in found.values():
        f.path.encode("utf-8")  # what is stored is always valid UTF-8


def test_a_real_name_spelled_like_an_escaped_one_is_never_mixed_up(tmp_path: Path) -> None:
    _write(tmp_path, LATIN1, "undecodable = 1\n")
    _write(tmp_path, b"caf\\xe9.py", "literal_backslash = 1\n")
    found = discover(tmp_path, lambda p: "python", max_file_bytes=1 << 20)
    assert [f.path for f in found.files] == ["caf\\xe9.py"]
    assert found.files[0].fs_path is None  # the real file of that name, not the undecodable one
    assert found.skipped == {"undecodable-name": 1}


def test_rebuild_update_and_search_with_non_utf8_names(tmp_path: Path, cli) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    _write(root, LATIN1, "def espresso():\n    return 'crema'\n")
    _write(root, DIR + b"/" + b"cv.py", "def curriculum():\n    return 'vitae'\n")
    (root / "plain.py").write_text("def plain():\n    return 1\n")
    rebuilt = cli("rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["files_added"] == 3
    found = cli("search", "espresso crema", "--root", str(root), "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["path"] == "caf\\xe9.py"
    human = cli("search", "curriculum", "--root", str(root))  # printed to a terminal-like pipe, escaped
    assert human.returncode == 0 and "r\\xe9sum\\xe9s/cv.py" in human.stdout, human.stderr

    with open(os.path.join(os.fsencode(root), LATIN1), "w") as fh:
        fh.write("def ristretto():\n    return 'short'\n")
    updated = cli("update", str(root), "--json")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["files_modified"] == 1
    os.unlink(os.path.join(os.fsencode(root), LATIN1))
    updated = cli("update", str(root), "--json")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["files_deleted"] == 1
    assert Index(root).status()["files"] == 2
