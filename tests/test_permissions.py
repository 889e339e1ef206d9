"""The index never widens access: its folder is 0700 and its files 0600, so another user cannot read
through a search what the file modes deny them."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeindex import Index
from codeindex.errors import UsageError

NOBODY = 65534
SECRET_WORD = "zebracorn4711"


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's own tmp_path is 0700: another user could read nothing
    in it, whatever the index did)."""
    path = Path(tempfile.mkdtemp(prefix="codeindex-perm-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _tree(base: Path) -> Path:
    root = base / "tree"
    root.mkdir()
    root.chmod(0o755)
    (root / "public.py").write_text("def hello():\n    return 'world'\n")
    private = root / "private_notes.py"
    private.write_text(f"# only the owner may read this\nNOTE = '{SECRET_WORD} is the answer'\n")
    private.chmod(0o600)
    for p in root.iterdir():
        if p != private:
            p.chmod(0o644)
    return root


def test_the_index_folder_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    Index(root).rebuild(scheduler="sync", embedder="hashing")
    index_dir = root / ".codeindex"
    assert stat.S_IMODE(index_dir.stat().st_mode) == 0o700
    written = [p for p in index_dir.iterdir() if p.is_file() and not p.name.endswith(".wal")]
    assert {p.name for p in written} >= {"meta.duckdb", "lock"} and any(p.suffix == ".faiss" for p in written)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_an_existing_index_folder_is_narrowed(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / ".codeindex").mkdir(mode=0o755)
    (root / ".codeindex").chmod(0o755)
    Index(root).update(scheduler="sync", embedder="hashing")
    assert stat.S_IMODE((root / ".codeindex").stat().st_mode) == 0o700


def test_a_shared_folder_is_refused_as_the_index_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: narrowing it would break everyone else
    with pytest.raises(UsageError, match="private"):
        Index(_tree(tmp_path), index_dir=shared).rebuild(scheduler="sync", embedder="hashing")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777


_AS_ANOTHER_USER = r"""
import contextlib, io, os, sys
uid, root = int(sys.argv[1]), sys.argv[2]
# Everything a search imports, loaded while this process may still read the interpreter's files
# (the Python here lives under /root, which another user cannot enter).
import codeindex.cli, codeindex.index, codeindex.render, codeindex.search.searcher, rich.console
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
try:
    open(os.path.join(root, "private_notes.py")).read()
    print("SOURCE-READABLE")
except PermissionError:
    print("source denied")
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    rc = codeindex.cli.main(["search", sys.argv[3], "--root", root, "--mode", "lexical", "--json"])
print("exit", rc)
print(out.getvalue())
for dirpath, _, names in os.walk(os.path.join(root, ".codeindex")):
    for name in names:
        try:
            open(os.path.join(dirpath, name), "rb").read(1)
            print("INDEX-FILE-READABLE", name)
        except PermissionError:
            pass
"""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root to run a search as another user (uid 65534)")
def test_another_user_cannot_read_a_private_file_through_search(public_dir: Path) -> None:
    root = _tree(public_dir)
    Index(root).rebuild(scheduler="sync", embedder="hashing")
    env = {**os.environ, "HOME": str(public_dir), "XDG_CONFIG_HOME": str(public_dir)}
    proc = subprocess.run([sys.executable, "-c", _AS_ANOTHER_USER, str(NOBODY), str(root), SECRET_WORD],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    out = proc.stdout + proc.stderr
    assert "source denied" in out, out  # the file mode denies the other user...
    assert SECRET_WORD not in out.replace(f"search {SECRET_WORD}", ""), out  # ...and so does the index
    assert "exit 0" not in out, out
    assert "private to the user who built it" in out, out  # refused for the right reason, said clearly
    assert "INDEX-FILE-READABLE" not in out, out
