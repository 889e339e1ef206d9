"""The benchmark harness in smoke mode: the figures exist and the correctness checks hold (never timings)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.report import compare, docs_section
from benchmarks.search_quality import first_sentence, python_targets, score, strip_docs
from tests.conftest import corpus_dir

E2E = Path(__file__).parent / "scenarios" / "e2e_repo"


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    corpus = corpus_dir() or E2E
    rc = main(["--smoke", "--corpus", str(corpus), "--json", str(out),
               "--scenarios", "rebuild,noop,rename_dir,delete,search_quality",
               "--workdir", str(tmp_path_factory.mktemp("work"))])
    assert rc == 0
    return json.loads(out.read_text())


@pytest.mark.slow
def test_smoke_figures_present(smoke_results: dict) -> None:
    assert smoke_results["errors"] == {}
    results = smoke_results["results"]
    for name in ("seconds", "files_per_s", "chunks_per_s", "ratio_vs_embed_only", "ratio_sequential_vs_overlap"):
        assert results["rebuild"][name] > 0, name
    assert results["noop"]["ratio_vs_walk"] > 0
    assert len(smoke_results["corpus"]["manifest_sha256"]) == 64
    assert smoke_results["versions"]["python"]


@pytest.mark.slow
def test_smoke_rename_reembeds_nothing_and_moves_paths(smoke_results: dict) -> None:
    rename = smoke_results["results"]["rename_dir"]
    assert rename["reembedded_chunks"] == 0
    assert rename["files_moved"] > 0
    assert rename["hits_under_new_path"] > 0 and rename["hits_under_old_path"] == 0


@pytest.mark.slow
def test_smoke_delete_drops_results(smoke_results: dict) -> None:
    delete = smoke_results["results"]["delete"]
    assert delete["files_deleted"] > 0 and delete["hits_after"] == 0


@pytest.mark.slow
def test_smoke_search_quality_in_range(smoke_results: dict) -> None:
    quality = smoke_results["results"]["search_quality"]
    assert quality["queries"] > 0
    for mode in ("hybrid", "vector", "lexical"):
        assert 0.0 <= quality[f"mrr10_{mode}"] <= 1.0
        assert 0.0 <= quality[f"recall10_{mode}"] <= 1.0
        assert quality[f"mrr10_{mode}"] <= quality[f"recall10_{mode}"]


@pytest.mark.slow
def test_compare_and_docs_from_results(smoke_results: dict, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(smoke_results))
    doubled = json.loads(json.dumps(smoke_results))
    doubled["results"]["rebuild"]["seconds"] *= 2
    b.write_text(json.dumps(doubled))
    line = next(x for x in compare(a, b).splitlines() if x.startswith("rebuild.seconds "))
    assert math.isclose(float(line.split()[-1]), 2.0, rel_tol=1e-3)
    assert "| rebuild | seconds |" in docs_section(smoke_results)


def test_first_sentence() -> None:
    assert first_sentence("Load the file.  More text.\n\nArgs: x") == "Load the file."
    assert first_sentence("Walk the tree\nhonouring ignores.\n@param x") == "Walk the tree honouring ignores."


def test_strip_python_docstring_keeps_code_valid(tmp_path: Path) -> None:
    src = ('def f(x):\n    """Return the double of x here."""\n    return 2 * x\n\n\n'
           'def g():\n    """Only a docstring here."""\n')
    (tmp_path / "m.py").write_text(src)
    targets = list(python_targets("m.py", src))
    assert [t.name for t in targets] == ["f", "g"]
    final = {t.name: t for t in strip_docs(tmp_path, targets)}
    stripped = (tmp_path / "m.py").read_text()
    assert '"""' not in stripped
    compile(stripped, "m.py", "exec")
    lines = stripped.splitlines()
    assert lines[final["f"].start - 1].startswith("def f") and lines[final["f"].end - 1].endswith("return 2 * x")
    assert lines[final["g"].start - 1].startswith("def g") and lines[final["g"].end - 1].strip() == "pass"


def test_score() -> None:
    assert score([1, 2, None, 11]) == (pytest.approx((1 + 0.5) / 4), 0.5)


def test_indexed_tree_is_used_as_is_and_restored(tmp_path: Path) -> None:
    """``--indexed``: edit1 runs on the given index (no rebuild), leaves it up to date, refuses a mismatch."""
    import shutil

    from codeindex import Index

    tree = tmp_path / "tree"
    shutil.copytree(E2E, tree)
    Index(tree).rebuild(scheduler="sync", embedder="hashing")
    runs_before = Index(tree).status()["last_run"]["run_id"]
    out = tmp_path / "indexed.json"
    rc = main(["--corpus", str(E2E), "--indexed", str(tree), "--embedder", "hashing", "--scenarios", "edit1",
               "--repeat", "1", "--json", str(out), "--workdir", str(tmp_path / "work")])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["errors"] == {} and data["results"]["edit1"]["chunks_embedded"] >= 1
    index = Index(tree)
    assert index.status()["last_run"]["run_id"] == runs_before + 2  # the edit, then the restore
    assert not any(index.staleness().values())
    assert not (tmp_path / "work" / "indexed-hashing").exists()  # no copy was indexed
    with pytest.raises(SystemExit, match="built with hashing, not onnx"):
        main(["--corpus", str(E2E), "--indexed", str(tree), "--scenarios", "edit1", "--repeat", "1",
              "--json", str(tmp_path / "x.json"), "--workdir", str(tmp_path / "work2")])


def test_gpu_busy_shares_from_nvidia_smi_lines() -> None:
    from benchmarks.gpu_busy import busy_shares, parse_line

    lines = ["0, 0, 300", "1, 90, 10", "0, 0, 310", "0, 80, 900", "0, 100, 950", "0, 0, 950", "0, 60, 900",
             "0, 0, 400", "0, [N/A], 1", "garbage"]
    samples = [s for i, line in enumerate(lines) if (s := parse_line(line, i * 0.1)) is not None]
    assert len(samples) == 8
    shares = busy_shares(samples, device=0)
    assert shares["gpu_busy_share_run"] == pytest.approx(240 / 700)  # 7 samples of device 0
    assert shares["gpu_busy_share_embed_span"] == pytest.approx(240 / 400)  # samples 80 .. 60
    assert shares["gpu_embed_span_s"] == pytest.approx(0.3)
    assert shares["gpu_peak_memory_mb"] == 950
    assert busy_shares(samples, device=3) == {}


def test_gpu_scenario_says_why_without_a_gpu(tmp_path: Path) -> None:
    from benchmarks.gpu_busy import GpuSampler

    if GpuSampler.available():
        pytest.skip("this host has a GPU: the scenario runs for real in benchmarks/")
    out = tmp_path / "gpu.json"
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_text("def a():\n    return 1\n")
    main(["--scenarios", "gpu", "--corpus", str(tree), "--workdir", str(tmp_path / "work"), "--json", str(out)])
    data = json.loads(out.read_text())
    assert "no GPU on this host" in data["errors"]["gpu"]
    assert "gpu" not in data["results"]
