"""Hybrid fusion weights: queries in words lean on vectors, single identifiers lean on BM25."""

from __future__ import annotations

import pytest

from codeindex.search.ranking import IDENTIFIER_WEIGHTS, NATURAL_WEIGHTS, RRF_K, fusion_weights, rrf


@pytest.mark.parametrize("query", ["parse_file", "parseFile", "os.path.join", "Foo::bar", "self->next",
                                   "HTTPServer.serve_forever", "  read_config  "])
def test_identifiers_lean_lexical(query: str) -> None:
    assert fusion_weights(query) == IDENTIFIER_WEIGHTS


@pytest.mark.parametrize("query", ["read the configuration file", "config", "HTTP", "parse file",
                                   "how to parse_file quickly", "1.5", "a+b"])
def test_words_lean_on_vectors(query: str) -> None:
    assert fusion_weights(query) == NATURAL_WEIGHTS


def test_the_weighted_fusion_orders_as_documented() -> None:
    vector, lexical = [1, 2, 3], [3, 4, 1]
    # words: vector's first hit stays first; the chunk both rankers hold beats one only lexical holds
    ranked = [doc for doc, _ in rrf([vector, lexical], k=RRF_K, weights=NATURAL_WEIGHTS)]
    assert ranked[0] == 1 and ranked.index(3) < ranked.index(4)
    # an identifier: BM25's first hit comes first
    ranked = [doc for doc, _ in rrf([vector, lexical], k=RRF_K, weights=IDENTIFIER_WEIGHTS)]
    assert ranked[0] == 3


def test_rrf_ties_go_to_agreement_then_to_the_lower_id() -> None:
    from codeindex.search.ranking import rrf

    # 9 is first in one list only; 7 is second and first: equal scores at k=0 with weights (1, 1/2)
    fused = rrf([[9, 7], [7]], k=0, weights=[1.0, 0.5])
    assert [d for d, _ in fused] == [7, 9]
    assert [d for d, _ in rrf([[5], [3]], k=0)] == [3, 5]
