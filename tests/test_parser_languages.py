"""Golden tests: each built-in language's sample file yields the expected definitions, kinds and spans,
and every definition that fits the budget is one chunk."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from codeindex.chunking.build import header
from codeindex.chunking.source import module_path
from codeindex.parsers.treesitter import RULES, SPECS, TreeSitterParser
from tests.chunk_helpers import budget, pretoken_count, uncovered_lines

SCENARIOS = Path(__file__).parent / "scenarios" / "languages"

# (symbol, kind, first line, last line) of definitions: the symbol table's rows for these units. Spans are
# the units' own (decorators and ``export`` included, comments above not).
GOLDEN: dict[str, list[tuple[str, str, int, int]]] = {
    "sample.py": [("sample.Item", "class", 10, 27), ("sample.Item.restock", "method", 17, 23),
                  ("sample.Item.empty", "method", 25, 27), ("sample.total_quantity", "function", 30, 32)],
    "sample.js": [("sample.Emitter", "class", 4, 24), ("sample.Emitter.constructor", "method", 5, 8),
                  ("sample.Emitter.on", "method", 10, 17), ("sample.Emitter.emit", "method", 19, 23),
                  ("sample.debounce", "function", 26, 32), ("sample.createEmitter", "function", 34, 36)],
    "sample.ts": [("sample.Settings", "interface", 3, 6), ("sample.Level", "enum", 8, 12),
                  ("sample.SettingsLoader.load", "method", 17, 25),
                  ("sample.SettingsLoader.clear", "method", 27, 29), ("sample.describe", "function", 32, 34)],
    "sample.tsx": [("sample.CounterProps", "interface", 3, 6), ("sample.Counter", "function", 8, 16),
                   ("sample.Badge", "function", 18, 20)],
    "sample.go": [("sample.Queue", "type", 13, 17), ("sample.New", "function", 20, 22),
                  ("sample.Queue.Push", "method", 25, 33), ("sample.Queue.Pop", "method", 36, 45)],
    "sample.rs": [("sample.Ring", "struct", 7, 11), ("sample.Ring", "impl", 13, 29),
                  ("sample.Ring.new", "method", 15, 17), ("sample.Ring.push", "method", 19, 28),
                  ("sample.Drain", "trait", 37, 39), ("sample.tests.helper", "function", 47, 49)],
    "Sample.java": [("Sample.Invoice.add", "method", 14, 19), ("Sample.Invoice.total", "method", 21, 27),
                    ("Sample.Invoice.Formatter", "interface", 29, 31)],
    "sample.c": [("sample.point", "struct", 6, 9), ("sample.clamp", "function", 13, 21),
                 ("sample.point_new", "function", 23, 31), ("sample.main", "function", 33, 38)],
    "sample.cpp": [("sample.geo", "namespace", 4, 30), ("sample.geo.Shape", "class", 6, 10),
                   ("sample.geo.Rect", "class", 12, 20), ("sample.geo.Rect.area", "method", 15, 15),
                   ("sample.geo.total_area", "function", 22, 28), ("sample.max_of", "function", 32, 35),
                   ("sample.Greeter.greet", "function", 37, 39)],
    "sample.cs": [("sample.Shop.Orders.IOrderStore", "interface", 6, 9),
                  ("sample.Shop.Orders.Order.AddLine", "method", 16, 23),
                  ("sample.Shop.Orders.Money", "struct", 30, 33)],
    "sample.rb": [("sample.Api.RateLimiter", "class", 5, 21),
                  ("sample.Api.RateLimiter.initialize", "method", 8, 11),
                  ("sample.Api.RateLimiter.allow?", "method", 13, 16),
                  ("sample.Api.RateLimiter.build", "method", 18, 20),
                  ("sample.reset_all", "function", 24, 26)],
    "sample.php": [("sample.Sender", "interface", 7, 10), ("sample.Mailer.send", "method", 16, 23),
                   ("sample.Mailer.count", "method", 25, 28), ("sample.welcome", "function", 31, 34)],
    "sample.kt": [("sample.Store", "class", 7, 9), ("sample.LruCache.get", "method", 14, 16),
                  ("sample.LruCache.put", "method", 18, 23), ("sample.Defaults", "object", 26, 28)],
    "sample.swift": [("sample.Shape", "protocol", 3, 5), ("sample.Circle", "class", 7, 13),
                     ("sample.Canvas", "class", 15, 25), ("sample.Canvas.add", "method", 18, 20),
                     ("sample.makeCanvas", "function", 32, 34)],
    "sample.scala": [("sample.Metric", "trait", 5, 7), ("sample.Counter", "class", 9, 17),
                     ("sample.Registry", "object", 19, 25), ("sample.summary", "function", 27, 27)],
    "sample.sh": [("sample.log", "function", 7, 9), ("sample.backup", "function", 11, 16)],
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


def _chunks_and_definitions(name: str, max_tokens: int = 96):
    path = SCENARIOS / name
    source = path.read_bytes()
    return source, *TreeSitterParser().chunk_with_definitions(source, name, EXTENSIONS[path.suffix], budget(max_tokens))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_definitions(name: str) -> None:
    source, chunks, definitions = _chunks_and_definitions(name)
    prefix = module_path(name)
    found = {(f"{prefix}.{d.qualified}", d.kind, d.start_line, d.end_line) for d in definitions}
    for expected in GOLDEN[name]:
        assert expected in found, f"{expected} missing; got {sorted(found)}"
    assert all(d.name == d.qualified.rsplit(".", 1)[-1] for d in definitions)
    assert uncovered_lines(source, chunks) == []
    assert all(c.n_tokens <= 96 for c in chunks)


@pytest.mark.parametrize("name", sorted(GOLDEN))
@pytest.mark.parametrize("max_tokens", [48, 96, 256])
def test_definitions_that_fit_are_whole_chunks(name: str, max_tokens: int) -> None:
    """A definition whose text fits the budget (with its header) is never cut across chunks."""
    source, chunks, definitions = _chunks_and_definitions(name, max_tokens)
    lines = source.decode().split("\n")
    language = EXTENSIONS[Path(name).suffix]
    for d in definitions:
        text = header(language, d.kind, d.qualified, ()) + "\n".join(lines[d.start_line - 1:d.end_line])
        if pretoken_count([text])[0] > max_tokens:
            continue
        assert any(c.start_line <= d.start_line and d.end_line <= c.end_line for c in chunks), \
            f"{d.qualified} ({d.start_line}-{d.end_line}) fits {max_tokens} tokens but is split: " \
            f"{[(c.start_line, c.end_line) for c in chunks]}"


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_spans_match_text(name: str) -> None:
    source, chunks = _chunks(name)
    for c in chunks:
        assert source[c.start_byte:c.end_byte].decode() == c.text
        lines = source.split(b"\n")
        assert c.text.startswith(lines[c.start_line - 1].decode())
        assert c.text.endswith(lines[c.end_line - 1].decode())
        assert c.embed_text.endswith(c.text)


def test_split_method_pieces_carry_signatures_not_path() -> None:
    """The first piece of a split method shows its signature; the others carry it in their header."""
    _, chunks = _chunks("sample.py", 56)  # at 64 the method's 2-line tail joins ``empty`` after it
    restock = [c for c in chunks if c.symbol == "sample.Item.restock"]
    assert len(restock) > 1
    assert restock[0].text.lstrip().startswith("def restock(") and "class Item:" in restock[0].embed_text
    for c in restock[1:]:
        header = c.embed_text[: len(c.embed_text) - len(c.text)]
        assert header.splitlines()[-1].startswith("def restock(self, amount")
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


# ---------------------------------------------------------------- definitions that fit stay whole


def _covering(chunks, first: int, last: int) -> bool:  # type: ignore[no-untyped-def]
    return any(c.start_line <= first and last <= c.end_line for c in chunks)


def _members(n: int) -> str:
    return "\n".join(f"  virtual int Member{i}(int x) const {{ return x + {i}; }}" for i in range(n))


def test_cpp_header_named_h_parses_as_cpp() -> None:
    """``.h`` is C by extension; googletest's headers are C++: parsed as C, ``namespace testing {``
    became a function and the classes in it were cut."""
    source = (f"#include <x.h>\n\nnamespace testing {{\n\n// One.\nclass First {{\n public:\n{_members(6)}\n}};\n\n"
              f"// Two.\nclass Second {{\n public:\n{_members(6)}\n}};\n\n}}  // namespace testing\n").encode()
    parser = TreeSitterParser()
    chunks, definitions = parser.chunk_with_definitions(source, "include/a.h", "c", budget(128))
    spans = {d.qualified: (d.kind, d.start_line, d.end_line) for d in definitions}
    assert spans["testing.First"] == ("class", 6, 14) and spans["testing.Second"] == ("class", 17, 25)
    assert _covering(chunks, 6, 14) and _covering(chunks, 17, 25)
    assert all(c.language == "c" for c in chunks)
    c_source = b"struct point { int x; };\nint class_count(struct point *p) { return p->x; }\n"
    _, c_definitions = parser.chunk_with_definitions(c_source, "point.h", "c", budget(128))
    assert [d.qualified for d in c_definitions] == ["point", "class_count"]


def _api_class(name: str) -> str:
    return (f"class API_ {name} {{\n public:\n  {name}(const char* regex) : pattern_(regex) {{}}\n"
            f"  {name}(const {name}& other) : {name}(other.pattern()) {{}}\n\n"
            "  const std::string& pattern() const { return pattern_; }\n\n"
            f"  static bool FullMatch(const char* str, const {name}& re) {{\n"
            "    return Match(str, re.pattern_);\n  }\n"
            f"  static bool PartialMatch(const char* str, const {name}& re) {{\n"
            "    return Find(str, re.pattern_);\n  }\n\n"
            " private:\n  std::string pattern_;\n};\n")


def test_unit_followed_by_a_lone_semicolon_is_still_a_unit() -> None:
    """``class API_ RE {...};`` (an export macro) parses as a function plus an empty statement on its
    last line: the ``;`` is no second node making the cluster a non-unit (whose lines were then cut)."""
    source = f"namespace internal {{\n\n{_api_class('RE')}\n{_api_class('Other')}\n}}  // namespace internal\n".encode()
    chunks, definitions = TreeSitterParser().chunk_with_definitions(source, "re.cc", "cpp", budget(128))
    spans = {d.qualified: (d.start_line, d.end_line) for d in definitions}
    assert spans["internal.RE"] == (3, 19) and spans["internal.Other"] == (21, 37)
    assert _covering(chunks, 3, 19) and _covering(chunks, 21, 37), [(c.start_line, c.end_line) for c in chunks]


def test_unit_stays_whole_when_its_region_adds_lines_after_it() -> None:
    """A small statement between two functions joins the region of the one before; when that
    function fits but the region does not, the function stays whole and the statement parts from it."""
    doc = "\n".join(f" * @param {{number}} p{i} the {i}th value" for i in range(6))
    body = "\n".join(f"  if (p{i} > {i}) {{ total += p{i}; }}" for i in range(9))
    function = "function NAME(p0, p1, p2, p3, p4, p5) {\n  let total = 0;\n" + body + "\n  return total;\n}"
    source = (f"import a from 'a';\n\n/**\n{doc}\n */\n{function.replace('NAME', 'trim')}\n"
              f"const pattern_with_closing_curly_brace = [/^\\s*}}/, /^\\s*]/];\n\n/**\n{doc}\n */\n"
              f"{function.replace('NAME', 'pad')}\n").encode()
    chunks, definitions = TreeSitterParser().chunk_with_definitions(source, "t.js", "javascript", budget(160))
    (trim,) = [d for d in definitions if d.qualified == "trim"]
    assert _covering(chunks, trim.start_line, trim.end_line), [(c.start_line, c.end_line) for c in chunks]
    assert uncovered_lines(source, chunks) == []


def test_unit_that_fits_parts_from_a_comment_the_estimate_got_wrong() -> None:
    """The unit fits by its exact count; the comment above it was estimated to fit with it but is
    dense punctuation and does not: cut again, the comment parts from the unit, not the unit in two."""
    comment = "\n".join("# " + "(" * 40 for _ in range(2))
    body = "\n".join(f"    total = total + p{i}" for i in range(14))
    source = (f"x = 1\n\n\n{comment}\ndef f(p0):\n    total = 0\n{body}\n    return total\n\n\n"
              f"y = 2\n").encode()
    chunks, definitions = TreeSitterParser().chunk_with_definitions(source, "m.py", "python", budget(128))
    (f,) = [d for d in definitions if d.qualified == "f"]
    assert _covering(chunks, f.start_line, f.end_line), [(c.start_line, c.end_line) for c in chunks]
    assert all(c.n_tokens <= 128 for c in chunks)
    assert uncovered_lines(source, chunks) == []


def test_small_go_function_joins_the_method_beside_it() -> None:
    """Go methods are named ``Recv.Method`` but sit at module level: a three-line function after one
    is a whole unit side by side with it, so it joins it instead of staying a fragment."""
    body = "\n".join(f"\tw.n += {i}" for i in range(8))
    source = (f"package p\n\nfunc (w *Writer) Flush() {{\n{body}\n}}\n\n"
              "func closeWriter(w *Writer) {\n\tw.Close()\n}\n").encode()
    chunks = TreeSitterParser().chunk(source, "w.go", "go", budget(128))
    assert not [c for c in chunks if c.end_line - c.start_line + 1 <= 3], [(c.start_line, c.end_line) for c in chunks]
    assert uncovered_lines(source, chunks) == []


def test_function_in_the_first_branch_of_an_else_if_chain_stays_whole() -> None:
    """The branches of ``if {...} else if {...} else {...}`` share lines (``} else {``), so the whole
    chain is one cluster. Cut at its biggest node only (a later branch), the first branch was lines
    without structure, windowed through the middle of the function passed in it."""
    lines = "\n".join(f"      total += step{i}(node, {i});" for i in range(4))
    later = "\n".join(f"    total -= undo{i}(node, {i});" for i in range(14))
    source = ("function visit(node) {\n  let total = 0;\n  if (node.kind === 'tag') {\n"
              f"{lines}\n    walk(node, {{\n      leave(child) {{\n        total += child.size;\n      }}\n    }});\n"
              f"{lines}\n  }} else if (node.kind === 'text') {{\n{later}\n  }} else {{\n{later}\n  }}\n"
              "  return total;\n}\n").encode()
    chunks, definitions = TreeSitterParser().chunk_with_definitions(source, "v.js", "javascript", budget(96))
    (leave,) = [d for d in definitions if d.qualified == "visit.leave"]
    assert _covering(chunks, leave.start_line, leave.end_line), [(c.start_line, c.end_line) for c in chunks]
    assert uncovered_lines(source, chunks) == []


def test_unit_misparsed_onto_the_line_of_a_statement_stays_whole() -> None:
    """``T* F(args)\\n    const LOCK_REQUIRED_(mu) {`` (an annotation macro) parses as a field
    declaration ending at ``const`` and a function ``LOCK_REQUIRED_`` starting on the same line: two
    nodes on a line make a cluster without a unit, which was cut inside the function. The
    definitions query still finds it, and a definition that fits is never cut."""
    body = "\n".join(f"    if (exp{i}->Handles(args)) return exp{i};" for i in range(4))
    source = ("template <typename F>\nclass FunctionMocker {\n public:\n"
              "  // Returns the expectation that matches the arguments, or NULL if no\n"
              "  // expectation matches them: the caller holds the lock.\n"
              "  Expectation<F>* FindMatchingLocked(const ArgumentTuple& args)\n"
              "      const GTEST_LOCK_REQUIRED_(g_mutex) {\n    g_mutex.AssertHeld();\n"
              f"{body}\n    return nullptr;\n  }}\n\n  int count_;\n}};\n").encode()
    chunks, definitions = TreeSitterParser().chunk_with_definitions(source, "m.h", "cpp", budget(96))
    (locked,) = [d for d in definitions if d.qualified == "FunctionMocker.GTEST_LOCK_REQUIRED_"]
    text = header("cpp", locked.kind, locked.qualified, ()) + "\n".join(
        source.decode().split("\n")[locked.start_line - 1:locked.end_line])
    assert pretoken_count([text])[0] <= 96
    assert _covering(chunks, locked.start_line, locked.end_line), [(c.start_line, c.end_line) for c in chunks]
    assert uncovered_lines(source, chunks) == []
