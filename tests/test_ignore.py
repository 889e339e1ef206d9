"""Ignore rules: the linear-time translation agrees with a plain reference matcher, and hostile patterns
that make naive regex translations (and git) backtrack for hours are decided at once."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeindex.changes.discovery import discover
from codeindex.changes.ignore import RuleSet, compile_rule

# ---------------------------------------------------------------- a reference matcher, by dynamic programming


def _tokens(glob: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("[ab]", i):
            out.append("[ab]")
            i += 4
        elif glob[i] == "*":
            while i < len(glob) and glob[i] == "*":
                i += 1
            out.append("*")
        else:
            out.append(glob[i])
            i += 1
    return out


def ref_segment(glob: str, name: str) -> bool:
    tokens = _tokens(glob)

    @cache
    def go(t: int, c: int) -> bool:
        if t == len(tokens):
            return c == len(name)
        tok = tokens[t]
        if tok == "*":
            return any(go(t + 1, k) for k in range(c, len(name) + 1))
        if c == len(name):
            return False
        ok = name[c] in "ab" if tok == "[ab]" else True if tok == "?" else name[c] == tok
        return ok and go(t + 1, c + 1)

    return go(0, 0)


def ref_match(pattern: str, path: str) -> bool:
    """gitignore semantics for one rule (no negation, no dir-only): slash-less patterns match the name
    at any depth; ``**`` segments match any number of directories; a trailing ``/**`` everything inside."""
    text = pattern.rstrip("/")
    if "/" not in text:
        return ref_segment(text, path.rsplit("/", 1)[-1])
    segs = text.removeprefix("/").split("/")
    parts = path.split("/")
    trailing = segs[-1] == "**"
    if trailing:
        segs = segs[:-1]

    @cache
    def go(s: int, p: int) -> bool:
        if s == len(segs):
            return p < len(parts) if trailing else p == len(parts)
        if segs[s] == "**":
            return any(go(s + 1, k) for k in range(p, len(parts) + 1))
        return p < len(parts) and ref_segment(segs[s], parts[p]) and go(s + 1, p + 1)

    return go(0, 0)


segment = st.lists(st.sampled_from(["a", "b", "*", "?", "[ab]", "**"]), min_size=1, max_size=5).map("".join)
patterns = st.one_of(segment, st.lists(st.one_of(segment, st.just("**")), min_size=2, max_size=4).map("/".join),
                     st.lists(segment, min_size=1, max_size=3).map(lambda s: "/" + "/".join(s)))
paths = st.lists(st.text("ab", min_size=1, max_size=5), min_size=1, max_size=5).map("/".join)


@settings(max_examples=600, deadline=None)
@given(pattern=patterns, path=paths)
def test_translation_agrees_with_the_reference_matcher(pattern: str, path: str) -> None:
    rule = compile_rule(pattern)
    assert rule is not None
    assert rule.matches(path, path.rsplit("/", 1)[-1]) == ref_match(pattern, path), rule.regex.pattern


# ---------------------------------------------------------------- hostile patterns

# Each would take hours with a backtracking translation: stars against a long run of the letter they
# wait for, and stacked ** against a deep path. Git hangs on the first kind too.
HOSTILE = ["*a" * 16 + "*b", "**/" * 16 + "x", "a*" * 20 + "c/**/" * 8 + "z", "*?" * 30 + "b", "[ab]*" * 20 + "c"]


@pytest.mark.timeout(60)
def test_hostile_patterns_are_decided_at_once() -> None:
    name = "a" * 60
    deep = "/".join(["a" * 8] * 60)
    rules = RuleSet.from_lines(HOSTILE)
    for path in (name, deep, deep + "/" + name):
        assert rules.match(path, False) is None
        assert rules.match(path, True) is None
        for pattern in HOSTILE:
            rule = compile_rule(pattern)
            assert rule is not None
            assert not rule.matches(path, path.rsplit("/", 1)[-1])
    # and they still match what they describe
    assert rules.match("a" * 60 + "b", False) is True
    assert rules.match(deep + "/x", False) is True


@pytest.mark.timeout(60)
def test_discovery_with_a_hostile_gitignore_finishes(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("\n".join(HOSTILE) + "\n*.log\n")
    deep = tmp_path.joinpath(*(["a" * 8] * 30))
    deep.mkdir(parents=True)
    (deep / ("a" * 60)).write_text("kept")
    (deep / ("a" * 60 + "b")).write_text("ignored by the first rule")
    (tmp_path / "x.log").write_text("ignored")
    found = discover(tmp_path, lambda p: "text", max_file_bytes=1 << 20)
    assert [f.path.rsplit("/", 1)[-1] for f in found.files] == [".gitignore", "a" * 60]
    assert found.skipped == {"ignored": 2}
