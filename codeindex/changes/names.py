"""File names that are not UTF-8: indexed under an escaped name, opened under the real one.

POSIX file names are byte strings; Python hands undecodable bytes to us as lone surrogates
(``os.fsdecode``'s ``surrogateescape``), which DuckDB, Arrow and every terminal refuse. So such a
name is *stored and displayed* escaped (each undecodable byte as ``\\xNN``, the form ``ascii()`` and
``git`` use) and *opened* under its real name, which discovery keeps beside it
(``SourceFile.fs_path``). The escaped form is a pure function of the real name, so a file keeps the
same indexed path from run to run. A real name that happens to be spelled like the escaped form of
a neighbour would make the two indistinguishable: that neighbour is skipped (``undecodable-name``),
never mixed up.
"""

from __future__ import annotations

UNDECODABLE = "undecodable-name"
"""The skip reason of a name whose escaped form collides with a real name in the same directory."""


def is_clean(name: str) -> bool:
    """True for a name that is valid UTF-8 on disk (no escaped bytes): the common case, kept cheap."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_name(name: str) -> str:
    """``name`` with each undecodable byte (a lone surrogate from ``surrogateescape``) as ``\\xNN``."""
    if is_clean(name):
        return name
    out = []
    for ch in name:
        code = ord(ch)
        out.append(f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else ch)
    return "".join(out)


def fs_name(display: str, real: str) -> str | None:
    """What ``SourceFile.fs_path`` records: the real name when it differs from the displayed one."""
    return None if display == real else real
