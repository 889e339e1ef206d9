"""A file whose parse failed is recorded with the parser's message, shown by ``status``, and parsed again
when its parser's identity changes (a fixed, upgraded plugin) or on ``update --retry-failed``.

The parser is a real third-party plugin, found through its entry point by the CLI processes.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

WORKTREE = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''
    import os
    import codeindex
    from codeindex.hookspecs import LanguageSpec
    from codeindex.models import Chunk

    VERSION = "{version}"

    class Flaky:
        name = "flaky"
        version = VERSION

        def languages(self):
            return [LanguageSpec("flaky", extensions=(".flk",))]

        def config_hash(self, language):
            return "0"

        def chunk(self, source, path, language, budget):
            text = source.decode("utf-8")
            if "BOOM" in text and VERSION == "1" and os.environ.get("FLAKY_BROKEN", "1") == "1":
                raise ValueError(f"unexpected BOOM at line 2 of {{path}}")
            return [Chunk(path, language, 1, max(1, text.count("\\n")), 0, len(source), "file", path, text,
                          text, 1)]

    @codeindex.hookimpl
    def codeindex_parsers():
        return [Flaky()]
''')


def _install(site: Path, version: str) -> None:
    (site / "flaky_parser.py").write_text(PLUGIN.format(version=version))
    dist = site / "flaky_parser-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: flaky-parser\nVersion: {version}.0\n")
    (dist / "entry_points.txt").write_text("[codeindex.parsers]\nflaky = flaky_parser\n")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "1")
    root = tmp_path / "tree"
    root.mkdir()
    (root / "broken.flk").write_text("first line\nBOOM goes the parser\n")
    (root / "fine.flk").write_text("nothing to see\n")
    env = {"PYTHONPATH": f"{site}{os.pathsep}{WORKTREE}", "PYTHONDONTWRITEBYTECODE": "1"}
    return root, env


def _status(cli, root: Path, env: dict[str, str]) -> dict:
    proc = cli("status", str(root), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _update(cli, root: Path, env: dict[str, str], *flags: str) -> dict:
    proc = cli("update", str(root), "--json", "--scheduler", "sync", *flags, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_a_failed_parse_is_shown_and_retried_when_its_parser_is_upgraded(cli, tree) -> None:
    root, env = tree
    assert cli("-q", "rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync", env=env).returncode == 0
    info = _status(cli, root, env)
    assert info["parse_failures"] == 1
    [failed] = info["failed"]
    assert failed["path"] == "broken.flk"
    assert failed["reason"].startswith("parse-error: flaky: ValueError: unexpected BOOM at line 2 of broken.flk")
    human = cli("status", str(root), env=env)
    assert "parse failures: 1" in human.stdout and "unexpected BOOM at line 2" in human.stdout
    assert _update(cli, root, env)["files_reparsed"] == 0  # nothing changed: no retry yet

    _install(Path(env["PYTHONPATH"].split(os.pathsep)[0]), "2")  # the fixed plugin, upgraded
    report = _update(cli, root, env)
    assert report["files_reparsed"] == 2, report  # every file of that parser: the failed one included
    assert _status(cli, root, env)["parse_failures"] == 0
    found = cli("search", "BOOM", "--root", str(root), "--mode", "lexical", "--json", env=env)
    assert [hit["path"] for hit in json.loads(found.stdout)["results"]] == ["broken.flk"]


@pytest.mark.slow
def test_retry_failed_parses_failures_again_without_any_change(cli, tree) -> None:
    root, env = tree
    broken = {**env, "FLAKY_BROKEN": "1"}
    assert cli("-q", "rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync",
               env=broken).returncode == 0
    mended = {**env, "FLAKY_BROKEN": "0"}  # what made it fail is gone, but the parser's identity is the same
    assert _update(cli, root, mended)["files_reparsed"] == 0
    assert _status(cli, root, mended)["parse_failures"] == 1
    report = _update(cli, root, mended, "--retry-failed")
    assert report["files_reparsed"] == 1 and report["chunks_written"] == 1
    assert _status(cli, root, mended)["parse_failures"] == 0
