"""Reading a discovered file: never follow a symlink swapped in, never block on a FIFO, never read past
the cap, never read another file than the one discovery saw."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codeindex.changes.discovery import discover
from codeindex.changes.read import CHANGED_TYPE, NOT_REGULAR, TOO_LARGE, ReadSkip, read_source
from codeindex.changes.scan import scan


def _one(root: Path, name: str, text: str = "print('hello')\n"):
    (root / name).write_text(text)
    (found,) = [f for f in discover(root, lambda p: "python", max_file_bytes=1 << 20).files if f.path == name]
    return found


def _reason(root: Path, found, cap: int = 1 << 20) -> str:
    with pytest.raises(ReadSkip) as info:
        read_source(str(root), found, cap)
    return info.value.reason


def test_reads_the_file_discovery_saw(tmp_path: Path) -> None:
    found = _one(tmp_path, "a.py")
    assert read_source(str(tmp_path), found, 1 << 20) == b"print('hello')\n"


@pytest.mark.timeout(30)
def test_a_fifo_swapped_in_is_refused_without_blocking(tmp_path: Path) -> None:
    found = _one(tmp_path, "a.py")
    os.unlink(tmp_path / "a.py")
    os.mkfifo(tmp_path / "a.py")  # no writer: a plain open() would wait forever
    assert _reason(tmp_path, found) == NOT_REGULAR


def test_a_symlink_swapped_in_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret outside the root")
    root = tmp_path / "root"
    root.mkdir()
    found = _one(root, "a.py")
    os.unlink(root / "a.py")
    os.symlink(outside, root / "a.py")
    assert _reason(root, found) == CHANGED_TYPE


def test_another_file_at_the_path_is_refused(tmp_path: Path) -> None:
    found = _one(tmp_path, "a.py")
    (tmp_path / "b.py").write_text("other")
    os.replace(tmp_path / "b.py", tmp_path / "a.py")  # a new inode, as a directory swap would give
    assert _reason(tmp_path, found) == CHANGED_TYPE


def test_a_folder_swapped_in_above_is_caught_by_the_inode(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "pkg").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "a.py").write_text("outside content")
    (root / "pkg" / "a.py").write_text("inside")
    (found,) = discover(root, lambda p: "python", max_file_bytes=1 << 20).files
    os.rename(root / "pkg", tmp_path / "old-pkg")
    os.symlink(outside, root / "pkg")  # O_NOFOLLOW guards the last component only: the inode check the rest
    assert _reason(root, found) == CHANGED_TYPE


def test_a_file_grown_past_the_cap_is_too_large(tmp_path: Path) -> None:
    found = _one(tmp_path, "a.py", "x = 1\n")
    with open(tmp_path / "a.py", "a") as fh:
        fh.write("y = 2\n" * 2000)
    assert _reason(tmp_path, found, cap=4096) == TOO_LARGE


def test_the_scan_records_refusals_as_unreadable_with_their_reason(tmp_path: Path) -> None:
    a, b, c = (_one(tmp_path, n) for n in ("a.py", "b.py", "c.py"))
    os.unlink(tmp_path / "a.py")
    os.mkfifo(tmp_path / "a.py")
    os.unlink(tmp_path / "b.py")
    os.symlink("/etc/hostname", tmp_path / "b.py")
    result = scan(tmp_path, [a, b, c], {}, 0, threads=1)
    assert result.unreadable == {"a.py": NOT_REGULAR, "b.py": CHANGED_TYPE}
    assert list(result.hashes) == ["c.py"]
