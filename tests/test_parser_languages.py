"""Golden tests: each built-in language's sample file yields the expected units, kinds and spans."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from codeindex.parsers.treesitter import RULES, SPECS, TreeSitterParser
from tests.chunk_helpers import budget, uncovered_lines

SCENARIOS = Path(__file__).parent / "scenarios" / "languages"

# (symbol, kind, first line, last line) of units: the chunks carrying the symbol span exactly these lines.
GOLDEN: dict[str, list[tuple[str, str, int, int]]] = {
    "sample.py": [("sample.Item", "class", 10, 15), ("sample.Item.restock", "method", 17, 23),
                  ("sample.Item.empty", "method", 25, 27), ("sample.total_quantity", "function", 30, 32)],
    "sample.js": [("sample.Emitter.constructor", "method", 5, 8), ("sample.Emitter.on", "method", 10, 17),
                  ("sample.Emitter.emit", "method", 19, 24), ("sample.debounce", "function", 26, 32),
                  ("sample.createEmitter", "function", 34, 36)],
    "sample.ts": [("sample.Settings", "interface", 3, 6), ("sample.Level", "enum", 8, 12),
                  ("sample.SettingsLoader.load", "method", 17, 25),
                  ("sample.SettingsLoader.clear", "method", 27, 30), ("sample.describe", "function", 32, 34)],
    "sample.tsx": [("sample.CounterProps", "interface", 3, 6), ("sample.Counter", "function", 8, 16),
                   ("sample.Badge", "function", 18, 20)],
    "sample.go": [("sample.Queue", "type", 12, 17), ("sample.New", "function", 19, 22),
                  ("sample.Queue.Push", "method", 24, 33), ("sample.Queue.Pop", "method", 35, 45)],
    "sample.rs": [("sample.Ring", "struct", 5, 11), ("sample.Ring.new", "method", 14, 17),
                  ("sample.Ring.push", "method", 19, 29), ("sample.Drain", "trait", 37, 39)],
    "Sample.java": [("Sample.Invoice.add", "method", 13, 19), ("Sample.Invoice.total", "method", 21, 27),
                    ("Sample.Invoice.Formatter", "interface", 29, 31)],
    "sample.c": [("sample.clamp", "function", 13, 21), ("sample.point_new", "function", 23, 31),
                 ("sample.main", "function", 33, 38)],
    "sample.cpp": [("sample.geo.Shape", "class", 6, 10), ("sample.geo.Rect", "class", 12, 20),
                   ("sample.geo.total_area", "function", 22, 28), ("sample.max_of", "function", 32, 35),
                   ("sample.Greeter.greet", "function", 37, 39)],
    "sample.cs": [("sample.Shop.Orders.IOrderStore", "interface", 6, 9),
                  ("sample.Shop.Orders.Order.AddLine", "method", 16, 23),
                  ("sample.Shop.Orders.Money", "struct", 30, 34)],
    "sample.rb": [("sample.Api.RateLimiter.initialize", "method", 8, 11),
                  ("sample.Api.RateLimiter.allow?", "method", 13, 16),
                  ("sample.Api.RateLimiter.build", "method", 18, 22),
                  ("sample.reset_all", "function", 24, 26)],
    "sample.php": [("sample.Sender", "interface", 7, 10), ("sample.Mailer.send", "method", 16, 23),
                   ("sample.Mailer.count", "method", 25, 29), ("sample.welcome", "function", 31, 34)],
    "sample.kt": [("sample.Store", "class", 7, 9), ("sample.LruCache.get", "method", 14, 16),
                  ("sample.LruCache.put", "method", 18, 24), ("sample.Defaults", "object", 26, 28)],
    "sample.swift": [("sample.Shape", "protocol", 1, 5), ("sample.Circle", "class", 7, 13),
                     ("sample.Canvas", "class", 15, 25), ("sample.makeCanvas", "function", 32, 34)],
    "sample.scala": [("sample.Metric", "trait", 1, 7), ("sample.Counter", "class", 9, 17),
                     ("sample.Registry", "object", 19, 25), ("sample.summary", "function", 27, 27)],
    "sample.sh": [("sample.log", "function", 1, 9), ("sample.backup", "function", 11, 16)],
    "sample.lua": [("sample.Stack.new", "function", 5, 7), ("sample.Stack.push", "function", 9, 12),
                   ("sample.Stack.pop", "function", 14, 22)],
}

EXTENSIONS = {ext: spec.name for spec in SPECS for ext in spec.extensions}


def _chunks(name: str, max_tokens: int = 96):
    path = SCENARIOS / name
    source = path.read_bytes()
    language = EXTENSIONS[path.suffix]
    return source, TreeSitterParser().chunk(source, name, language, budget(max_tokens))


def test_every_language_has_a_golden_file() -> None:
    golden_languages = {EXTENSIONS[Path(n).suffix] for n in GOLDEN}
    assert golden_languages == set(RULES)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_units(name: str) -> None:
    source, chunks = _chunks(name)
    for symbol, kind, first, last in GOLDEN[name]:
        mine = [c for c in chunks if c.symbol == symbol and c.kind == kind]
        assert mine, f"{symbol} missing; got {[c.symbol for c in chunks]}"
        assert {c.kind for c in mine} == {kind}
        assert (min(c.start_line for c in mine), max(c.end_line for c in mine)) == (first, last)
    assert uncovered_lines(source, chunks) == []
    assert all(c.n_tokens <= 96 for c in chunks)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_spans_match_text(name: str) -> None:
    source, chunks = _chunks(name)
    for c in chunks:
        assert source[c.start_byte:c.end_byte].decode() == c.text
        lines = source.split(b"\n")
        assert c.text.startswith(lines[c.start_line - 1].decode())
        assert c.text.endswith(lines[c.end_line - 1].decode())
        assert c.embed_text.endswith(c.text)


def test_method_header_carries_enclosing_signature_not_path() -> None:
    _, chunks = _chunks("sample.py", 40)
    restock = [c for c in chunks if c.symbol == "sample.Item.restock"]
    assert restock and all("class Item:" in c.embed_text.split("\n", 3)[1] for c in restock)
    for c in chunks:
        header = c.embed_text[: len(c.embed_text) - len(c.text)]
        assert "sample" not in header


def test_moved_file_gives_identical_embed_texts() -> None:
    source = (SCENARIOS / "sample.go").read_bytes()
    parser = TreeSitterParser()
    a = parser.chunk(source, "pkg/queue/queue.go", "go", budget(64))
    b = parser.chunk(source, "vendor/other/q.go", "go", budget(64))
    assert [c.embed_text for c in a] == [c.embed_text for c in b]
    assert a[0].symbol.startswith("pkg.queue.queue") and b[0].symbol.startswith("vendor.other.q")


def test_parser_pickles_and_is_deterministic() -> None:
    parser = TreeSitterParser()
    source = (SCENARIOS / "sample.rs").read_bytes()
    first = parser.chunk(source, "a.rs", "rust", budget())
    clone = pickle.loads(pickle.dumps(parser))
    assert clone.chunk(source, "a.rs", "rust", budget()) == first


def test_config_hash_differs_per_language_and_unknown_language_is_value_error() -> None:
    parser = TreeSitterParser()
    assert parser.config_hash("python") != parser.config_hash("go")
    with pytest.raises(ValueError):
        parser.chunk(b"x", "a.zz", "cobol", budget())
