"""Every CLI command run as a real process, with the hashing embedder (fast); the real model is in test_e2e."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HASHING = ("--embedder", "hashing")


@pytest.fixture
def indexed(cli, scenario) -> Path:
    root = scenario("e2e_repo")
    proc = cli("-q", "rebuild", str(root), *HASHING)
    assert proc.returncode == 0, proc.stderr
    return root


def test_rebuild_json_report(cli, scenario) -> None:
    root = scenario("e2e_repo")
    proc = cli("rebuild", str(root), *HASHING, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["kind"] == "rebuild" and report["files_added"] == 5
    assert report["chunks_total"] == report["chunks_written"] > 0
    assert report["embedder"] == "hashing"


def test_search_output_format_and_json(cli, indexed: Path) -> None:
    proc = cli("search", "haversine_km", "--root", str(indexed), "-k", "2")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    # path:start-end  symbol  score
    path_span, symbol, score = first.split("  ")
    assert path_span.startswith("geo/distance.py:") and "-" in path_span.split(":")[1]
    assert symbol.endswith("haversine_km")
    float(score)
    proc = cli("search", "haversine_km", "--root", str(indexed), "--json", "--mode", "lexical")
    results = json.loads(proc.stdout)["results"]
    assert results[0]["symbol"].endswith("haversine_km")
    assert {"path", "start_line", "end_line", "symbol", "kind", "language", "score", "text"} <= set(results[0])


def test_search_filters(cli, indexed: Path) -> None:
    def paths(*args: str) -> set[str]:
        proc = cli("search", "request client", "--root", str(indexed), "--json", "-k", "20", *args)
        assert proc.returncode == 0, proc.stderr
        return {r["path"] for r in json.loads(proc.stdout)["results"]}

    assert paths("--lang", "go") == {"web/server.go"}
    assert paths("--path", "web/**") <= {"web/server.go", "web/query.js"}
    assert "web/server.go" not in paths("--exclude", "*.go")
    proc = cli("search", "cache", "--root", str(indexed), "--json", "--kind", "class")
    assert {r["kind"] for r in json.loads(proc.stdout)["results"]} == {"class"}
    proc = cli("search", "distance", "--root", str(indexed), "--json", "--symbol", "bounding")
    assert all("bounding" in r["symbol"] for r in json.loads(proc.stdout)["results"])


def test_update_plan_writes_nothing(cli, indexed: Path) -> None:
    (indexed / "util" / "text.py").write_text("def shout(s):\n    return s.upper()\n")
    (indexed / "geo" / "distance.py").rename(indexed / "geo" / "dist.py")
    (indexed / "new.py").write_text("def fresh():\n    return 1\n")
    db = indexed / ".codeindex" / "meta.duckdb"
    before = db.read_bytes()
    proc = cli("update", str(indexed), "--plan", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["added"] == ["new.py"]
    assert plan["modified"] == ["util/text.py"]
    assert plan["moved"] == [["geo/distance.py", "geo/dist.py"]]
    assert plan["by_language"]["python"]["add"] == 1
    assert db.read_bytes() == before
    proc = cli("update", str(indexed), "--plan")
    assert proc.returncode == 0 and "nothing written" in proc.stdout


def test_status_json_and_staleness(cli, indexed: Path) -> None:
    proc = cli("status", str(indexed), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["files"] == 5 and info["chunks"] > 0
    assert info["embedder"] == "hashing" and "no neural model" in info["embedder_kind"]
    assert info["last_run"]["kind"] == "rebuild" and info["last_run"]["wall_s"] > 0
    assert info["stale"] == {"added": 0, "modified": 0, "deleted": 0, "moved": 0, "reparse": 0}
    (indexed / "README.md").unlink()
    info = json.loads(cli("status", str(indexed), "--json").stdout)
    assert info["stale"]["deleted"] == 1
    assert "up to date" not in cli("status", str(indexed)).stdout


def test_plugins_lists_builtins(cli) -> None:
    proc = cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["plugins"]}
    assert {"treesitter", "text", "onnx", "sentence-transformers", "hashing"} <= set(rows)
    languages = {lang["name"]: lang for parser in rows["treesitter"]["parsers"] for lang in parser["languages"]}
    assert ".py" in languages["python"]["extensions"]
    assert {e["name"] for e in rows["onnx"]["embedders"]} == {"onnx"}
    assert rows["treesitter"]["package"] == "codeindex" and rows["treesitter"]["builtin"]
    proc = cli("plugins")
    assert proc.returncode == 0 and "treesitter" in proc.stdout


def test_config_shows_sources(cli, tmp_path: Path) -> None:
    (tmp_path / ".codeindex.toml").write_text('[embedder]\nbackend = "hashing"\n')
    (tmp_path / "pyproject.toml").write_text("[tool.codeindex.search]\nk = 7\n")
    proc = cli("config", str(tmp_path), "--json", env={"CODEINDEX_ENGINE__SCHEDULER": "sync"})
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["settings"]}
    assert rows["embedder.backend"]["value"] == "hashing"
    assert rows["embedder.backend"]["source"].endswith(".codeindex.toml")
    assert rows["search.k"]["value"] == 7 and "pyproject.toml" in rows["search.k"]["source"]
    assert rows["engine.scheduler"]["value"] == "sync" and rows["engine.scheduler"]["source"].startswith("env")
    assert rows["chunking.max_tokens"]["source"] == "default"
    (tmp_path / ".codeindex.toml").write_text("[embedder]\nbatch_tokens = 'lots'\n")
    proc = cli("config", str(tmp_path))
    assert proc.returncode == 2 and "expected int" in proc.stderr
    assert "embedder.batch_tokens" in proc.stdout  # the table is still shown: config is the diagnosis tool


@pytest.mark.slow
def test_compact_merges_segments(cli, indexed: Path) -> None:
    for i in range(3):
        (indexed / f"extra{i}.py").write_text(f"def extra_{i}():\n    return {i}\n")
        assert cli("-q", "update", str(indexed)).returncode == 0
    info = json.loads(cli("status", str(indexed), "--json").stdout)
    assert len(info["segments"]) == 4
    proc = cli("compact", str(indexed))
    assert proc.returncode == 0, proc.stderr
    assert "segments 4 -> 1" in proc.stdout
    info = json.loads(cli("status", str(indexed), "--json").stdout)
    assert len(info["segments"]) == 1 and info["dead_vectors"] == 0
    proc = cli("search", "extra_2", "--root", str(indexed), "--json", "--mode", "vector")
    results = json.loads(proc.stdout)["results"]
    assert results and results[0]["symbol"].endswith("extra_2")


def test_version(cli) -> None:
    proc = cli("--version")
    assert proc.returncode == 0 and "0.1.0" in proc.stdout


def test_stage_summary_names_the_gpu_worker_only_on_a_gpu_cluster() -> None:
    from codeindex.render import stage_summary

    stages = {"busy_s": 3.0, "parse_s": 1.0, "embed_s": 2.0, "wall_s": 2.5, "overlap_saved_s": 0.5}
    gpu = stage_summary({**stages, "devices": ["cuda:0"], "embed_s_by_worker": {"gpu-0": 2.0}})
    assert gpu.endswith("on cuda:0 (embedded by gpu-0 2.0s)")
    assert "embed 2.00s (67%)" in gpu and "overlap saved 0.50s" in gpu
    cpu = stage_summary({**stages, "devices": ["cpu"], "embed_s_by_worker": {"0": 2.0}})
    assert cpu.endswith("on cpu")
