"""Code-aware tokenisation and reciprocal-rank fusion: pure functions, no disk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeindex.search.analysis import MAX_WORD, code_tokens, query_tokens, term_frequencies
from codeindex.search.ranking import rrf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("parseFile(x)", ["parsefile", "parse", "file", "x"]),
        ("parse_file", ["parse_file", "parse", "file"]),
        ("HTTPServer2", ["httpserver2", "http", "server", "2"]),
        ("ERR_42", ["err_42", "err", "42"]),
        ("ParseFile", ["parsefile", "parse", "file"]),
        ("IOError", ["ioerror", "io", "error"]),
        ("--max-tokens", ["max-tokens", "max", "tokens"]),
        ("x-1", ["x", "1"]),  # arithmetic, not kebab-case: the hyphen is followed by a digit
        ("utf8", ["utf8", "utf", "8"]),
        ("__init__", ["__init__", "init"]),
        ("ÄrgerStraße", ["ärgerstraße", "ärger", "straße"]),
        ("变量名 = 1", ["变量名", "1"]),
        ("a.b", ["a", "b"]),
        ("", []),
    ],
)
def test_code_tokens(text: str, expected: list[str]) -> None:
    assert code_tokens(text) == expected


def test_overlong_words_are_dropped() -> None:
    blob = "a" * (MAX_WORD + 1)
    assert code_tokens(f"keep {blob} this") == ["keep", "this"]
    assert code_tokens("b" * MAX_WORD) == ["b" * MAX_WORD]


@pytest.mark.parametrize("spelling", ["parseFile", "parse_file", "parse file", "ParseFile", "parse-file"])
def test_every_spelling_shares_the_part_terms(spelling: str) -> None:
    assert {"parse", "file"} <= set(query_tokens(spelling))


def test_query_tokens_are_distinct_in_first_order() -> None:
    assert query_tokens("file parseFile file") == ["file", "parsefile", "parse"]


def test_term_frequencies_counts_whole_words_and_parts() -> None:
    tf, length = term_frequencies("parseFile(a); parseFile(b)")
    assert tf == {"parsefile": 2, "parse": 2, "file": 2, "a": 1, "b": 1}
    assert length == 8


@given(st.text(max_size=200))
def test_tokens_are_lowercase_and_nonempty(text: str) -> None:
    tokens = code_tokens(text)
    assert all(t and t == t.lower() for t in tokens)
    assert sum(term_frequencies(text)[0].values()) == term_frequencies(text)[1] == len(tokens)


def test_rrf_by_hand() -> None:
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    expected = {1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61}
    assert [doc for doc, _ in fused] == [1, 3, 2]
    for doc, score in fused:
        assert score == pytest.approx(expected[doc])


def test_rrf_ties_break_by_id() -> None:
    assert [doc for doc, _ in rrf([[9, 4], [4, 9]])] == [4, 9]
    assert [doc for doc, _ in rrf([[7], [5]])] == [5, 7]


def test_rrf_weights_and_duplicates() -> None:
    fused = dict(rrf([[1, 2], [2, 1]], k=0, weights=[3.0, 1.0]))
    assert fused[1] == pytest.approx(3.0 / 1 + 1.0 / 2)
    assert fused[2] == pytest.approx(3.0 / 2 + 1.0 / 1)
    # A repeated id counts once per ranking, at its best rank.
    assert dict(rrf([[5, 5, 6]], k=0)) == {5: 1.0, 6: pytest.approx(1 / 3)}


def test_rrf_edge_cases() -> None:
    assert rrf([]) == []
    assert rrf([[], []]) == []
    with pytest.raises(ValueError, match="weights"):
        rrf([[1]], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="k must"):
        rrf([[1]], k=-1)


@given(st.lists(st.lists(st.integers(0, 20), max_size=10), max_size=4))
def test_rrf_sorted_and_complete(rankings: list[list[int]]) -> None:
    fused = rrf(rankings)
    assert {doc for doc, _ in fused} == {doc for r in rankings for doc in r}
    keys = [(-score, doc) for doc, score in fused]
    assert keys == sorted(keys)
