"""docs/reference/json.md shows every command's ``--json`` output: its examples must have the fields the
commands really print (run here on the e2e scenario with the hashing embedder)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, run_cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "reference" / "json.md"
HASHING = ("--embedder", "hashing")
NESTED = ("index", "filters", "error", "changes", "last_run")
"""Objects inside an output whose own fields are part of the format (others are keyed by data)."""
LISTS = ("results", "files", "plugins", "settings", "segments")
"""Lists of objects: the first element's fields are compared."""


def _examples() -> dict[str, dict[str, Any]]:
    examples: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL):
        data = json.loads(block)
        examples[data["command"]] = data
    return examples


def _fields(data: dict[str, Any]) -> dict[str, set[str]]:
    out = {"": set(data)}
    for key in NESTED:
        if isinstance(data.get(key), dict):
            out[key] = set(data[key])
    for key in LISTS:
        if isinstance(data.get(key), list) and data[key] and isinstance(data[key][0], dict):
            out[key + "[]"] = set(data[key][0])
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    import shutil

    root = tmp_path_factory.mktemp("json") / "e2e_repo"
    shutil.copytree(SCENARIOS / "e2e_repo", root)

    def run(*args: str) -> dict[str, Any]:
        proc = run_cli(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        return json.loads(proc.stdout)

    got = {"rebuild": run("rebuild", str(root), *HASHING, "--json")}
    (root / "new.py").write_text("def fresh():\n    return 1\n")
    got["plan"] = run("update", str(root), "--plan", "--json")
    got["update"] = run("update", str(root), "--json")
    got["search"] = run("search", "great circle distance", str(root), "--json")
    got["status"] = run("status", str(root), "--json")
    got["compact"] = run("compact", str(root), "--json")
    got["verify"] = run("verify", str(root), "--json")
    got["plugins"] = run("plugins", "--json")
    got["config"] = run("config", str(root), "--json")
    (root / "blob.py").write_bytes(b"x\x00")
    run("update", str(root), "--json")
    got["files"] = run("files", str(root), "--skipped", "--json")
    got["why"] = run("why", str(root / "blob.py"), "--json")
    proc = run_cli("status", str(root / "nope"), "--json")
    got["error"] = json.loads(proc.stderr)
    return got


def test_every_json_command_has_an_example() -> None:
    # rebuild prints the same report as update: one example serves both
    assert set(_examples()) == {"update", "plan", "search", "status", "compact", "verify", "plugins", "config",
                                "files", "why", "error"}


def test_examples_have_the_fields_the_commands_print(outputs: dict[str, dict[str, Any]]) -> None:
    examples = _examples()
    for command, real in outputs.items():
        example = examples["update" if command == "rebuild" else command]
        want, got = _fields(example), _fields(real)
        for part in sorted(set(want) | set(got)):
            assert want.get(part) == got.get(part), (command, part, want.get(part), got.get(part))
        assert real["schema"] == example["schema"] == 1


def test_run_report_stages_are_documented(outputs: dict[str, dict[str, Any]]) -> None:
    documented = set(_examples()["update"]["stages"])
    for command in ("rebuild", "update"):
        assert set(outputs[command]["stages"]) <= documented, command
