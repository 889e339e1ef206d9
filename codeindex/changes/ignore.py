"""gitignore-syntax rules, matched the way git matches them during a directory walk.

Discovery never descends into an excluded directory, so a rule only ever has to decide about the
path in front of it (never about its descendants). That lets us compile each pattern to one regex
matched with ``fullmatch`` against the path relative to the directory holding the ignore file, which
is both simpler and faster than prefix-style matching. Precedence is git's: within one file the last
matching rule wins; a deeper file beats a shallower one; ``.git/info/exclude`` is weakest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from codeindex.globs import segment_regex

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled pattern line. ``ignore`` is False for a negated (``!``) rule."""

    regex: re.Pattern[str]
    ignore: bool
    dir_only: bool
    source: str
    line: int = 0
    """1-based line in ``source`` (0 when not from a file), for ``codeindex why``."""
    pattern: str = ""
    """The line as written."""


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
    anchored = "/" in text
    text = text.removeprefix("/")
    segments = text.split("/")
    parts: list[str] = [] if anchored else ["(?:.*/)?"]
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        if seg == "**":
            parts.append(".*" if i == last else "(?:.*/)?")
        else:
            parts.append(segment_regex(seg))
            if i != last:
                parts.append("/")
    return Rule(re.compile("".join(parts), re.DOTALL), ignore, dir_only, source, number, line.strip())


class RuleSet:
    """The compiled rules of one ignore file, with a one-regex fast path for the common no-match case."""

    __slots__ = ("_any_dir", "_any_file", "rules")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._any_dir = self._union(self.rules)
        self._any_file = self._union([r for r in self.rules if not r.dir_only])

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
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            log.warning("cannot read ignore file %s: %s", path, exc)
            return cls([])
        return cls.from_lines(text.splitlines(), str(path))

    def match(self, relpath: str, is_dir: bool) -> bool | None:
        """True: ignored; False: re-included by a negation; None: no rule here speaks about it."""
        rule = self.deciding_rule(relpath, is_dir)
        return None if rule is None else rule.ignore

    def deciding_rule(self, relpath: str, is_dir: bool) -> Rule | None:
        """The rule that decides about ``relpath`` here (the last one matching), or None."""
        union = self._any_dir if is_dir else self._any_file
        if union is None or union.fullmatch(relpath) is None:
            return None
        for rule in reversed(self.rules):
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(relpath) is not None:
                return rule
        return None  # pragma: no cover - the union matched, so one rule does


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
