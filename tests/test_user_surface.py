"""The user's surface: CLI conventions, validation, files/why, counts, JSON, the Python API (issue 20).

Each test is one complaint a new user had; all run the real CLI process with the hashing embedder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeindex.errors import ExitCode

HASHING = ("--embedder", "hashing")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def indexed(cli, scenario) -> Path:
    root = scenario("e2e_repo")
    proc = cli("-q", "rebuild", str(root), *HASHING)
    assert proc.returncode == 0, proc.stderr
    return root


def _json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def _results(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    """Search hits from ``search --json``, also from the bare list older versions printed, so that a
    filter test fails on the filter, not on the envelope."""
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    return data["results"] if isinstance(data, dict) else data


# ---------------------------------------------------------------- finding the index, options, PATH


def test_commands_find_the_index_from_a_subdirectory(cli, indexed: Path) -> None:
    sub = indexed / "geo"
    found = _json(cli("search", "haversine_km", "--mode", "lexical", "--json", cwd=sub))
    assert found["index"]["root"] == str(indexed)
    assert found["results"][0]["path"] == "geo/distance.py"  # whole index: the cwd does not narrow it
    assert _json(cli("status", "--json", cwd=sub))["root"] == str(indexed)
    (indexed / "util" / "new.py").write_text("def fresh():\n    return 1\n")
    report = _json(cli("update", "--json", cwd=sub))
    assert report["changes"]["added"] == ["util/new.py"]
    assert not (sub / ".codeindex").exists()  # no second index was built at the subdirectory


def test_search_path_argument_naming_a_subfolder_narrows_results(cli, indexed: Path) -> None:
    data = _json(cli("search", "request client", str(indexed / "web"), "--json", "-k", "20"))
    assert data["results"] and {r["path"].split("/")[0] for r in data["results"]} == {"web"}
    whole = _json(cli("search", "request client", str(indexed), "--json", "-k", "20"))
    assert {r["path"].split("/")[0] for r in whole["results"]} > {"web"}


def test_global_options_after_the_subcommand(cli, indexed: Path) -> None:
    (indexed / "util" / "text.py").write_text("def shout(s):\n    return s.upper()\n")
    proc = cli("update", str(indexed), "-v")
    assert proc.returncode == 0, proc.stderr
    assert "~ util/text.py" in proc.stdout  # -v lists the changed files
    proc = cli("update", str(indexed), "-q")
    assert proc.returncode == 0 and proc.stdout == ""
    proc = cli("status", "--index-dir", str(indexed / ".codeindex"), str(indexed), "--json")
    assert _json(proc)["files"] == 5


def test_path_is_positional_everywhere_and_root_is_an_alias(cli, indexed: Path) -> None:
    assert _json(cli("search", "haversine_km", str(indexed), "--json"))["results"]
    assert _json(cli("status", "--root", str(indexed), "--json"))["files"] == 5
    assert _json(cli("files", "--root", str(indexed), "--json"))["files"]
    proc = cli("status", str(indexed), "--root", str(indexed / "geo"))
    assert proc.returncode == ExitCode.USAGE and "different trees" in proc.stderr


def test_compact_json(cli, indexed: Path) -> None:
    (indexed / "extra.py").write_text("def extra():\n    return 1\n")
    assert cli("-q", "update", str(indexed)).returncode == 0
    data = _json(cli("compact", str(indexed), "--json"))
    assert data["command"] == "compact" and data["segments_before"] == 2 and data["segments_after"] == 1


# ---------------------------------------------------------------- validation


def test_unknown_language_is_an_error_listing_the_valid_ones(cli, indexed: Path) -> None:
    proc = cli("search", "x", "--root", str(indexed), "--lang", "pyhton")
    assert proc.returncode == ExitCode.USAGE
    assert "pyhton" in proc.stderr and "did you mean python" in proc.stderr and "go, javascript" in proc.stderr
    # a language a parser knows but this index has none of is an honest "no results"
    assert _results(cli("search", "x", "--root", str(indexed), "--lang", "rust", "--json")) == []


def test_unknown_kind_is_an_error_listing_the_valid_ones(cli, indexed: Path) -> None:
    proc = cli("search", "x", "--root", str(indexed), "--kind", "fucntion")
    assert proc.returncode == ExitCode.USAGE
    assert "did you mean function" in proc.stderr and "class" in proc.stderr


def test_path_filter_naming_a_directory_means_everything_under_it(cli, indexed: Path) -> None:
    for pattern in ("web", "web/", "./web"):
        hits = _results(cli("search", "request", "--root", str(indexed), "--path", pattern, "--json", "-k", "20"))
        assert {r["path"] for r in hits} == {"web/server.go", "web/query.js"}, pattern
    hits = _results(cli("search", "request", "--root", str(indexed), "--exclude", "web", "--json", "-k", "20"))
    assert hits and not any(r["path"].startswith("web/") for r in hits)


def test_k_must_be_at_least_one(cli, indexed: Path) -> None:
    for k in ("0", "-1"):
        proc = cli("search", "haversine", "--root", str(indexed), "-k", k)
        assert proc.returncode == ExitCode.USAGE, (k, proc.stdout)


def test_api_validates_k_and_refuses_strings_for_lists(indexed: Path) -> None:
    from codeindex import Index
    from codeindex.errors import UsageError

    with Index(indexed) as index:
        with pytest.raises(UsageError, match="k must be at least 1"):
            index.search("haversine", k=0)
        with pytest.raises(UsageError, match=r"languages must be a list of strings.*\['python'\]"):
            index.search("haversine", languages="python")  # type: ignore[arg-type]
        assert index.search("haversine", languages=["python"], k=1)


# ---------------------------------------------------------------- the index folder, files and why


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_index_folder_ignores_itself(cli, scenario) -> None:
    root = scenario("e2e_repo")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    assert cli("-q", "rebuild", str(root), *HASHING).returncode == 0
    status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=all"],
                            capture_output=True, text=True, check=True).stdout
    assert ".codeindex" not in status and "geo/distance.py" in status
    assert (root / ".codeindex" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_why_names_the_ignore_rule_with_file_and_line(cli, scenario) -> None:
    root = scenario("e2e_repo")
    (root / "web" / ".gitignore").write_text("# generated\n*.gen.js\n")
    (root / "web" / "client.gen.js").write_text("var x = 1;\n")
    (root / "vendor").mkdir()
    (root / "vendor" / "lib.py").write_text("x = 1\n")
    (root / ".codeindexignore").write_text("vendor/\n")
    assert cli("-q", "rebuild", str(root), *HASHING).returncode == 0
    data = _json(cli("why", "client.gen.js", "--json", cwd=root / "web"))
    assert data["state"] == "skipped" and data["reason"] == "ignored"
    assert data["detail"] == "web/.gitignore:2: *.gen.js"
    data = _json(cli("why", str(root / "vendor" / "lib.py"), "--json"))
    assert data["reason"] == "ignored" and data["via"] == "vendor/" and data["detail"] == ".codeindexignore:1: vendor/"
    proc = cli("why", "geo/distance.py", cwd=root)
    assert proc.returncode == 0 and "indexed as python" in proc.stdout


def test_why_gives_the_stored_parse_error_and_new_files(cli, indexed: Path) -> None:
    (indexed / "util" / "blob.py").write_bytes(b"\x00\x01binary")
    assert cli("-q", "update", str(indexed)).returncode == 0
    data = _json(cli("why", str(indexed / "util" / "blob.py"), "--json"))
    assert data["state"] == "skipped" and data["reason"] == "binary" and not data["indexed"]
    (indexed / "util" / "later.py").write_text("def later():\n    return 2\n")
    data = _json(cli("why", str(indexed / "util" / "later.py"), "--json"))
    assert data["state"] == "pending" and "codeindex update" in data["explanation"]
    assert _json(cli("why", str(indexed / "nope.py"), "--json"))["state"] == "missing"


def test_parse_error_message_is_kept_for_why(indexed: Path) -> None:
    """The parser's own message reaches `why` (stored in files.skip_reason after the reason)."""
    import duckdb

    from codeindex import Index

    con = duckdb.connect(str(indexed / ".codeindex" / "meta.duckdb"))
    con.execute("UPDATE files SET skip_reason = 'parse-error: treesitter: ValueError: bad byte at 7' "
                "WHERE path = 'util/text.py'")
    con.close()
    report = Index(indexed).why("util/text.py")
    assert (report.state, report.reason, report.detail) == ("skipped", "parse-error",
                                                            "treesitter: ValueError: bad byte at 7")


