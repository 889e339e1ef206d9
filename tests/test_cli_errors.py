"""Bad input gets a one-line message, a hint and a distinct exit code; never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from codeindex.errors import ExitCode
from tests.helpers import interpreter_usable_by

HASHING = ("--embedder", "hashing")


def _no_traceback(proc) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout


def test_help_is_fast_and_imports_no_runtime(cli) -> None:
    import subprocess
    import sys

    code = ("import sys, time; t=time.perf_counter(); from codeindex.cli import main; "
            "rc = main(['--help']); "
            "bad = [m for m in ('torch','onnxruntime','faiss','distributed','sentence_transformers','duckdb') "
            "if m in sys.modules]; print('BAD', bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "BAD []" in out, out


def test_path_that_does_not_exist(cli, tmp_path: Path) -> None:
    proc = cli("rebuild", str(tmp_path / "nope"))
    assert proc.returncode == ExitCode.USAGE
    assert "does not exist" in proc.stderr and "hint:" in proc.stderr
    _no_traceback(proc)


def test_search_before_any_index(cli, tmp_path: Path) -> None:
    proc = cli("search", "anything", "--root", str(tmp_path))
    assert proc.returncode == ExitCode.NOT_INDEXED
    assert "no index" in proc.stderr and "codeindex rebuild" in proc.stderr
    _no_traceback(proc)


def test_status_before_any_index(cli, tmp_path: Path) -> None:
    proc = cli("status", str(tmp_path), "--json")
    assert proc.returncode == ExitCode.NOT_INDEXED
    _no_traceback(proc)


@pytest.mark.slow
def test_corrupted_database(cli, scenario) -> None:
    root = scenario("e2e_repo")
    assert cli("-q", "rebuild", str(root), *HASHING).returncode == 0
    db = root / ".codeindex" / "meta.duckdb"
    db.write_bytes(b"this is not a duckdb file" * 100)
    for args in (("search", "distance", "--root", str(root)), ("status", str(root)), ("update", str(root))):
        proc = cli(*args)
        assert proc.returncode == ExitCode.CORRUPT, (args, proc.stderr)
        assert "rebuild" in proc.stderr
        _no_traceback(proc)
    # a rebuild recovers
    assert cli("-q", "rebuild", str(root), *HASHING).returncode == 0
    assert cli("search", "distance", "--root", str(root)).returncode == 0


def test_newer_schema_version(cli, scenario) -> None:
    import duckdb

    root = scenario("e2e_repo")
    assert cli("-q", "rebuild", str(root), *HASHING).returncode == 0
    con = duckdb.connect(str(root / ".codeindex" / "meta.duckdb"))
    con.execute("UPDATE meta SET v = '999' WHERE k = 'schema_version'")
    con.close()
    proc = cli("search", "distance", "--root", str(root))
    assert proc.returncode == ExitCode.CORRUPT
    assert "schema version 999" in proc.stderr and "upgrade codeindex" in proc.stderr
    _no_traceback(proc)


@pytest.mark.skipif(shutil.which("setpriv") is None and os.geteuid() == 0,
                    reason="running as root without setpriv: root reads files whatever their mode")
def test_unreadable_file_is_skipped_and_counted(cli, scenario, tmp_path: Path) -> None:
    root = scenario("e2e_repo")
    user = None
    env: dict[str, str] = {}
    if os.geteuid() == 0:  # root reads anything: run the CLI as nobody, the file owned by root
        user = 65534
        if (why := interpreter_usable_by(user)) is not None:
            pytest.skip(why)
        base = Path(tempfile.mkdtemp(prefix="codeindex-unreadable-"))
        base.chmod(0o755)
        root = Path(shutil.copytree(root, base / "e2e_repo"))
        (base / "cache").mkdir()
        for p in [base, *base.rglob("*")]:
            os.chown(p, user, user)
        env = {"XDG_CACHE_HOME": str(base / "cache"), "HOME": str(base)}
    secret = root / "util" / "secret.py"
    secret.write_text("def hidden():\n    return 42\n")
    if user is not None:
        os.chown(secret, 0, 0)
    secret.chmod(0)
    try:
        proc = cli("rebuild", str(root), *HASHING, "--json", env=env, user=user)
        _no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["files_unreadable"] == 1
        assert report["skipped"].get("unreadable") == 1
        proc = cli("search", "hidden", "--root", str(root), "--json", "--mode", "lexical", env=env, user=user)
        assert proc.returncode == 0, proc.stderr
        assert all(r["path"] != "util/secret.py" for r in json.loads(proc.stdout)["results"])
    finally:
        if user is not None:
            shutil.rmtree(root.parent, ignore_errors=True)


def test_second_writer_is_refused_clearly(cli, scenario) -> None:
    import fcntl

    root = scenario("e2e_repo")
    assert cli("-q", "rebuild", str(root), *HASHING).returncode == 0
    lock = root / ".codeindex" / "lock"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, json.dumps({"pid": 4242, "host": "elsewhere", "since": time.time()}).encode(), 0)
        proc = cli("update", str(root))
        assert proc.returncode == ExitCode.LOCKED
        assert "locked by pid 4242" in proc.stderr
        _no_traceback(proc)
    finally:
        os.close(fd)


def test_unknown_embedder_and_mode(cli, scenario) -> None:
    root = scenario("e2e_repo")
    proc = cli("rebuild", str(root), "--embedder", "nope")
    assert proc.returncode == ExitCode.USAGE and "unknown embedder backend 'nope'" in proc.stderr
    _no_traceback(proc)
    proc = cli("search", "x", "--mode", "fuzzy", "--root", str(root))
    assert proc.returncode == ExitCode.USAGE
    _no_traceback(proc)
