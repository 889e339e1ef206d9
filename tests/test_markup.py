"""Every path and value the CLI renders is text, never Rich markup: ``mk[/]up`` is a folder name, and a
run report keeps its ``[scheduler, embedder]`` suffix."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from codeindex import render
from codeindex.store.integrity import Problem, VerifyReport

SCENARIO = Path(__file__).parent / "scenarios" / "e2e_repo"
NASTY = "mk[/]up [bold]x[/bold] [red]"


def _console() -> Console:
    return Console(record=True, width=400, color_system=None, soft_wrap=True)


@pytest.mark.slow
def test_status_and_report_of_a_tree_whose_name_looks_like_markup(cli, tmp_path: Path) -> None:
    root = tmp_path / "mk[/]up"
    shutil.copytree(SCENARIO, root)
    proc = cli("rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync")
    assert proc.returncode == 0, proc.stderr
    assert "[sync, hashing]" in proc.stdout
    status = cli("status", str(root))
    assert status.returncode == 0, status.stderr
    assert f"{root} index at {root}/.codeindex" in status.stdout
    verify = cli("verify", str(root))
    assert verify.returncode == 0 and str(root) in verify.stdout


def _report(**extra: object) -> SimpleNamespace:
    fields = dict(kind="update", files_seen=3, files_indexed=2, files_added=1, files_modified=0, files_deleted=0,
                  files_moved=0,
                  files_reparsed=0, files_skipped=1, chunks_total=5, chunks_written=2, chunks_embedded=2,
                  chunks_reused=0, wall_s=0.5, scheduler="tcp://[::1]:8786", embedder="hash[ing]",
                  stages={"busy_s": 1.0, "parse_s": 1.0, "devices": ["cuda[0]"]},
                  skipped={"parse-error": 1}, warnings=[f"plugin {NASTY} failed"], repairs=[f"rebuilt {NASTY}"])
    fields.update(extra)
    return SimpleNamespace(**fields)


def test_run_report_values_are_printed_as_they_are() -> None:
    console = _console()
    render.print_report(console, _report())
    out = console.export_text()
    assert "[tcp://[::1]:8786, hash[ing]]" in out
    assert f"plugin {NASTY} failed" in out and f"repaired: rebuilt {NASTY}" in out
    assert "on cuda[0]" in out


def test_status_values_are_printed_as_they_are() -> None:
    info = {"root": f"/src/{NASTY}", "index_dir": f"/src/{NASTY}/.codeindex", "files": 1, "files_skipped": 1,
            "files_seen": 2,
            "chunks": 2, "vectors": 2, "dead_vectors": 0, "segments": [], "index_bytes": 10, "embedder": "e[x]",
            "embedder_kind": "k", "model_id": "m[/]", "last_run": None, "stale": {"added": 1},
            "skipped_by_reason": {"[weird]": 1}, "parse_failures": 1,
            "failed": [{"path": f"{NASTY}.py", "reason": "parse-error: p: [/] unbalanced"}],
            "integrity": {"check": "quick", "segments_checked": 0}}
    console = _console()
    render.print_status(console, info)
    out = console.export_text()
    assert f"/src/{NASTY} index at /src/{NASTY}/.codeindex" in out
    assert "model m[/]" in out and "[weird] 1" in out
    assert f"{NASTY}.py: parse-error: p: [/] unbalanced" in out


def test_verify_plan_and_plugins_values_are_printed_as_they_are() -> None:
    report = VerifyReport(f"/x/{NASTY}", [Problem(f"segment {NASTY}", "missing [/]", True, "segment-missing")])
    console = _console()
    render.print_verify(console, report)
    render.print_plugins(console, [{"name": "p[/]", "package": "pkg[x]", "version": "1[/]", "builtin": False,
                                    "provides": [f"lang {NASTY}"]}], [f"warn {NASTY}"])
    plan = SimpleNamespace(files_seen=1, unchanged=0, by_language={"c[/]": {"add": 1}}, added=["c[/].c"],
                           modified=[], reparse=[], deleted=[], moved=[],
                           model_change=f"a -> {NASTY}", estimated_seconds=None, estimated_chunks=1,
                           estimated_tokens=1)
    render.print_plan(console, plan)
    out = console.export_text()
    for text in (f"/x/{NASTY}", f"segment {NASTY}: missing [/]", "p[/]", "pkg[x]", f"lang {NASTY}",
                 f"warn {NASTY}", "c[/]", f"a -> {NASTY}"):
        assert text in out, text


def test_progress_warnings_are_printed_as_they_are() -> None:
    renderer = render.ProgressRenderer(enabled=False)
    renderer.console = _console()
    from codeindex.progress import ProgressEvent

    with renderer:
        renderer(ProgressEvent("warning", detail={"message": f"odd {NASTY}"}))
    assert f"warning: odd {NASTY}" in renderer.console.export_text()
