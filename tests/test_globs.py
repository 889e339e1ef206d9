"""One glob translator: ignore files and search's --path filters read a glob the same way."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from codeindex.changes.ignore import RuleSet
from codeindex.globs import path_glob_regex

CASES = [
    ("src/[ab]*.py", "src/apple.py", True),
    ("src/[ab]*.py", "src/cat.py", False),
    ("src/[!ab]*.py", "src/cat.py", True),
    ("*.py", "deep/down/x.py", True),
    ("src/**/*.py", "src/a/b/c.py", True),
    ("src/*.py", "src/a/c.py", False),
    ("my dir/?.md", "my dir/x.md", True),
    (r"lit\*.py", "lit*.py", True),
    (r"lit\*.py", "litx.py", False),
]


@pytest.mark.parametrize(("pattern", "path", "matches"), CASES)
def test_path_globs_match_as_ignore_rules_do_in_python_and_in_duckdb(pattern: str, path: str, matches: bool) -> None:
    regex = path_glob_regex(pattern)
    assert bool(re.fullmatch(regex, path)) is matches
    con = duckdb.connect()
    assert con.execute("SELECT regexp_full_match(?, ?)", [path, regex]).fetchone() == (matches,)
    assert RuleSet.from_lines([pattern]).match(path, is_dir=False) is (True if matches else None)


def test_search_path_filter_takes_a_character_class(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "src").mkdir(parents=True)
    for name in ("apple", "banana", "cherry"):
        (root / "src" / f"{name}.py").write_text(f"def fruit_{name}():\n    return 'fruit'\n")
    index = Index(root, **{"embedder.backend": "hashing"})
    index.rebuild(scheduler="sync")
    hits = index.search("fruit", k=10, mode="lexical", paths=["src/[ab]*.py"])
    assert sorted(h.path for h in hits) == ["src/apple.py", "src/banana.py"]
