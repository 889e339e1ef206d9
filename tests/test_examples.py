"""Every script in examples/ runs, as a user would run it, on a copy of the e2e scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = {"CODEINDEX_EMBEDDER__BACKEND": "hashing"}
"""The scripts use the configured embedder; the tests configure the hashing one (no model load)."""


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, **FAST, **(env or {})})


def test_every_example_has_a_test() -> None:
    source = Path(__file__).read_text()
    for script in EXAMPLES.glob("*.py"):
        assert f'"{script.name}"' in source, f"examples/{script.name} is not run by tests/test_examples.py"


def test_index_and_search(scenario) -> None:
    root = scenario("e2e_repo")
    proc = _run("index_and_search.py", str(root), "great circle distance between two points")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("rebuild: 5 files indexed")
    assert any(line.startswith("geo/distance.py:") for line in lines[1:6])
    assert "why is README.md" in lines[-1] and "indexed as markdown" in lines[-1]
    again = _run("index_and_search.py", str(root), "haversine")
    assert again.stdout.startswith("update: 5 files indexed, 0 chunks embedded")


def test_custom_embedder(scenario) -> None:
    root = scenario("e2e_repo")
    proc = _run("custom_embedder.py", str(root), "haversine distance")
    assert proc.returncode == 0, proc.stderr
    assert "with trigram (trigram-v1-256)" in proc.stdout
    status = json.loads(subprocess.run([sys.executable, "-m", "codeindex.cli", "status", str(root), "--no-stale",
                                        "--json"], capture_output=True, text=True, check=True).stdout)
    assert status["model_id"] == "trigram-v1-256"


@pytest.mark.slow
@pytest.mark.cluster
def test_dask_cluster(scenario) -> None:
    root = scenario("e2e_repo")
    proc = _run("dask_cluster.py", str(root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("rebuild on tcp://127.0.0.1:") and "5 files" in proc.stdout


def test_http_search(scenario) -> None:
    root = scenario("e2e_repo")
    server = subprocess.Popen([sys.executable, str(EXAMPLES / "http_search.py"), str(root), "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **FAST})
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("serving "), server.stderr.read() if server.stderr else line
        base = line.split(" on ", 1)[1].split("/search", 1)[0]
        with urllib.request.urlopen(f"{base}/search?q=haversine&k=2", timeout=60) as reply:
            body = json.loads(reply.read())
        assert len(body["results"]) == 2 and body["results"][0]["path"] == "geo/distance.py"
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(f"{base}/search?q=x&k=0", timeout=60)
        with bad.value as error:
            assert error.code == 400 and "k must be at least 1" in json.loads(error.read())["error"]
    finally:
        server.terminate()
        server.communicate(timeout=30)