def test_files_lists_indexed_and_skipped_with_reasons(cli, indexed: Path) -> None:
    (indexed / "package-lock.json").write_text("{}\n")
    (indexed / "logo.png").write_bytes(b"\x89PNG")
    assert cli("-q", "update", str(indexed)).returncode == 0
    listed = [r["path"] for r in _json(cli("files", str(indexed), "--json"))["files"]]
    assert listed == ["README.md", "geo/distance.py", "util/text.py", "web/query.js", "web/server.go"]
    skipped = {r["path"]: r["reason"] for r in _json(cli("files", str(indexed), "--skipped", "--json"))["files"]}
    assert skipped == {"package-lock.json": "default-exclude", "logo.png": "binary-extension"}
    only = _json(cli("files", str(indexed), "--reason", "binary-extension", "--json"))["files"]
    assert [r["path"] for r in only] == ["logo.png"]
    proc = cli("files", str(indexed), "--reason", "nonsense")
    assert proc.returncode == ExitCode.USAGE and "binary-extension" in proc.stderr
    proc = cli("files", str(indexed / "web"))
    assert proc.stdout.split() == ["web/query.js", "web/server.go"]


# ---------------------------------------------------------------- run output and counts


def test_update_names_changed_files_in_json_and_with_v(cli, indexed: Path) -> None:
    (indexed / "util" / "text.py").write_text("def shout(s):\n    return s.upper()\n")
    (indexed / "geo" / "distance.py").rename(indexed / "geo" / "dist.py")
    (indexed / "README.md").unlink()
    (indexed / "new.py").write_text("def fresh():\n    return 1\n")
    report = _json(cli("update", str(indexed), "--json"))
    assert report["changes"]["added"] == ["new.py"]
    assert report["changes"]["modified"] == ["util/text.py"]
    assert report["changes"]["deleted"] == ["README.md"]
    assert report["changes"]["moved"] == [["geo/distance.py", "geo/dist.py"]]
    (indexed / "new.py").unlink()
    proc = cli("-v", "update", str(indexed))
    assert "- new.py" in proc.stdout


