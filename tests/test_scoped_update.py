"""``Index.update(paths=...)``: an update of just the paths a file watcher reported, and still exact.

Exact means: after a scoped update the index equals a fresh rebuild of the tree (chunks, vectors,
Merkle nodes, file rows, search results), every row of a file outside the scope is untouched, and
a change outside the scope is not seen (nothing else was walked) until a full ``update``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from crash_helpers import apply_edits, make_tree, read_state
from test_discovery import copy_scenario, everything_text

from codeindex import Index
from codeindex.changes.discovery import discover, rescan_scope
from codeindex.changes.plan import scan_scopes
from codeindex.errors import UsageError
from codeindex.store.reader import database_stamp

# ---------------------------------------------------------------------------------------------- pure rules


def test_rescan_scope() -> None:
    assert rescan_scope("src/app/core.py") == "src/app/core.py"
    assert rescan_scope("src/app") == "src/app"
    assert rescan_scope("src/app/.gitignore") == "src/app"  # what is ignored below it changes
    assert rescan_scope(".codeindexignore") == ""
    assert rescan_scope("tools/pyproject.toml") == "tools"  # tools/build/ is excluded next to a manifest
    assert rescan_scope("env/pyvenv.cfg") == "env"
    assert rescan_scope(".git/info/exclude") == ""
    assert rescan_scope(".git/index") is None
    assert rescan_scope("sub/.hg/store/data") is None
    assert scan_scopes(["a.py", "b/.gitignore", ".git/HEAD"]) == {"a.py", "b"}
    assert scan_scopes(["a.py", ".gitignore"]) is None  # the whole tree


def _tree_paths(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        for name in [*dirnames, *filenames]:
            out.append(name if rel == "." else f"{rel}/{name}")
    return sorted(out)


def test_discovery_within_a_scope_is_the_full_walk_cut_to_it(tmp_path: Path) -> None:
    """Nested ignores, negations, default excludes and markers decide inside a scope as in a full walk."""
    root = copy_scenario("nested_ignores", tmp_path / "repo")
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "info" / "exclude").write_text("excluded_by_info/\n")
    full = [f.path for f in discover(root, everything_text, max_file_bytes=1 << 20).files]
    candidates = [p for p in _tree_paths(root) if rescan_scope(p) == p] + ["gone/file.py", "src/nope"]
    assert len(candidates) > 30
    for i, scope in enumerate(candidates):
        scopes = {scope, candidates[(i * 7) % len(candidates)]}  # pairs too
        within = discover(root, everything_text, max_file_bytes=1 << 20, within=scopes)
        expected = [p for p in full if any(p == s or p.startswith(s + "/") for s in scopes)]
        assert [f.path for f in within.files] == expected, scopes


# ---------------------------------------------------------------------------------------------- the engine


def _files(root: Path) -> dict[str, tuple[object, ...]]:
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT path, size, mtime_ns, inode, ctime_ns, hash, language, parser_id, n_chunks, "
                           "skip_reason FROM files").fetchall()
    return {r[0]: r[1:] for r in rows}


def _meta(root: Path) -> dict[str, str]:
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        return dict(con.execute("SELECT k, v FROM meta").fetchall())


def _n_runs(root: Path) -> int:
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM runs").fetchall()[0][0])


def _content(rows: dict[str, tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
    """File rows without the stat columns (a copy of the tree has other inodes and ctimes)."""
    return {p: r[4:] for p, r in rows.items()}


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)


Edit = Callable[[Path], list[str]]


def _modify(root: Path) -> list[str]:
    mod = root / "gen" / "mod0.py"
    _rewrite(mod, mod.read_text() + "\n\ndef refund_order(order_id: int) -> bool:\n    return order_id > 0\n")
    return ["gen/mod0.py"]


def _add(root: Path) -> list[str]:
    (root / "gen" / "brand_new.py").write_text("def shiny_new_helper(x):\n    return x + 1\n")
    return ["gen/brand_new.py"]


def _delete(root: Path) -> list[str]:
    (root / "gen" / "mod1.py").unlink()
    return ["gen/mod1.py"]


def _move_file(root: Path) -> list[str]:
    (root / "gen" / "moved").mkdir()
    (root / "gen" / "mod2.py").rename(root / "gen" / "moved" / "mod2_renamed.py")
    return ["gen/mod2.py", "gen/moved", "gen/moved/mod2_renamed.py"]


def _rename_dir(root: Path) -> list[str]:
    (root / "gen").rename(root / "generated")  # a watcher reports the two directory paths only
    return [str(root / "gen"), str(root / "generated")]  # absolute paths are accepted too


def _delete_dir(root: Path) -> list[str]:
    shutil.rmtree(root / "gen")
    return ["gen"]


def _nested_gitignore(root: Path) -> list[str]:
    (root / "gen" / ".gitignore").write_text("mod3.py\n")
    return ["gen/.gitignore"]


def _venv_marker(root: Path) -> list[str]:
    (root / "gen" / "pyvenv.cfg").write_text("home = /usr\n")  # gen/ is now a virtualenv: excluded whole
    return ["gen/pyvenv.cfg"]


def _file_becomes_directory(root: Path) -> list[str]:
    (root / "gen" / "mod4.py").unlink()
    (root / "gen" / "mod4.py").mkdir()
    (root / "gen" / "mod4.py" / "inner.py").write_text("def inner_helper():\n    return 4\n")
    return ["gen/mod4.py"]


def _ignored_and_vanished(root: Path) -> list[str]:
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("function dep() { return 1 }\n")
    return ["node_modules/dep.js", "gen/tmp.swp", ".git/index"]  # excluded, already gone, VCS


def _many(root: Path) -> list[str]:
    apply_edits(root)  # modify, add, delete, move, and a copy with identical text
    return ["gen/mod0.py", "gen/added.py", "gen/mod1.py", "gen/moved", "gen/mod2.py", "gen/moved/mod2_renamed.py",
            "util/text_copy.py"]


EDITS: dict[str, Edit] = {
    "modify": _modify, "add": _add, "delete": _delete, "move_file": _move_file, "rename_dir": _rename_dir,
    "delete_dir": _delete_dir, "nested_gitignore": _nested_gitignore, "venv_marker": _venv_marker,
    "file_becomes_directory": _file_becomes_directory, "ignored_and_vanished": _ignored_and_vanished,
    "many": _many,
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_scoped_update_equals_a_fresh_rebuild(tmp_path: Path, name: str) -> None:
    root = make_tree(tmp_path / "tree")
    index = Index(root)
    index.rebuild()
    before = _files(root)
    reported = EDITS[name](root)
    report = index.update(paths=reported)
    index.close()
    after = _files(root)

    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns(".codeindex"))
    Index(fresh).rebuild()
    assert read_state(root) == read_state(fresh)  # chunks, vector keys, Merkle nodes, searches
    assert _content(after) == _content(_files(fresh))
    assert _meta(root)["root_hash"] == _meta(fresh)["root_hash"]

    touched = {p for p in {*before, *after} if before.get(p) != after.get(p)}
    scopes = scan_scopes(Index(root)._relative_paths(reported)) or set()
    assert all(any(p == s or p.startswith(s + "/") for s in scopes) for p in touched), \
        "a row outside the reported paths changed"
    if name == "ignored_and_vanished":
        assert report.files_added == report.files_modified == report.files_deleted == 0


def test_scoped_update_walks_only_its_paths(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    index = Index(root)
    index.rebuild()
    snapshot_time = _meta(root)["snapshot_time_ns"]
    _modify(root)
    unreported = root / "gen" / "mod5.py"
    unreported.write_text(unreported.read_text() + "\n# an edit nobody reported\n")
    before = _files(root)
    report = index.update(paths=["gen/mod0.py"])
    assert (report.files_modified, report.files_seen) == (1, len(_files(root)))
    assert _files(root)["gen/mod5.py"] == before["gen/mod5.py"]
    assert Index(root).plan().modified == ["gen/mod5.py"]  # left for the next full update
    # Stats outside the scope were taken before the old snapshot time: keep it (the racy-window rule).
    assert _meta(root)["snapshot_time_ns"] == snapshot_time
    full = index.update()
    assert full.files_modified == 1
    assert _meta(root)["snapshot_time_ns"] != snapshot_time
    index.close()


def test_a_scoped_update_with_nothing_to_do_writes_nothing(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    index = Index(root)
    index.rebuild()
    runs, stamp = _n_runs(root), database_stamp(root / ".codeindex" / "meta.duckdb")
    report = index.update(paths=["gen/mod0.py", "no/such/file.py"])
    assert report.files_modified == report.files_added == report.files_deleted == 0
    assert (_n_runs(root), database_stamp(root / ".codeindex" / "meta.duckdb")) == (runs, stamp)


def test_a_touched_file_gets_its_new_stat_and_nothing_else(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    index = Index(root)
    index.rebuild()
    before = _files(root)
    target = root / "gen" / "mod5.py"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10_000_000_000))
    index.update(paths=["gen/mod5.py"])
    after = _files(root)
    assert after["gen/mod5.py"][1] == target.stat().st_mtime_ns
    assert after["gen/mod5.py"][4:] == before["gen/mod5.py"][4:]
    assert {p: r for p, r in after.items() if p != "gen/mod5.py"} == \
        {p: r for p, r in before.items() if p != "gen/mod5.py"}


def test_paths_outside_the_root_are_a_usage_error(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    with pytest.raises(UsageError, match="not under the indexed root"):
        Index(root).update(paths=[str(tmp_path / "elsewhere.py")])
    assert Index(root)._relative_paths([str(root), "./gen/../gen/mod0.py"]) == {"", "gen/mod0.py"}


def test_a_prepared_state_is_used_only_while_nothing_committed(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``prepare_update`` reads the snapshot early; a commit by another writer meanwhile makes it unusable."""
    import codeindex.engine.run as engine_run

    root = make_tree(tmp_path / "tree")
    index = Index(root)
    index.rebuild()
    reads: list[int] = []
    real_read = engine_run.read_state
    monkeypatch.setattr(engine_run, "read_state", lambda *a, **k: reads.append(1) or real_read(*a, **k))

    index.prepare_update()
    _modify(root)
    index.update(paths=["gen/mod0.py"])
    assert reads == [], "the prepared state was current: no second read"

    index.prepare_update()
    _add(root)
    Index(root).update()  # another writer commits after the state was prepared
    _delete(root)
    before = len(reads)
    index.update(paths=["gen/mod1.py"])
    assert len(reads) == before + 1, "a state from before another commit must be read again"
    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns(".codeindex"))
    Index(fresh).rebuild()
    assert read_state(root) == read_state(fresh)
