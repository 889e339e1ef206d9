"""``codeindex search`` output forms: vimgrep lines, files only, context lines, grouping, JSON fields."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from codeindex.render import match_position


@pytest.fixture
def indexed(cli, scenario) -> Path:
    root = scenario("e2e_repo")
    proc = cli("-q", "rebuild", str(root), "--embedder", "hashing")
    assert proc.returncode == 0, proc.stderr
    return root


def test_vimgrep_lines_point_at_the_definition(cli, indexed: Path) -> None:
    proc = cli("search", "haversine_km", "--root", str(indexed), "-k", "3", "--vimgrep")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert 1 <= len(lines) <= 3
    assert all(re.fullmatch(r"[^:]+:\d+:\d+: .*", line) for line in lines), lines
    source = (indexed / "geo" / "distance.py").read_text().splitlines()
    path, line, column, text = lines[0].split(":", 3)
    assert path == "geo/distance.py" and source[int(line) - 1].strip() == text.strip()
    assert source[int(line) - 1][int(column) - 1:].startswith("haversine_km")


def test_files_only(cli, indexed: Path) -> None:
    proc = cli("search", "distance between two points", "--root", str(indexed), "-l")
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.splitlines()
    assert paths and len(paths) == len(set(paths)) and all((indexed / p).is_file() for p in paths)


def test_context_lines_and_json_fields(cli, indexed: Path) -> None:
    proc = cli("search", "bounding_box", "--root", str(indexed), "-k", "1", "-C", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    [hit] = json.loads(proc.stdout)["results"]
    source = (indexed / "geo" / "distance.py").read_text().split("\n")
    assert hit["exact_definition"] and hit["definition"] == "bounding_box"
    assert hit["before"] == source[hit["start_line"] - 3:hit["start_line"] - 1]
    assert hit["after"] == source[hit["end_line"]:hit["end_line"] + 2][:len(hit["after"])]
    assert hit["other_ranges"] == []
    shown = cli("search", "bounding_box", "--root", str(indexed), "-k", "1", "-C", "2")
    assert f"{hit['start_line'] - 1:>6}- " in shown.stdout and f"{hit['start_line']:>6}: " in shown.stdout


def test_group_by_file_gives_each_file_once(cli, indexed: Path) -> None:
    proc = cli("search", "distance latitude longitude", "--root", str(indexed), "--group", "file", "--json")
    assert proc.returncode == 0, proc.stderr
    paths = [r["path"] for r in json.loads(proc.stdout)["results"]]
    assert len(paths) == len(set(paths))
    bad = cli("search", "x", "--root", str(indexed), "--group", "module")
    assert bad.returncode == 2 and "module" in bad.stderr


def test_match_position_prefers_a_query_term() -> None:
    text = "@decorator\ndef parse_config(path):\n    return path\n"
    assert match_position(text, 10, ["parse_config"]) == (11, 5, "def parse_config(path):")
    assert match_position("\n    x = 1\n", 3, ["nothing"]) == (4, 5, "    x = 1")
