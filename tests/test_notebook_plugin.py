"""The example third-party plugin: installed → discovered and used; uninstalled → gone; broken → warned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from codeindex.plugins import build_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "codeindex-notebooks"

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Load data\n", "\n", "Read the CSV."]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["import csv\n", "\n", "def load(path):\n", "    with open(path) as fh:\n",
                    "        return list(csv.reader(fh))\n"]},
    ],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
}

PROBE = textwrap.dedent("""
    import json, sys
    from importlib import metadata
    from codeindex.plugins import build_plugin_manager
    from codeindex.hookspecs import ChunkBudget
    eps = list(metadata.entry_points(group="codeindex.parsers"))
    manager = build_plugin_manager(eps)
    out = {"plugins": sorted(manager.infos), "warnings": manager.warnings, "chunks": []}
    for parser in manager.parsers():
        if any(".ipynb" in spec.extensions for spec in parser.languages()):
            source = open(sys.argv[1], "rb").read()
            budget = ChunkBudget(256, lambda ts: [len(t.split()) + 2 for t in ts])
            out["chunks"] = [[c.symbol, c.kind, c.start_line, c.end_line]
                             for c in parser.chunk(source, "nb/explore.ipynb", "ipynb", budget)]
    print(json.dumps(out))
""")


def _probe(tmp_path: Path, extra_path: Path | None) -> dict:
    nb = tmp_path / "explore.ipynb"
    nb.write_text(json.dumps(NOTEBOOK, indent=1))
    paths = [str(extra_path)] if extra_path else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", PROBE, str(nb)], capture_output=True, text=True, env=env,
                          check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_installed_plugin_is_discovered_and_chunks_by_cell(notebooks_site: Path, tmp_path: Path) -> None:
    result = _probe(tmp_path, notebooks_site)
    assert "notebooks" in result["plugins"] and result["warnings"] == []
    lines = json.dumps(NOTEBOOK, indent=1).split("\n")
    chunks = {(s, k): (a, b) for s, k, a, b in result["chunks"]}
    # Spans point at the JSON lines holding the cell's source strings.
    a, b = chunks[("nb.explore.cell1.load", "function")]
    assert '"import csv\\n"' in lines[a - 1] and "csv.reader" in lines[b - 1]
    assert any('"def load(path):\\n"' in line for line in lines[a - 1:b])
    a, b = chunks[("nb.explore.cell0.Load data", "section")]
    assert '"# Load data\\n"' in lines[a - 1] and "Read the CSV." in lines[b - 1]


@pytest.mark.slow
def test_uninstalled_plugin_is_gone(tmp_path: Path) -> None:
    result = _probe(tmp_path, None)
    assert "notebooks" not in result["plugins"] and result["chunks"] == []
    assert {"treesitter", "text"} <= set(result["plugins"])


def test_broken_plugins_warn_by_name_and_others_still_work(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "raising_plugin.py").write_text(textwrap.dedent("""
        import codeindex
        @codeindex.hookimpl
        def codeindex_parsers():
            raise RuntimeError("boom")
    """))
    (tmp_path / "bad_signature_plugin.py").write_text(textwrap.dedent("""
        import codeindex
        @codeindex.hookimpl
        def codeindex_parsers(unexpected_argument):
            return []
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(PLUGIN))  # the example plugin, importable without installing
    group = "codeindex.parsers"
    eps = [metadata.EntryPoint("missing", "no_such_module_xyz", group),
           metadata.EntryPoint("raising", "raising_plugin", group),
           metadata.EntryPoint("badsig", "bad_signature_plugin", group),
           metadata.EntryPoint("notebooks", "codeindex_notebooks", group)]
    manager = build_plugin_manager(eps)
    for name in ("missing", "raising", "badsig"):
        assert any(f"'{name}'" in w for w in manager.warnings), (name, manager.warnings)
    names = {p.name for p in manager.parsers()}
    assert {"treesitter", "text", "notebooks"} <= names
