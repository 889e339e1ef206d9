"""The fast WordPiece counter gives exactly the HF tokenizer's counts, and steps aside when it cannot.

The reference is ``len(Tokenizer.encode(text).ids)`` with truncation off, [CLS]/[SEP] included. The
fast counter is built with ``probe=False`` here so that the tests check its own logic, not the
safety net that would hide a mistake by falling back.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeindex.embedders import fast_count, models, tokens
from codeindex.embedders.fast_count import FastWordPieceCounter

SCENARIOS = Path(__file__).parent / "scenarios"
MODEL = models.default_model_path()
WINDOW = 40


@pytest.fixture(scope="module")
def reference() -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(list(texts))]

    return count


@pytest.fixture(scope="module")
def fast(reference: Any) -> FastWordPieceCounter:
    counter = FastWordPieceCounter.from_file(MODEL / "tokenizer.json", reference, probe=False)
    assert counter is not None
    return counter


def windows(data: bytes, size: int = WINDOW) -> Iterator[str]:
    """``size``-line windows of a file, decoded as the chunker decodes (bad UTF-8 → U+FFFD)."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    for i in range(0, len(lines), size):
        yield "\n".join(lines[i:i + size])


def tree_windows(root: Path) -> list[str]:
    return [w for p in sorted(root.rglob("*")) if p.is_file() for w in windows(p.read_bytes())]


def mismatches(texts: Sequence[str], fast: FastWordPieceCounter, reference: Any) -> list[tuple[str, int, int]]:
    got, want = fast(texts), reference(texts)
    return [(t[:200], g, w) for t, g, w in zip(texts, got, want, strict=True) if g != w]


# ---------------------------------------------------------------- exactness


def test_scenario_files_count_exactly(fast: FastWordPieceCounter, reference: Any) -> None:
    texts = tree_windows(SCENARIOS)
    assert len(texts) > 50
    assert mismatches(texts, fast, reference) == []
    assert mismatches(texts, fast, reference) == []  # again, from the warm caches


HOSTILE = [
    "é", "É", "e\u0301", "naïve", "Ångström", "ß", "İ", "ΣΑΣ", "ﬁ", "Ⅻ", "½", "²",  # accents, case, compat
    "中文", "漢字かなカナ", "한국어", "😀", "👩\u200d💻", "🇫🇷",  # CJK, emoji, ZWJ sequences
    "क्षि", "مرحبا", "\u0e01\u0e34", "\u05d0\u05b7",  # marks that are not all Mn
    "\x00", "\x01", "\x0b", "\x0c", "\x1c", "\x1f", "\x7f", "\x85", "\ufeff", "\u200b", "\ufffd",  # controls
    "\u00a0", "\u2028", "\u3000", "\u2003",  # non-ASCII whitespace
    "[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[mask]", "[MASK", "x[SEP]y",  # added tokens
    "—", "«", "»", "¿", "…", "•", "§", "¶", "“", "”", "‘", "’",  # Unicode punctuation and symbols
    "##", "##ing", "``", "\\n", "'''",
]
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
SPACE = [" ", "  ", "\t", "\n", "\r\n", "\n\n    ", "\r"]

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
numbers = st.from_regex(r"(0x[0-9A-Fa-f]{1,12}|[0-9]{1,12}(\.[0-9]+)?(e-?[0-9]+)?)", fullmatch=True)
long_words = st.builds(lambda c, n: c * n, st.sampled_from(["a", "ab", "xyz", "7", "é", "_a"]),
                       st.integers(30, 120))
fragments = st.one_of(identifiers, numbers, long_words, st.sampled_from(PUNCT), st.sampled_from(SPACE),
                      st.sampled_from(HOSTILE), st.text(max_size=8))
code_like = st.lists(fragments, max_size=120).map("".join)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(code_like, min_size=1, max_size=8))
def test_generated_text_counts_exactly(fast: FastWordPieceCounter, reference: Any, texts: list[str]) -> None:
    assert mismatches(texts, fast, reference) == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_arbitrary_unicode_counts_exactly(fast: FastWordPieceCounter, reference: Any, text: str) -> None:
    assert mismatches([text], fast, reference) == []


def test_wordpiece_limits(fast: FastWordPieceCounter, reference: Any) -> None:
    """The 100-char word limit is an [UNK]; a word with an unmatchable char is one [UNK]."""
    texts = ["a" * 100, "a" * 101, "ab" * 50, "ab" * 51, "unaffordable", "x" + "😀" * 3, "😀" * 101]
    assert mismatches(texts, fast, reference) == []
    assert fast(["a" * 101]) == [3]