def test_file_counts_agree_between_run_report_and_status(cli, indexed: Path) -> None:
    (indexed / "util" / "blob.py").write_bytes(b"\x00binary")  # skipped when read
    (indexed / "logo.png").write_bytes(b"\x89PNG")  # skipped by discovery
    report = _json(cli("update", str(indexed), "--json"))
    status = _json(cli("status", str(indexed), "--json"))
    assert report["files_seen"] == report["files_indexed"] + report["files_skipped"]
    assert report["files_skipped"] == sum(report["skipped"].values())
    assert (status["files_seen"], status["files"], status["files_skipped"]) == (
        report["files_seen"], report["files_indexed"], report["files_skipped"])
    assert status["skipped_by_reason"] == report["skipped"] == {"binary": 1, "binary-extension": 1}
    human = cli("status", str(indexed)).stdout
    assert f"files {report['files_seen']} seen: {report['files_indexed']} indexed, 2 skipped" in human
    assert "in 1 segment," in human and "1 segments" not in human


def test_timestamps_are_iso_8601_utc(cli, indexed: Path) -> None:
    started = _json(cli("status", str(indexed), "--json"))["last_run"]["started_at"]
    assert ISO_UTC.match(started), started
    assert started in cli("status", str(indexed)).stdout


def test_waiting_for_the_lock_says_who_holds_it(cli, indexed: Path, tmp_path: Path) -> None:
    marker = tmp_path / "held"
    code = ("import sys, time; from pathlib import Path; from codeindex.store.lock import writer_lock\n"
            f"with writer_lock(Path({str(indexed / '.codeindex')!r})):\n"
            f"    Path({str(marker)!r}).touch(); time.sleep(2.5)\n")
    holder = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc = cli("update", str(indexed), "--wait")
    finally:
        holder.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"held by pid {holder.pid} on " in proc.stderr


def test_library_logging_is_quiet_and_v_adds_no_dependency_noise(cli, indexed: Path) -> None:
    code = "import logging, codeindex; logging.getLogger('codeindex.x').warning('library noise')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr == ""
    proc = cli("search", "haversine", str(indexed), "-v", "--mode", "vector")
    assert proc.returncode == 0 and "faiss" not in proc.stderr.lower()


# ---------------------------------------------------------------- configuration


def test_config_reports_every_problem_with_its_file_and_line(cli, indexed: Path) -> None:
    (indexed / ".codeindex.toml").write_text('[embedder]\nbatch_tokens = "lots"\n\n[search]\nk = 0\nmodes = 1\n')
    proc = cli("search", "x", str(indexed), env={"CODEINDEX_ENGINE__WORKERS": "many"})
    assert proc.returncode == ExitCode.USAGE
    toml = indexed / ".codeindex.toml"
    assert f"{toml}:2: setting embedder.batch_tokens: expected int" in proc.stderr
    assert f"{toml}:5: setting search.k: must be at least 1" in proc.stderr
    assert f"{toml}:6: unknown setting 'search.modes' (did you mean search.mode?)" in proc.stderr
    assert "env CODEINDEX_ENGINE__WORKERS: setting engine.workers: expected int" in proc.stderr
    proc = cli("config", str(indexed), "--json")
    assert proc.returncode == ExitCode.USAGE  # still a diagnosis: every setting and every problem
    data = json.loads(proc.stdout)
    assert len(data["errors"]) == 3 and {r["name"] for r in data["settings"]} >= {"search.k"}


def test_config_toml_syntax_error_names_the_line(cli, indexed: Path) -> None:
    (indexed / ".codeindex.toml").write_text('[search]\nk = 3\nmode = "hybrid\n')
    proc = cli("config", str(indexed))
    assert proc.returncode == ExitCode.USAGE
    assert f"{indexed / '.codeindex.toml'}:3: not valid TOML" in proc.stderr


