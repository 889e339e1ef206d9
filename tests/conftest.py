"""Shared fixtures: scenario folders copied into tmp_path, and the CLI run as a real process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import run_cli

SCENARIOS = Path(__file__).parent / "scenarios"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# No property test has a deadline: hypothesis's default 200 ms per example is a timed assertion, and
# on a loaded 2-core CI machine it fails examples that are correct (seen on test_merkle's properties).
settings.register_profile("codeindex", deadline=None)
settings.load_profile("codeindex")


@pytest.fixture
def scenario(tmp_path: Path):
    """Copy ``tests/scenarios/<name>`` into a fresh temporary directory and return its path."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(SCENARIOS / name, target)
        return target

    return copy


@pytest.fixture
def cli():
    return run_cli


def corpus_dir() -> Path | None:
    value = os.environ.get("CODEINDEX_TEST_CORPUS")
    return Path(value) if value and Path(value).is_dir() else None


NOTEBOOKS_PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "codeindex-notebooks"


@pytest.fixture(scope="session")
def notebooks_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin package really installed (pip, offline) into a directory to put on PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                    "--target", str(target), str(NOTEBOOKS_PLUGIN)], check=True, cwd=build,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"})
    return target
