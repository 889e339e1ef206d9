"""gitignore-syntax rules, matched the way git matches them during a directory walk, in linear time.

Discovery never descends into an excluded directory, so a rule only ever has to decide about the
path in front of it (never about its descendants). That lets us compile each pattern to one regex
matched with ``fullmatch`` against the path relative to the directory holding the ignore file.
Precedence is git's: within one file the last matching rule wins; a deeper file beats a shallower
one; ``.git/info/exclude`` is weakest.

Linear time, whatever the ignore file says. A naive glob-to-regex translation backtracks
exponentially on patterns such as ``*a*a*a*a*a*b`` or ``**/**/**/**/x`` (git's own matcher hangs on
them too), and a repository's ``.gitignore`` is input we do not control. The translation here never
lets the regex engine reconsider a choice that cannot matter:

* inside one path segment, a glob ``P0*P1*...*Pn`` matches iff each middle piece is placed at its
  leftmost possible position (placing a piece earlier only leaves more room for the rest), so every
  middle piece is an atomic group ``(?>[^/]*?Pi)``: found once, never backtracked into;
* across segments, ``**`` likewise: each piece of segments between two ``**`` is placed at the first
  segment where it fits, atomically; only the last piece searches, once;
* consecutive ``*`` collapse into one, as they mean the same.

Each rule then costs at most (path length x pattern length) steps. A rule without a slash (the
common ``*.pyc``, ``node_modules``) can only match the last segment, so it is matched against the
name alone, and all such rules of a file are tried as one regex.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from codeindex.globs import segment_pieces

log = logging.getLogger(__name__)

MAX_IGNORE_FILE_BYTES = 4 * 1024 * 1024
"""An ignore file larger than this is read up to here (with a warning): no real one comes close."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled pattern line. ``ignore`` is False for a negated (``!``) rule. ``basename``: the
    rule has no slash, and ``regex`` is matched against the last path segment only."""

    regex: re.Pattern[str]
    ignore: bool
    dir_only: bool
    source: str
    basename: bool = False
    line: int = 0
    """1-based line in ``source`` (0 when not from a file), for ``codeindex why``."""
    pattern: str = ""
    """The line as written."""

    def matches(self, relpath: str, name: str) -> bool:
        return self.regex.fullmatch(name if self.basename else relpath) is not None


def _translate_glob(segment: str) -> str:
    """Translate one path segment of a glob (no ``/`` inside) to a regex that matches in linear time."""
    pieces = segment_pieces(segment)
    if len(pieces) <= 2:  # at most one * run: nothing to backtrack over but that run
        return "[^/]*".join(pieces)
    middle = "".join(f"(?>[^/]*?{p})" for p in pieces[1:-1])
    return f"{pieces[0]}{middle}[^/]*{pieces[-1]}"


def _translate_path(segments: Sequence[str]) -> str:
    """Translate the segments of an anchored pattern (``**`` for any number of directories)."""
    last = len(segments) - 1
    if segments[-1] == "**":  # a trailing "/**": everything inside (at least one more segment)
        tail = ".*"
        segments, last = segments[:-1], last - 1
    else:
        tail = ""
    # Split at the ** segments: pieces of plain segments, each placed after a "**".
    pieces: list[list[str]] = [[]]
    for seg in segments:
        if seg == "**":
            pieces.append([])
        else:
            pieces[-1].append(_translate_glob(seg))
    parts = ["/".join(pieces[0])]
    if len(pieces) == 1:
        return parts[0] + ("/" + tail if tail and parts[0] else tail)
    if parts[0]:
        parts[0] += "/"
    any_dirs = "(?:[^/]*/)*?"
    for k, piece in enumerate(pieces[1:], start=1):
        body = "/".join(piece)
        final = k == len(pieces) - 1
        if final:
            parts.append(any_dirs + body + ("/" + tail if tail and body else tail))
        elif body:  # placed at the first directory where it fits, never reconsidered
            parts.append(f"(?>{any_dirs}{body}/)")
    return "".join(parts)


def compile_rule(line: str, source: str = "", number: int = 0) -> Rule | None:
    """Compile one gitignore line; ``None`` for blanks, comments and lines that match nothing."""
    text = line.rstrip("\n").rstrip("\r")
    # Trailing spaces are dropped unless escaped with a backslash.
    while text.endswith(" ") and not text.endswith("\\ "):
        text = text[:-1]
    if not text or text.startswith("#"):
        return None
    ignore = True
    if text.startswith("!"):
        ignore, text = False, text[1:]
    dir_only = text.endswith("/")
    text = text.rstrip("/")
    if not text:
        return None
    if "/" not in text:  # matched against the name, at any depth
        return Rule(re.compile(_translate_glob(text), re.DOTALL), ignore, dir_only, source, basename=True,
                    line=number, pattern=line.strip())
    segments = text.removeprefix("/").split("/")
    return Rule(re.compile(_translate_path(segments), re.DOTALL), ignore, dir_only, source, line=number,
                pattern=line.strip())


class RuleSet:
    """The compiled rules of one ignore file, with one-regex fast paths for the common no-match case:
    one union of the name rules (matched against the last segment) and one of the path rules."""

    __slots__ = ("_dir_names", "_dir_paths", "_file_names", "_file_paths", "rules")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        file_rules = [r for r in self.rules if not r.dir_only]
        self._dir_names = self._union([r for r in self.rules if r.basename])
        self._dir_paths = self._union([r for r in self.rules if not r.basename])
        self._file_names = self._union([r for r in file_rules if r.basename])
        self._file_paths = self._union([r for r in file_rules if not r.basename])

    @staticmethod
    def _union(rules: Sequence[Rule]) -> re.Pattern[str] | None:
        if not rules:
            return None
        return re.compile("|".join(f"(?:{r.regex.pattern})" for r in rules), re.DOTALL)

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = "") -> RuleSet:
        rules = [rule for number, line in enumerate(lines, 1)
                 if (rule := compile_rule(line, source, number)) is not None]
        return cls(rules)

    @classmethod
    def from_file(cls, path: Path) -> RuleSet:
        """Read an ignore file; an unreadable one is logged and treated as empty (git does the same)."""
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_IGNORE_FILE_BYTES + 1)
        except OSError as exc:
            log.warning("cannot read ignore file %s: %s", path, exc)
            return cls([])
        if len(raw) > MAX_IGNORE_FILE_BYTES:
            log.warning("ignore file %s is larger than %d bytes: the rest is not read", path, MAX_IGNORE_FILE_BYTES)
            raw = raw[:MAX_IGNORE_FILE_BYTES]
        return cls.from_lines(raw.decode("utf-8", errors="surrogateescape").splitlines(), str(path))

    def match(self, relpath: str, is_dir: bool) -> bool | None:
        """True: ignored; False: re-included by a negation; None: no rule here speaks about it."""
        rule = self.deciding_rule(relpath, is_dir)
        return None if rule is None else rule.ignore

    def deciding_rule(self, relpath: str, is_dir: bool) -> Rule | None:
        """The rule that decides about ``relpath`` here (the last one matching), or None."""
        names, paths = (self._dir_names, self._dir_paths) if is_dir else (self._file_names, self._file_paths)
        name = relpath.rpartition("/")[2]
        if (names is None or names.fullmatch(name) is None) and (paths is None or paths.fullmatch(relpath) is None):
            return None
        for rule in reversed(self.rules):
            if rule.dir_only and not is_dir:
                continue
            if rule.matches(relpath, name):
                return rule
        return None  # pragma: no cover - a union matched, so one rule does


@dataclass(frozen=True, slots=True)
class Layer:
    """A rule set anchored at directory ``base`` ("" = root)."""

    base: str
    rules: RuleSet


def decide(layers: Sequence[Layer], relpath: str, is_dir: bool) -> bool | None:
    """Walk layers from strongest (last) to weakest; the first one with an opinion decides."""
    rule = deciding_rule(layers, relpath, is_dir)
    return None if rule is None else rule.ignore


def deciding_rule(layers: Sequence[Layer], relpath: str, is_dir: bool) -> Rule | None:
    """The rule ``decide`` follows for ``relpath`` (None: no layer speaks about it)."""
    for layer in reversed(layers):
        rule = layer.rules.deciding_rule(relpath[len(layer.base) + 1 :] if layer.base else relpath, is_dir)
        if rule is not None:
            return rule
    return None
