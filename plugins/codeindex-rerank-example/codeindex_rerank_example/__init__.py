"""An example reranker plugin: query-term coverage, no model.

Registered through the ``codeindex.rerankers`` entry point, exactly like a third-party cross-encoder
would be. Each candidate scores the share of the query's distinct terms (code-aware tokens, the
same the lexical index uses) found in its text, plus the share found in its symbol: a candidate
naming what was asked for moves up. The fused score breaks ties, so equals keep their order.
"""

from __future__ import annotations

from collections.abc import Sequence

import codeindex
from codeindex.hookspecs import RerankCandidate
from codeindex.search.analysis import query_tokens


class TermCoverage:
    name = "term-coverage"
    description = "query-term coverage of text and symbol (an example; no model)"

    def rerank(self, query: str, candidates: Sequence[RerankCandidate]) -> list[float]:
        terms = set(query_tokens(query))
        if not terms:
            return [c.score for c in candidates]
        scores = []
        for c in candidates:
            in_text = set(query_tokens(c.text)) & terms
            in_symbol = set(query_tokens(c.symbol)) & terms
            scores.append((len(in_text) + len(in_symbol)) / len(terms) + 1e-3 * c.score)
        return scores


@codeindex.hookimpl
def codeindex_rerankers() -> list[TermCoverage]:
    return [TermCoverage()]