@pytest.mark.slow
def test_corpus_windows_count_exactly(fast: FastWordPieceCounter, reference: Any) -> None:
    value = os.environ.get("CODEINDEX_TEST_CORPUS")
    if not value or not Path(value).is_dir():
        pytest.skip("set CODEINDEX_TEST_CORPUS to a directory of source files to run this test")
    texts = tree_windows(Path(value))
    for i in range(0, len(texts), 2000):
        assert mismatches(texts[i:i + 2000], fast, reference) == []


def test_cache_limit_keeps_counts_exact(monkeypatch: pytest.MonkeyPatch, reference: Any) -> None:
    monkeypatch.setattr(fast_count, "CACHE_LIMIT", 5)
    counter = FastWordPieceCounter.from_file(MODEL / "tokenizer.json", reference, probe=False)
    assert counter is not None
    texts = tree_windows(SCENARIOS / "languages")
    for text in texts:
        assert counter([text]) == reference([text])
    assert len(counter._words) < 1000  # cleared on the way


# ---------------------------------------------------------------- drop-in and fallback


def test_token_counter_uses_fast_path_and_pickles(reference: Any) -> None:
    counter = tokens.TokenCounter(MODEL)
    assert tokens.fast_counter(MODEL) is not None
    texts = tree_windows(SCENARIOS / "languages")
    assert counter(texts) == reference(texts)
    clone = pickle.loads(pickle.dumps(counter))
    assert clone.model_path == MODEL and clone(texts[:5]) == reference(texts[:5])
    assert counter([]) == []


def _model_copy(tmp_path: Path, edit: Any) -> Path:
    """A model dir whose tokenizer.json is MiniLM's with ``edit`` applied to the parsed JSON."""
    config = json.loads((MODEL / "tokenizer.json").read_text())
    edit(config)
    target = tmp_path / "model"
    target.mkdir()
    (target / "tokenizer.json").write_text(json.dumps(config))
    return target


def _hf(path: Path, texts: Sequence[str]) -> list[int]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return [len(e.ids) for e in tok.encode_batch(list(texts))]


def test_foreign_pre_tokenizer_falls_back_to_hf(tmp_path: Path) -> None:
    path = _model_copy(tmp_path, lambda c: c.update(pre_tokenizer={"type": "WhitespaceSplit"}))
    assert tokens.fast_counter(path) is None
    texts = ["foo_bar(baz) + qux[1]", "a," * 60, "x"]  # one 120-char word: [UNK]
    want = _hf(path, texts)
    assert tokens.TokenCounter(path)(texts) == want
    assert want != _hf(MODEL, texts)  # the copy really tokenizes differently


def test_word_level_model_falls_back_to_hf(tmp_path: Path) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tok = Tokenizer(WordLevel({"[UNK]": 0, "def": 1, "foo": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    (tmp_path / "tokenizer.json").write_text(tok.to_str())
    assert tokens.fast_counter(tmp_path) is None
    assert tokens.TokenCounter(tmp_path)(["def foo(): pass"]) == [len(tok.encode("def foo(): pass").ids)]


def test_cased_copy_still_counts_exactly(tmp_path: Path) -> None:
    """A configuration variant the fast path does handle (no lowercasing, one special token)."""
    def edit(c: dict[str, Any]) -> None:
        c["normalizer"]["lowercase"] = False
        c["normalizer"]["strip_accents"] = False
        c["post_processor"]["single"] = c["post_processor"]["single"][:2]

    path = _model_copy(tmp_path, edit)
    assert tokens.fast_counter(path) is not None
    texts = [*tree_windows(SCENARIOS / "languages"), "Café ÉCOLE naïve", "HTTPServer getURL"]
    assert tokens.TokenCounter(path)(texts) == _hf(path, texts)
    assert tokens.TokenCounter(path)(texts) != tokens.TokenCounter(MODEL)(texts)


def test_probe_disagreement_means_no_fast_counter(reference: Any, caplog: pytest.LogCaptureFixture) -> None:
    def off_by_one(texts: Sequence[str]) -> list[int]:
        return [n + 1 for n in reference(texts)]

    with caplog.at_level(logging.WARNING, logger="codeindex.embedders"):
        assert FastWordPieceCounter.from_file(MODEL / "tokenizer.json", off_by_one) is None
    assert "disagrees" in caplog.text
    assert FastWordPieceCounter.from_file(MODEL / "tokenizer.json", reference) is not None


@pytest.mark.parametrize("edit", [
    lambda c: c["added_tokens"][0].update(normalized=True),
    lambda c: c["post_processor"].update(type="RobertaProcessing"),
    lambda c: c["model"].update(type="BPE"),
    lambda c: c.update(normalizer=None),
])
def test_unknown_configurations_are_refused(tmp_path: Path, edit: Any) -> None:
    path = _model_copy(tmp_path, edit)
    assert FastWordPieceCounter.from_file(path / "tokenizer.json", lambda t: [0] * len(t)) is None