def test_unknown_env_variable_is_warned_not_ignored(cli, indexed: Path) -> None:
    proc = cli("status", str(indexed), env={"CODEINDEX_SERACH__K": "3"})
    assert proc.returncode == 0
    assert "unknown environment variable CODEINDEX_SERACH__K" in proc.stderr


def test_broken_pyproject_without_our_section_is_only_a_warning(cli, indexed: Path) -> None:
    (indexed / "pyproject.toml").write_text("[project\nname = 'x'\n")
    proc = cli("status", str(indexed))
    assert proc.returncode == 0, proc.stderr
    assert "pyproject.toml:1: not valid TOML" in proc.stderr and "ignores it" in proc.stderr
    (indexed / "pyproject.toml").write_text("[tool.codeindex.search]\nk = 3\n[project\n")
    assert cli("status", str(indexed)).returncode == ExitCode.USAGE


def test_unreadable_user_config_is_treated_as_absent(cli, indexed: Path, tmp_path: Path) -> None:
    (tmp_path / "xdg" / "codeindex" / "config.toml").mkdir(parents=True)  # a folder: reading it fails
    proc = cli("status", str(indexed), env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert proc.returncode == 0, proc.stderr
    assert "cannot read" in proc.stderr and "going on without it" in proc.stderr


# ---------------------------------------------------------------- JSON


def test_every_json_output_is_an_object_with_a_schema(cli, indexed: Path) -> None:
    runs = {
        "rebuild": ("rebuild", str(indexed), *HASHING, "--json"),
        "update": ("update", str(indexed), "--json"),
        "plan": ("update", str(indexed), "--plan", "--json"),
        "search": ("search", "haversine", str(indexed), "--json"),
        "status": ("status", str(indexed), "--json"),
        "compact": ("compact", str(indexed), "--json"),
        "plugins": ("plugins", "--json"),
        "config": ("config", str(indexed), "--json"),
        "files": ("files", str(indexed), "--json"),
        "why": ("why", str(indexed / "README.md"), "--json"),
    }
    for command, args in runs.items():
        data = _json(cli(*args))
        assert data["schema"] == 1 and data["command"] == command, args
    search = _json(cli(*runs["search"]))
    assert search["query"] == "haversine" and search["mode"] == "hybrid" and search["k"] == 10
    assert search["index"]["schema_version"] >= 1 and search["index"]["model_id"]


def test_errors_are_json_on_stderr_with_json(cli, tmp_path: Path) -> None:
    proc = cli("status", str(tmp_path), "--json")
    assert proc.returncode == ExitCode.NOT_INDEXED and proc.stdout == ""
    error = json.loads(proc.stderr)
    assert error["schema"] == 1 and error["error"]["exit_code"] == ExitCode.NOT_INDEXED
    assert "no index" in error["error"]["message"] and "rebuild" in error["error"]["hint"]
    proc = cli("search", "x", str(tmp_path), "-k", "0", "--json")
    assert json.loads(proc.stderr)["error"]["exit_code"] == ExitCode.USAGE


# ---------------------------------------------------------------- the Python API


def test_python_api_context_manager_typed_results_and_settings_mapping(indexed: Path) -> None:
    import codeindex
    from codeindex import Index, SearchResult

    with Index(indexed, settings={"search.k": 2, "search.mode": "lexical"}) as index:
        hits = index.search("haversine distance")
        assert len(hits) == 2 and all(isinstance(h, SearchResult) for h in hits)
        assert index.config.source("search.k") == "flag"
        status = index.status()
    assert status["files"] == 5
    assert codeindex.SearchResult is SearchResult and "score" in (SearchResult.__doc__ or "")
    assert (Path(codeindex.__file__).parent / "py.typed").exists()
    from codeindex.config import ConfigError

    with pytest.raises(ConfigError, match=r"did you mean search\.k"):
        Index(indexed, settings={"search.kk": 3})


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mypy") is None and not (Path(sys.executable).parent / "mypy").exists(),
                    reason="needs mypy")
def test_search_is_typed_for_mypy(tmp_path: Path) -> None:
    """``py.typed`` plus annotations: a user's mypy sees ``SearchResult`` fields, not ``Any``."""
    import codeindex

    script = tmp_path / "user.py"
    script.write_text("from codeindex import Index\n"
                      "def first_path(index: Index) -> int:\n"
                      "    return index.search('x')[0].path\n")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
                           str(script)], capture_output=True, text=True, check=False,
                          env={**os.environ, "MYPYPATH": str(Path(codeindex.__file__).resolve().parent.parent)})
    assert 'Incompatible return value type (got "str", expected "int")' in proc.stdout, proc.stdout
