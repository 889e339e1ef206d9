"""The reranking stage: the ``codeindex_rerankers`` hook, the example plugin, and how a search uses one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from codeindex import Index, plugins
from codeindex.errors import PluginError, UsageError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "plugins" / "codeindex-rerank-example"

REVERSING = textwrap.dedent('''
    import codeindex

    class Reverse:
        name = "reverse"
        description = "puts the last candidate first"

        def rerank(self, query, candidates):
            return [float(i) for i in range(len(candidates))]

    class Broken:
        name = "broken"
        description = "returns too few scores"

        def rerank(self, query, candidates):
            return [1.0]

    @codeindex.hookimpl
    def codeindex_rerankers():
        return [Reverse(), Broken()]
''')


@pytest.fixture
def reranking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> plugins.PluginManager:
    site = tmp_path / "site"
    site.mkdir()
    (site / "reversing.py").write_text(REVERSING)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    manager = plugins.build_plugin_manager([
        metadata.EntryPoint("reversing", "reversing", "codeindex.rerankers"),
        metadata.EntryPoint("term-coverage", "codeindex_rerank_example", "codeindex.rerankers")])
    monkeypatch.setattr(plugins, "_manager", manager)
    return manager


def _indexed(root: Path) -> Index:
    root.mkdir()
    for i in range(8):
        (root / f"m{i}.py").write_text(f"def job_{i}(queue):\n    \"\"\"Drain the work queue number {i}.\"\"\"\n"
                                       f"    return [queue.pop() for _ in range({i})]\n")
    (root / "retry.py").write_text("def backoff(attempt):\n    \"\"\"Retry delay: exponential backoff.\"\"\"\n"
                                   "    return 2 ** attempt\n")
    index = Index(root)
    index.rebuild(embedder="hashing", scheduler="sync")
    return index


def test_codeindex_rerankers_hook_registers_and_reorders(reranking: plugins.PluginManager, tmp_path: Path) -> None:
    assert reranking.warnings == []
    assert set(reranking.rerankers()) == {"reverse", "broken", "term-coverage"}
    index = _indexed(tmp_path / "repo")
    plain = index.search("drain the work queue", k=20, mode="lexical")
    reversed_ = index.search("drain the work queue", k=20, mode="lexical", reranker="reverse")
    assert [r.chunk_id for r in reversed_] == [r.chunk_id for r in plain][::-1]


def test_the_example_reranker_moves_the_best_covered_candidate_up(reranking: plugins.PluginManager,
                                                                  tmp_path: Path) -> None:
    index = _indexed(tmp_path / "repo")
    plain = index.search("exponential backoff retry delay", k=10, mode="vector")
    reranked = index.search("exponential backoff retry delay", k=10, mode="vector", reranker="term-coverage")
    assert reranked[0].path == "retry.py"
    assert sorted(r.chunk_id for r in plain) == sorted(r.chunk_id for r in reranked)


def test_identifier_definitions_stay_above_reranked_results(reranking: plugins.PluginManager, tmp_path: Path) -> None:
    index = _indexed(tmp_path / "repo")
    top = index.search("backoff", k=5, reranker="reverse")[0]
    assert top.path == "retry.py" and top.exact_definition


def test_unknown_or_broken_reranker_is_a_clear_error(reranking: plugins.PluginManager, tmp_path: Path) -> None:
    index = _indexed(tmp_path / "repo")
    with pytest.raises(PluginError, match="unknown reranker 'nope'"):
        index.search("queue", k=3, reranker="nope")
    with pytest.raises(UsageError, match="returned 1 scores"):
        index.search("drain the work queue", k=3, mode="lexical", reranker="broken")


def test_rerankers_are_off_by_default(reranking: plugins.PluginManager, tmp_path: Path) -> None:
    index = _indexed(tmp_path / "repo")
    assert index.config["search.reranker"] == ""
    assert [r.chunk_id for r in index.search("drain the work queue", k=20, mode="lexical")] == \
        [r.chunk_id for r in index.search("drain the work queue", k=20, mode="lexical", group="definition")]


@pytest.mark.slow
def test_installed_example_plugin_is_discovered_and_used(tmp_path: Path, cli) -> None:
    site, build = tmp_path / "site", tmp_path / "build"
    build.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                    "--target", str(site), str(EXAMPLE)], check=True, cwd=build,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"})
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    proc = cli("plugins", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)["plugins"]}
    assert [r["name"] for r in rows["term-coverage"]["rerankers"]] == ["term-coverage"]
    _indexed(tmp_path / "repo")
    proc = cli("search", "exponential backoff retry delay", "--root", str(tmp_path / "repo"), "--mode", "vector",
               "--rerank", "term-coverage", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["path"] == "retry.py"
