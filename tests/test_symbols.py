"""The symbol table and identifier lookups: shapes, ranking, incremental upkeep, definitions first."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from codeindex.search.symbols import IdentifierQuery, parse_identifier, rank_definitions
from codeindex.store.symbols import SymbolRow


@pytest.mark.parametrize(("query", "expected"), [
    ("parse_args", IdentifierQuery("parse_args")),
    ("Request", IdentifierQuery("Request")),
    ("Console.print", IdentifierQuery("print", ("Console",))),
    ("Class::method", IdentifierQuery("method", ("Class",))),
    ("obj->field", IdentifierQuery("field", ("obj",))),
    ("rich.console.Console", IdentifierQuery("Console", ("rich", "console"))),
    ("pkg/path.go:Func", IdentifierQuery("Func", (), "pkg/path.go")),
    ("app.py:Flask.run", IdentifierQuery("run", ("Flask",), "app.py")),
    ("allow?", IdentifierQuery("allow?")),
])
def test_identifier_shaped_queries(query: str, expected: IdentifierQuery) -> None:
    assert parse_identifier(query) == expected


@pytest.mark.parametrize("query", ["read the config file", "what parses args", "a.b c", "", "  ", "1abc", "x.."])
def test_words_are_not_identifiers(query: str) -> None:
    assert parse_identifier(query) is None


def _row(path: str, qualified: str, kind: str = "function", line: int = 1) -> SymbolRow:
    return SymbolRow(path, qualified.rsplit(".", 1)[-1], qualified, kind, line, line + 5)


def test_ranking_of_definitions_a_name_matches() -> None:
    rows = [_row("tests/test_x.py", "Console", "class"), _row("rich/console.pyi", "Console", "class"),
            _row("rich/console.py", "console", "function"), _row("rich/console.py", "Console", "class"),
            _row("rich/live.py", "Live.Console", "function"), _row("rich/other.py", "Consoles", "class")]
    ranked = rank_definitions(IdentifierQuery("Console"), rows)
    assert [(r.path, r.qualified) for r in ranked] == [
        ("rich/console.py", "Console"),      # exact case, implementation, a type
        ("rich/live.py", "Live.Console"),    # exact case, a function
        ("rich/console.pyi", "Console"),     # a stub follows the implementation
        ("tests/test_x.py", "Console"),      # tests follow the library
        ("rich/console.py", "console"),      # case ignored: last
    ]


def test_qualifiers_and_paths_narrow_the_match() -> None:
    rows = [_row("rich/console.py", "Console.print", "method"), _row("rich/pretty.py", "Pretty.print", "method"),
            _row("rich/console.py", "Console.print_json", "method"), _row("rich/__init__.py", "print")]
    assert [r.qualified for r in rank_definitions(parse_identifier("Console.print"), rows)] == ["Console.print"]
    assert [r.qualified for r in rank_definitions(parse_identifier("rich.console.Console.print"), rows)] \
        == ["Console.print"]
    assert [r.path for r in rank_definitions(parse_identifier("rich/pretty.py:print"), rows)] == ["rich/pretty.py"]
    assert [r.path for r in rank_definitions(parse_identifier("pretty.py:print"), rows)] == ["rich/pretty.py"]
    assert rank_definitions(parse_identifier("ty.py:print"), rows) == []  # a path matches whole parts only
    overloads = [SymbolRow("m.py", "match", "Map.match", "method", 10, 11),
                 SymbolRow("m.py", "match", "Map.match", "method", 13, 14),
                 SymbolRow("m.py", "match", "Map.match", "method", 16, 60)]
    fused_overloads = {overloads[0]: 0, overloads[1]: 1, overloads[2]: 2}
    assert rank_definitions(parse_identifier("Map.match"), overloads, fused_overloads)[0] == overloads[2], \
        "the implementation before its @overload stubs, whatever the fused ranking says"
    fused = {rows[3]: 0, rows[0]: 5}
    assert [r.qualified for r in rank_definitions(parse_identifier("print"), rows, fused)] \
        == ["print", "Console.print", "Pretty.print"]  # the fused ranking orders equals


# ------------------------------------------------------------------ the stored table

LOADER = '''"""Configuration loading."""


class Loader:
    """Reads settings."""

    def parse_config(self, path):
        """Read the file at path."""
        with open(path) as fh:
            return dict(line.split("=", 1) for line in fh)


def parse_config(path):
    return Loader().parse_config(path)
'''

CALLER = '''from pkg.loader import parse_config


def use_{i}():
    # parse_config parse_config: call parse_config twice, parse_config is the loader
    first = parse_config("a.cfg")
    second = parse_config("b.cfg")
    return parse_config("c.cfg"), first, second
'''


def _tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "loader.py").write_text(LOADER)
    for i in range(6):
        (root / "pkg" / f"use_{i}.py").write_text(CALLER.format(i=i))
    return root


def _symbols(root: Path) -> set[tuple[str, str, str, int, int]]:
    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        return set(con.execute("SELECT path, qualified, kind, start_line, end_line FROM symbols").fetchall())


def test_symbol_table_follows_edits_moves_and_deletes(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    index = Index(root)
    index.rebuild(embedder="hashing", scheduler="sync")
    first = _symbols(root)
    assert ("pkg/loader.py", "Loader.parse_config", "method", 7, 10) in first
    assert ("pkg/loader.py", "parse_config", "function", 13, 14) in first
    assert ("pkg/use_3.py", "use_3", "function", 4, 8) in first

    (root / "pkg" / "loader.py").write_text(LOADER.replace("def parse_config(path):", "def load_config(path):"))
    (root / "pkg" / "use_0.py").rename(root / "pkg" / "moved.py")
    (root / "pkg" / "use_1.py").unlink()
    report = index.update(scheduler="sync")
    assert (report.files_modified, report.files_moved, report.files_deleted) == (1, 1, 1)
    after = _symbols(root)
    assert ("pkg/loader.py", "load_config", "function", 13, 14) in after
    assert ("pkg/loader.py", "parse_config", "function", 13, 14) not in after
    assert ("pkg/moved.py", "use_0", "function", 4, 8) in after
    assert not any(path in ("pkg/use_0.py", "pkg/use_1.py") for path, *_ in after)

    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns(".codeindex"))
    Index(fresh).rebuild(embedder="hashing", scheduler="sync")
    assert _symbols(fresh) == after, "the kept table equals a rebuilt one"


@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
@pytest.mark.parametrize(("query", "line"), [
    ("parse_config", 13), ("Loader.parse_config", 7), ("Loader::parse_config", 7),
    ("pkg/loader.py:parse_config", 13), ("loader.py:Loader.parse_config", 7), ("Loader", 4),
])
def test_an_identifier_query_ranks_its_definition_first(tmp_path: Path, mode: str, query: str, line: int) -> None:
    """The callers mention ``parse_config`` far more often than its definition does: lexical ranking
    alone puts them first."""
    root = _tree(tmp_path / "repo")
    index = Index(root)
    index.rebuild(embedder="hashing", scheduler="sync")
    top = index.search(query, k=5, mode=mode)[0]
    assert (top.path, top.start_line <= line <= top.end_line) == ("pkg/loader.py", True), \
        [(r.path, r.start_line, r.end_line) for r in index.search(query, k=5, mode=mode)]
