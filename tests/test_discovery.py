"""Discovery: ignore precedence, default excludes, symlinks, and agreement with git itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from codeindex.changes.discovery import discover

SCENARIOS = Path(__file__).parent / "scenarios"


def everything_text(path: str) -> str | None:
    return "text"


def copy_scenario(name: str, dest: Path) -> Path:
    """Copy a scenario, renaming ``dot-x`` to ``.x`` and ``plain-x`` to ``x``.

    The stored names keep the scenario's ignore files and build dirs from acting on this repository's git.
    """
    src = SCENARIOS / name
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        parts = []
        for part in path.relative_to(src).parts:
            if part.startswith("dot-"):
                part = "." + part[len("dot-") :]
            elif part.startswith("plain-"):
                part = part[len("plain-") :]
            parts.append(part)
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return dest


def paths(root: Path, **kwargs: object) -> list[str]:
    return [f.path for f in discover(root, everything_text, max_file_bytes=1 << 20, **kwargs).files]  # type: ignore[arg-type]


def test_nested_ignores_scenario_matches_golden_list(tmp_path: Path) -> None:
    root = copy_scenario("nested_ignores", tmp_path / "repo")
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "info" / "exclude").write_text("excluded_by_info/\n")
    expected = (SCENARIOS / "nested_ignores.expected").read_text().split()

    found = discover(root, everything_text, max_file_bytes=1 << 20)

    assert [f.path for f in found.files] == expected
    assert found.skipped["binary-extension"] == 1
    assert set(found.skipped_examples["default-exclude"]) == {
        ".git/", ".venv/", "myenv/", "build/", "node_modules/", "package-lock.json",
        "static/app.min.js", "static/app.js.map", "src/__pycache__/",
    }
    assert "src/vendor/" in found.skipped_examples["ignored"]
    assert "excluded_by_info/" in found.skipped_examples["ignored"]


def test_stat_comes_from_the_walk(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (only,) = discover(tmp_path, everything_text, max_file_bytes=100).files
    st = os.stat(tmp_path / "a.py")
    assert (only.stat.size, only.stat.mtime_ns, only.stat.inode, only.stat.ctime_ns) == (
        st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    assert only.language == "text"


def test_size_cap_language_filter_and_exclude(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_bytes(b"x" * 101)
    (tmp_path / "ok.py").write_bytes(b"x" * 100)
    (tmp_path / "skip.xyz").write_text("?")
    (tmp_path / ".codeindex").mkdir()
    (tmp_path / ".codeindex" / "meta.txt").write_text("index files")
    found = discover(tmp_path, lambda p: None if p.endswith(".xyz") else "python", max_file_bytes=100)
    assert [f.path for f in found.files] == ["ok.py"]
    assert found.skipped == {"too-large": 1, "no-language": 1}


def test_negation_overrides_default_exclude(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "gen.py").write_text("")
    assert paths(tmp_path) == ["pyproject.toml"]
    (tmp_path / ".codeindexignore").write_text("!build/\n")
    assert paths(tmp_path) == [".codeindexignore", "build/gen.py", "pyproject.toml"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "pkg").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.py").write_text("outside")
    (root / "pkg" / "real.py").write_text("inside")
    os.symlink(root / "pkg" / "real.py", root / "alias.py")
    os.symlink(outside / "secret.py", root / "escape.py")
    os.symlink(outside, root / "escape_dir")
    os.symlink(root / "pkg", root / "pkg_link")
    os.symlink(root, root / "pkg" / "loop_dir")
    os.symlink("self.py", root / "self.py")
    os.symlink("missing.py", root / "dangling.py")

    found = discover(root, everything_text, max_file_bytes=1 << 20)

    assert [f.path for f in found.files] == ["alias.py", "pkg/real.py"]
    alias, real = found.files
    assert alias.stat == real.stat  # the link is indexed with its target's stat, so edits are seen
    assert found.skipped == {"symlink-outside-root": 2, "symlink-dir": 2, "symlink-loop": 1,
                             "symlink-broken": 1}


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_directory_is_counted(tmp_path: Path) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.py").write_text("")
    (tmp_path / "b.py").write_text("")
    (tmp_path / "locked").chmod(0)
    try:
        found = discover(tmp_path, everything_text, max_file_bytes=1 << 20)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert [f.path for f in found.files] == ["b.py"]
    assert found.skipped == {"unreadable": 1}


# Patterns chosen to exercise anchoring, dir-only rules, **, character classes, escapes and negation.
GIT_CROSSCHECK_IGNORES = {
    ".gitignore": "*.tmp\n!keep.tmp\n/top_only.txt\nlogs/\na/**/deep.txt\n**/gen_*\n[ab]?.cfg\n"
                  "\\#hash.txt\nname with space.txt\ntrail.txt   \nsub/x/\n!important/\nimportant/*.c\n",
    "sub/.gitignore": "!*.tmp\nlocal_*\n/anchored.txt\n*.c\n!keep.c\n",
    "sub/x/.gitignore": "!reinclude_me.txt\n",
    "other/.gitignore": "*\n!*/\n!*.py\n",
}
GIT_CROSSCHECK_FILES = [
    "a.tmp", "keep.tmp", "top_only.txt", "sub/top_only.txt", "logs/l.txt", "sub/logs/l.txt", "logs.txt",
    "a/deep.txt", "a/b/c/deep.txt", "b/deep.txt", "gen_x.py", "sub/gen_y.py", "ab.cfg", "bb.cfg", "cb.cfg",
    "abc.cfg", "#hash.txt", "name with space.txt", "trail.txt", "sub/x/reinclude_me.txt", "sub/x/y.txt",
    "sub/z.tmp", "sub/local_a.py", "sub/deeper/local_b.py", "sub/anchored.txt", "sub/deeper/anchored.txt",
    "sub/a.c", "sub/keep.c", "important/main.c", "important/main.h", "other/a.py", "other/b.txt",
    "other/inner/c.py", "other/inner/d.md", "plain.py",
]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_agrees_with_git_ls_files(tmp_path: Path) -> None:
    for rel, text in GIT_CROSSCHECK_IGNORES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for rel in GIT_CROSSCHECK_FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".git" / "info" / "exclude").write_text("*.c\n")
    listed = subprocess.run(["git", "-C", str(tmp_path), "ls-files", "--others", "--exclude-standard", "-z"],
                            check=True, capture_output=True, text=True).stdout.split("\0")
    expected = sorted(p for p in listed if p)
    assert len(expected) > 10  # the check means something only if git kept a fair share
    assert paths(tmp_path) == expected
