"""Incremental equals fresh: after any sequence of edits, moves (dotfiles included) and deletions, the
index an ``update`` leaves equals the one a rebuild of the same tree makes.

Moves matter most: their chunk rows are carried to the new path without re-parsing, so the symbol a
moved chunk gets must follow the same rule the parsers use (``chunking.source.module_path``). A copy of
that rule once disagreed with it for dotfiles (``dir/.bashrc`` moved to ``other/.zshrc`` kept a
``.bashrc`` symbol).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeindex import Index

NAMES = ["a.py", "b.py", ".hidden.py", ".bashrc", ".zshrc", "tool.sh", "notes.md"]
DIRS = ["", "pkg/", "pkg/sub/", "other/", ".dot/"]


def _body(name: str, n: int) -> str:
    if name.endswith(".py"):
        return "".join(f"def greet_{i}(who):\n    \"\"\"Say hello {i}.\"\"\"\n    return 'hi ' + who\n\n\n"
                       for i in range(n))
    if name.endswith(".md"):
        return "".join(f"# Section {i}\n\nSome words about part {i}.\n\n" for i in range(n))
    return "".join(f"greet_{i}() {{\n    echo \"hello {i}\"\n}}\n\n" for i in range(n))


def _state(index_dir: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(index_dir / "meta.duckdb"), read_only=True)
    try:
        chunks = con.execute("SELECT c.path, c.start_line, c.end_line, c.kind, c.symbol, c.text, c.lex_len, v.vec_key "
                             "FROM chunks c JOIN vectors v USING (vec_id) ORDER BY ALL").fetchall()
        files = con.execute("SELECT path, hash, language, n_chunks, skip_reason FROM files ORDER BY ALL").fetchall()
        return [*chunks, *files]
    finally:
        con.close()


paths = st.tuples(st.sampled_from(DIRS), st.sampled_from(NAMES)).map("".join)
operations = st.lists(st.one_of(
    st.tuples(st.just("move"), st.integers(0, 50), paths),
    st.tuples(st.just("edit"), st.integers(0, 50), st.integers(1, 4)),
    st.tuples(st.just("delete"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("add"), paths, st.integers(1, 3)),
), min_size=1, max_size=5)


def _apply(root: Path, op: tuple[object, ...]) -> None:
    files = sorted(p for p in root.rglob("*") if p.is_file() and ".codeindex" not in p.parts)
    kind = op[0]
    if kind == "add":
        target = root / str(op[1])
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_body(target.name, int(op[2])))  # type: ignore[call-overload]
        return
    if not files:
        return
    source = files[int(op[1]) % len(files)]  # type: ignore[call-overload]
    if kind == "move":
        target = root / str(op[2])
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)
    elif kind == "edit":
        source.write_text(_body(source.name, int(op[2])) + "# edited\n")  # type: ignore[call-overload]
    else:
        source.unlink()


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_incremental_update_equals_a_fresh_rebuild(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = base / "tree"
        for i, (folder, name) in enumerate([("pkg/", "a.py"), ("", ".bashrc"), ("dir/", ".hidden.py"),
                                            ("pkg/sub/", "tool.sh"), ("", "notes.md")]):
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / name).write_text(_body(name, 1 + i % 3))
        incremental = Index(root, index_dir=base / "incremental", **{"embedder.backend": "hashing"})
        incremental.rebuild(scheduler="sync")
        for op in ops:
            _apply(root, op)
            incremental.update(scheduler="sync")
        fresh = Index(root, index_dir=base / "fresh", **{"embedder.backend": "hashing"})
        fresh.rebuild(scheduler="sync")
        assert _state(base / "incremental") == _state(base / "fresh")
        shutil.rmtree(base / "fresh")


def test_a_moved_dotfile_gets_the_symbol_a_rebuild_gives_it(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / ".bashrc").write_text("greet() {\n    echo hi\n}\n")
    index = Index(root, index_dir=tmp_path / "idx", **{"embedder.backend": "hashing"})
    index.rebuild(scheduler="sync")
    (root / "other").mkdir()
    (root / "dir" / ".bashrc").rename(root / "other" / ".zshrc")
    report = index.update(scheduler="sync")
    assert report.files_moved == 1
    symbols = {h.symbol for h in index.search("greet", k=5, mode="lexical")}
    assert "other..zshrc.greet" in symbols and not any(".bashrc" in s for s in symbols), symbols
