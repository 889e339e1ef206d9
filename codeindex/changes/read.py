"""Open a discovered file safely and read it whole, or say why not.

Between discovery and a read, anything can happen to a path: it can be swapped for a symlink out of
the root, for a FIFO (an ``open`` that would block forever), for a device, or grow to gigabytes. So
every read of a source file, the scan's and the pipeline's, goes through ``read_source``:

* ``O_NOFOLLOW``: a symlink at the path is not followed (a link discovery accepted is opened at the
  target it resolved to, ``SourceFile.open_path``, which is checked the same way);
* ``O_NONBLOCK``: opening a FIFO or a device returns at once instead of waiting for a writer;
* ``fstat`` of the descriptor: it must be a regular file (``not-regular``), the very file discovery
  saw, same device and inode (``changed-type``; a symlink swapped into a parent folder lands on
  another inode too), and no larger than the cap (``too-large``);
* at most cap + 1 bytes are read, so a file growing while it is read is caught as well.

A refusal raises ``ReadSkip`` with its reason; the run records it as a skip and keeps the file's
previous state, and the next run looks at the file again. (The same file saved by an editor that
writes a new file and renames it over the old one gets a new inode: the next run indexes it.)
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod

from codeindex.models import SourceFile

NOT_REGULAR = "not-regular"
TOO_LARGE = "too-large"
CHANGED_TYPE = "changed-type"
READ_SKIPS = frozenset({NOT_REGULAR, TOO_LARGE, CHANGED_TYPE})
"""Reasons a read refuses a file that discovery accepted."""

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_NOCTTY", 0))  # POSIX flags; elsewhere the fstat checks still apply
_PIECE = 1 << 20


class ReadSkip(Exception):
    """The file cannot be read as the file discovery found; ``reason`` is the recorded skip."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_source(root: str, file: SourceFile, max_bytes: int) -> bytes:
    """The content of ``file`` (under ``root``), checked as the module docstring says.

    Raises ``ReadSkip`` for a refused file and ``OSError`` for one that cannot be opened at all
    (vanished, permission denied); an ``ELOOP`` from ``O_NOFOLLOW`` means a symlink now sits at the
    path, which is ``changed-type``.
    """
    return read_checked(f"{root}/{file.open_path}", file.stat.size, file.device, file.stat.inode, max_bytes)


def read_checked(path: str, size_hint: int, device: int, inode: int, max_bytes: int) -> bytes:
    """``read_source`` on plain values (what the forked hashing child is sent). ``device`` 0 skips
    the identity check (a caller that knows no device)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ReadSkip(CHANGED_TYPE) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise ReadSkip(NOT_REGULAR)
        if device and (st.st_dev != device or st.st_ino != inode):
            raise ReadSkip(CHANGED_TYPE)
        if st.st_size > max_bytes:
            raise ReadSkip(TOO_LARGE)
        os.set_blocking(fd, True)  # a regular file: blocking reads are the normal kind
        return _read_at_most(fd, min(size_hint, max_bytes), max_bytes)
    finally:
        os.close(fd)


def _read_at_most(fd: int, size_hint: int, max_bytes: int) -> bytes:
    """Read to the end, in one ``read`` call when the file still has the size its stat said.

    ``os.read`` skips the buffered file object ``open()`` builds (a fifth of the per-file cost on
    small files). A file that has the stat's size is taken as complete without a second, empty read:
    if it grew after all, its new stat differs from the one stored with this hash, so the next scan
    reads it again. Past ``max_bytes`` the file is ``too-large``.
    """
    data = os.read(fd, size_hint + 1)
    if len(data) == size_hint:
        return data
    if len(data) < size_hint or not data:
        return data  # shrank since its stat: this is all there is
    parts = [data]
    total = len(data)
    while total <= max_bytes and (part := os.read(fd, min(_PIECE, max_bytes + 1 - total))):
        parts.append(part)
        total += len(part)
    if total > max_bytes:
        raise ReadSkip(TOO_LARGE)
    return b"".join(parts)
