"""Meta-tests: every hook and every CLI command is documented and tested; generated docs are current."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from codeindex import hookspecs
from codeindex.cli import cli
from codeindex.reference import expected_files

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def _test_sources() -> str:
    return "\n".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_docs.py")


def test_generated_reference_docs_are_current() -> None:
    for path, text in expected_files().items():
        assert path.exists(), f"{path} missing: run `python -m codeindex.reference`"
        assert path.read_text() == text, f"{path} is stale: run `python -m codeindex.reference`"


def test_cli_reference_is_what_the_commands_print() -> None:
    """Each section of docs/reference/cli.md is the real ``codeindex ... --help`` of a fresh process
    on a wide terminal, not a rendering that only resembles it."""
    import os
    import subprocess
    import sys

    docs = (ROOT / "docs" / "reference" / "cli.md").read_text()
    sections = dict(re.findall(r"## (codeindex[\w ]*)\n\n```\n(.*?)\n```", docs, flags=re.DOTALL))
    assert set(sections) == {"codeindex", *(f"codeindex {name}" for name in cli.commands)}
    env = {**os.environ, "COLUMNS": "160"}
    for title, text in sections.items():
        args = title.split()[1:]
        real = subprocess.run([sys.executable, "-m", "codeindex.cli", *args, "--help"], capture_output=True,
                              text=True, check=True, env=env).stdout
        assert real.rstrip("\n") == text, f"{title}: docs/reference/cli.md differs from `{title} --help`"
        assert "-h, --help" in text and f"Usage: {title} " in text


def test_every_hook_is_documented_and_tested() -> None:
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("codeindex_")]
    assert hooks, "no hooks found"
    docs = (ROOT / "docs" / "reference" / "hooks.md").read_text()
    tests = _test_sources()
    for hook in hooks:
        assert f"`{hook}`" in docs, f"hook {hook} is not documented in docs/reference/hooks.md"
        assert hook in tests, f"hook {hook} has no test"


def test_every_cli_command_is_documented_and_tested() -> None:
    docs = (ROOT / "docs" / "reference" / "cli.md").read_text()
    tests = _test_sources()
    for name in cli.commands:
        assert f"## codeindex {name}" in docs
        assert re.search(rf'cli\([^)]*"{name}"', tests), f"CLI command {name} has no test running it"


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
