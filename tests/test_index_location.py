"""Where an index lives and what it covers: never itself, never another index, one index per tree, and
not the whole filesystem or a home folder by accident."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb

from codeindex import Index


def _paths(index_dir: Path) -> list[str]:
    con = duckdb.connect(str(index_dir / "meta.duckdb"), read_only=True)
    try:
        return sorted({r[0] for r in con.execute("SELECT path FROM files UNION SELECT path FROM chunks").fetchall()})
    finally:
        con.close()


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "top.py").write_text("def top():\n    return 1\n")
    (root / "sub" / "inner.py").write_text("def inner():\n    return 2\n")
    return root


def _settled(report) -> bool:
    return not (report.files_added or report.files_modified or report.files_deleted or report.files_moved)


def test_an_index_folder_inside_the_tree_is_never_indexed(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    index_dir = root / "sub" / "idx"  # --index-dir somewhere inside the tree, not at its top
    index = Index(root, index_dir=index_dir)
    index.rebuild(scheduler="sync", embedder="hashing")
    assert _paths(index_dir) == ["sub/inner.py", "top.py"]
    assert _settled(index.update(scheduler="sync"))  # the lock file's JSON made every update see a change
    assert _settled(index.update(scheduler="sync"))


def test_a_nested_index_is_never_indexed(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    Index(root / "sub").rebuild(scheduler="sync", embedder="hashing")  # a subproject's own index
    report = Index(root).rebuild(scheduler="sync", embedder="hashing")
    assert _paths(root / ".codeindex") == ["sub/inner.py", "top.py"]
    assert report.skipped.get("index-dir") == 1
    assert _settled(Index(root).update(scheduler="sync"))


def test_update_in_a_subfolder_updates_the_tree_that_owns_it(tmp_path: Path, cli) -> None:
    root = _tree(tmp_path / "tree")
    Index(root).rebuild(scheduler="sync", embedder="hashing")
    (root / "sub" / "inner.py").write_text("def inner_changed():\n    return 3\n")
    done = cli("update", str(root / "sub"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["files_modified"] == 1
    assert any("part of the tree indexed at" in w for w in report["warnings"])
    assert not (root / "sub" / ".codeindex").exists()  # never a second index nested in the first
    hits = cli("search", "inner_changed", "--root", str(root / "sub"), "--mode", "lexical", "--json")
    assert hits.returncode == 0 and json.loads(hits.stdout)["results"][0]["path"] == "sub/inner.py", hits.stderr
    refused = cli("rebuild", str(root / "sub"))
    assert refused.returncode == 2 and "part of the tree indexed at" in refused.stderr
    assert not (root / "sub" / ".codeindex").exists()


def test_rebuild_of_the_filesystem_root_is_refused_without_force(tmp_path: Path, cli) -> None:
    try:  # --index-dir elsewhere, so that nothing is ever written to /
        done = cli("--index-dir", str(tmp_path / "idx"), "rebuild", "/", "--embedder", "hashing", timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("`codeindex rebuild /` started walking the whole filesystem") from exc
    assert done.returncode == 2, done.stderr
    assert "refusing to index /" in done.stderr and "--force" in done.stderr
    assert not (tmp_path / "idx" / "meta.duckdb").exists()


def test_rebuild_of_the_home_folder_is_refused_without_force(tmp_path: Path, cli) -> None:
    home = _tree(tmp_path / "home")
    env = {"HOME": str(home)}
    for command in ("rebuild", "update"):  # an update with no index yet is a rebuild
        done = cli(command, str(home), "--embedder", "hashing", "--scheduler", "sync", env=env, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "home folder" in done.stderr
        assert not (home / ".codeindex" / "meta.duckdb").exists()
    forced = cli("rebuild", str(home), "--force", "--embedder", "hashing", "--scheduler", "sync", env=env)
    assert forced.returncode == 0, forced.stderr
    assert _paths(home / ".codeindex") == ["sub/inner.py", "top.py"]
    assert cli("update", str(home), env=env).returncode == 0  # an existing index updates without --force
