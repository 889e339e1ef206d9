"""Chunking properties: coverage of every non-blank line, the token budget, and hostile input."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeindex.chunking.build import JOIN_ROUNDS
from codeindex.chunking.pieces import Scope, merge, windows
from codeindex.chunking.source import SourceLines, module_path
from codeindex.hookspecs import ChunkBudget
from codeindex.parsers.text import TextParser
from codeindex.parsers.treesitter import SPECS, TreeSitterParser
from tests.chunk_helpers import budget, minilm_budget, pretoken_count, uncovered_lines

PARSER = TreeSitterParser()

# ---------------------------------------------------------------- pure pieces


def test_module_path() -> None:
    assert module_path("pkg/sub/mod.py") == "pkg.sub.mod"
    assert module_path("./a/b.test.ts") == "a.b.test"
    assert module_path("Makefile") == "Makefile"


def test_windows_partition_lines_within_limit() -> None:
    lines = SourceLines.from_bytes(b"\n".join(b"word " * (i % 7 + 1) for i in range(50)))
    spans = windows(0, 49, lines, 20)
    assert spans[0][0] == 0 and spans[-1][1] == 49
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(spans))
    assert all(lines.estimate(a, b) <= 20 for a, b in spans if a < b)


def test_merge_joins_small_neighbours_and_keeps_solo_pieces_apart() -> None:
    from codeindex.chunking.pieces import Piece

    lines = SourceLines.from_bytes(b"a = 1\nb = 2\ndef f(): pass\nc = compute(a, b)\n")
    pieces = [Piece(0, 0, "module", "", ()), Piece(1, 1, "module", "", ()),
              Piece(2, 2, "function", "f", (), units=1, solo=True), Piece(3, 3, "module", "", ())]
    merged = merge(pieces, lines, 100, Scope())
    expected = [(0, 1, "module"), (2, 2, "function"), (3, 3, "module")]
    assert [(p.first, p.last, p.kind) for p in merged] == expected
    one_unit = merge([pieces[1], Piece(2, 2, "function", "f", (), units=1)], lines, 100, Scope())
    assert [(p.first, p.last, p.kind, p.name) for p in one_unit] == [(1, 2, "function", "f")]


def test_keep_whole_takes_a_cut_definition_out_of_the_pieces_around_it() -> None:
    from codeindex.chunking.pieces import Piece, Whole, keep_whole

    pieces = [Piece(0, 4, "function", "f", ("def f():",), head=True), Piece(5, 9, "function", "f", ("def f():",)),
              Piece(10, 14, "module", "", ())]
    wholes = [Whole(3, 7, "function", "f.g"), Whole(4, 6, "function", "f.g.h"), Whole(8, 20, "class", "C")]
    out = keep_whole(pieces, wholes)
    assert [(p.first, p.last, p.name, p.units) for p in out] == [
        (0, 2, "f", 0), (3, 7, "f.g", 1), (8, 9, "f", 0), (10, 14, "", 0)]
    assert out[0].head and not out[2].head and out[1].context == ("def f():",)
    assert keep_whole(pieces, [Whole(0, 9, "function", "f")])[0] == Piece(0, 9, "function", "f", ("def f():",),
                                                                         units=1, solo=True)
    assert keep_whole(pieces, [Whole(1, 3, "function", "f.g")]) == pieces  # not cut: nothing to do


# ---------------------------------------------------------------- coverage

_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@st.composite
def python_ish(draw: st.DrawFn) -> str:
    """Loosely Python-shaped text: defs, classes, statements, junk, odd indentation."""
    out = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["def", "class", "stmt", "blank", "junk", "long"]))
        indent = " " * draw(st.sampled_from([0, 0, 4, 8, 3]))
        name = draw(_names)
        if kind == "def":
            out.append(f"{indent}def {name}(x):")
            out += [f"{indent}    {name} = x + {i}" for i in range(draw(st.integers(0, 40)))]
        elif kind == "class":
            out.append(f"{indent}class {name}:")
        elif kind == "stmt":
            out.append(f"{indent}{name} = ({name}, [1, 2])")
        elif kind == "blank":
            out.append("")
        elif kind == "junk":
            junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
            out.append(indent + draw(junk))
        else:
            out.append(indent + " + ".join([name] * draw(st.integers(50, 300))))
    return "\n".join(out)


@settings(max_examples=60, deadline=None)
@given(python_ish(), st.sampled_from([32, 64, 256]))
def test_every_nonblank_line_is_covered(text: str, max_tokens: int) -> None:
    source = text.encode("utf-8", errors="replace")
    chunks = PARSER.chunk(source, "gen/mod.py", "python", budget(max_tokens))
    assert uncovered_lines(source, chunks) == []
    for c in chunks:
        assert 0 <= c.start_byte <= c.end_byte <= len(source)
        assert 1 <= c.start_line <= c.end_line
    assert sum(c.n_tokens <= max_tokens for c in chunks) >= 0.95 * len(chunks)


def _corpus_files() -> list[Path]:
    root = os.environ.get("CODEINDEX_TEST_CORPUS")
    if not root:
        return []
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@pytest.mark.slow
def test_corpus_files_are_fully_covered() -> None:
    files = _corpus_files()
    if not files:
        pytest.skip("set CODEINDEX_TEST_CORPUS to a directory of source files to run this test")
    ext = {e: s.name for s in SPECS for e in s.extensions}
    text = TextParser()
    for path in files:
        source = path.read_bytes()
        if b"\0" in source[:8192]:
            continue
        language = ext.get(path.suffix)
        parser = PARSER if language else text
        chunks = parser.chunk(source, path.name, language or "text", budget())
        assert uncovered_lines(source, chunks) == [], path


# ---------------------------------------------------------------- budget


def test_real_minilm_budget_is_respected() -> None:
    real = minilm_budget(256)
    for sample in sorted((Path(__file__).parent / "scenarios" / "languages").iterdir()):
        ext = {e: s.name for s in SPECS for e in s.extensions}
        source = sample.read_bytes() * 6  # long enough to need splitting
        chunks = PARSER.chunk(source, sample.name, ext[sample.suffix], real)
        assert chunks and all(c.n_tokens <= 256 for c in chunks), sample.name
        assert [c.n_tokens for c in chunks] == real.count_tokens([c.embed_text for c in chunks])
        assert uncovered_lines(source, chunks) == []


def test_tokenizer_is_called_in_batches() -> None:
    calls: list[int] = []
    inner = budget(128)

    def counting(texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return inner.count_tokens(texts)

    source = (Path(__file__).parent / "scenarios" / "languages" / "sample.py").read_bytes() * 10
    chunks = PARSER.chunk(source, "a.py", "python", ChunkBudget(128, counting))
    # unit counts, the chunks, then one call per round of small-chunk joins (each join counted once:
    # the joins make fewer chunks than were counted)
    assert len(calls) <= 2 + JOIN_ROUNDS and sum(calls) <= 3 * len(chunks)


# ---------------------------------------------------------------- hostile input


def test_syntax_errors_still_chunk() -> None:
    source = b"def ok():\n    return 1\n\ndef broken(:\n    x = = 2\n    )))\nclass C\n    pass\n\ny = 3\n"
    chunks = PARSER.chunk(source, "bad.py", "python", budget(32))
    assert uncovered_lines(source, chunks) == []
    assert any(c.symbol == "bad.ok" for c in chunks)


def test_invalid_utf8_keeps_byte_spans() -> None:
    source = b"def f():\n    s = '\xff\xfe caf\xc3\xa9'\n    return s\n\n# \x80\x81 trailing\nx = 1\n"
    chunks = PARSER.chunk(source, "enc.py", "python", budget())
    assert uncovered_lines(source, chunks) == []
    for c in chunks:
        assert source[c.start_byte:c.end_byte].decode("utf-8", errors="replace") == c.text


def test_deep_nesting_does_not_crash() -> None:
    depth = 3000
    source = b"x = " + b"[" * depth + b"1" + b"]" * depth + b"\n"
    source += b"".join(b"    " * 0 + b"if a:\n" + b"    " * i + b"pass\n" for i in range(1, 2))
    nested = b"".join(b"  " * i + b"{\n" for i in range(depth))
    nested += b"".join(b"  " * i + b"}\n" for i in range(depth))
    for lang, src in (("python", source), ("javascript", b"f = () => " + nested)):
        chunks = PARSER.chunk(src, "deep.x", lang, budget(64))
        assert uncovered_lines(src, chunks) == []


def test_minified_line_is_split_by_characters() -> None:
    line = b"var a=" + b"+".join(b"f%d(x,y)" % i for i in range(6000)) + b";"
    assert len(line) > 50_000
    chunks = PARSER.chunk(line + b"\n", "min.js", "javascript", budget(256))
    assert len(chunks) > 10 and all(c.start_line == c.end_line == 1 for c in chunks)
    assert b"".join(line[c.start_byte:c.end_byte] for c in chunks) == line
    assert sum(c.n_tokens <= 256 for c in chunks) >= 0.99 * len(chunks)


def test_empty_and_blank_files() -> None:
    assert PARSER.chunk(b"", "e.py", "python", budget()) == []
    assert PARSER.chunk(b"\n\n   \n", "e.py", "python", budget()) == []


# ---------------------------------------------------------------- text parser


def test_markdown_sections_follow_headings_not_fenced_hashes() -> None:
    source = b"Intro.\n\n# Guide\n\ntext\n\n## Install\n\n```\n# not a heading\n```\n\n## Use\nrun\n"
    chunks = TextParser().chunk(source, "docs/guide.md", "markdown", budget(16))
    symbols = [c.symbol for c in chunks]
    assert "docs.guide.Guide / Install" in symbols and "docs.guide.Guide / Use" in symbols
    assert not any("not a heading" in s for s in symbols)
    assert uncovered_lines(source, chunks) == []


@pytest.mark.parametrize(("language", "source", "keys"), [
    ("yaml", b"name: x\nitems:\n  - a\n  - b\n" + b"other: 1\n" * 1, ["name", "items", "other"]),
    ("toml", b'title = "x"\n[tool.a]\nb = 1\n[[bin]]\nname = "c"\n', ["title", "tool.a", "bin"]),
    ("json", b'{\n  "a": 1,\n  "b": {"x": [1, 2]},\n  "c": "q:"\n}\n', ["a", "b", "c"]),
])
def test_config_files_chunk_by_top_level_key(language: str, source: bytes, keys: list[str]) -> None:
    chunks = TextParser().chunk(source, "conf.x", language, budget(16 if language != "json" else 20))
    assert list(dict.fromkeys(c.symbol.removeprefix("conf.") for c in chunks if c.kind == "key")) == keys
    assert uncovered_lines(source, chunks) == []


def test_plain_text_windows() -> None:
    source = b"\n".join(b"line %d of some prose" % i for i in range(200))
    chunks = TextParser().chunk(source, "notes.txt", "text", budget(64))
    assert len(chunks) > 3 and {c.kind for c in chunks} == {"window"}
    assert uncovered_lines(source, chunks) == []
    assert all(c.n_tokens <= 64 for c in chunks)


# ---------------------------------------------------------------- no tiny chunks (exact counts)


def _weighted_budget(max_tokens: int, weight: dict[str, int]) -> ChunkBudget:
    """Like ``budget`` but some words cost more tokens than the estimate says (dense hex, macros)."""

    def count(texts):  # type: ignore[no-untyped-def]
        base = pretoken_count(texts)
        return [n + sum(t.count(w) * extra for w, extra in weight.items()) for n, t in zip(base, texts, strict=True)]

    return ChunkBudget(max_tokens, count)


def test_dense_table_is_regrouped_as_one_run_not_cut_group_by_group() -> None:
    # every line costs ~3x its estimate: the first groups overflow, and cut one by one each left a
    # short tail; cut again as one run, only the table's last chunk may be short
    rows = "\n".join("    XX, XX, XX, XX, XX, XX," for _ in range(120))
    source = f"static const int table[] = {{\n{rows}\n}};\n".encode()
    chunks = PARSER.chunk(source, "t.c", "c", _weighted_budget(192, {"XX": 4}))
    assert uncovered_lines(source, chunks) == []
    assert all(c.n_tokens <= 192 for c in chunks)
    short = [c for c in chunks[:-1] if c.end_line - c.start_line + 1 <= 3]
    assert short == []


def test_small_chunk_joins_its_neighbour_when_the_exact_count_fits() -> None:
    # prose costs fewer tokens than the estimate: the comment and the function fit together by the
    # exact count though not by the estimate, so they are one chunk
    prose = "\n".join("# " + "a" * 70 for _ in range(3))
    body = "\n".join(f"    x{i} = {i}" for i in range(12))
    source = f"def before():\n{body}\n\n\nstray = 1\n{prose}\n\n\ndef after():\n{body}\n".encode()
    chunks = PARSER.chunk(source, "m.py", "python", budget(96))
    assert uncovered_lines(source, chunks) == []
    assert all(c.n_tokens <= 96 for c in chunks)
    assert not [c for c in chunks if c.end_line - c.start_line + 1 <= 3], [(c.start_line, c.end_line) for c in chunks]


def test_doc_comment_parted_from_its_function_joins_the_function_before() -> None:
    # ``Close`` fits alone but not with its comment, so the comment parts from it; the function
    # before has room for it. The comment is no whole definition: it joins across the boundary
    # instead of staying a fragment, and the chunk keeps ``Flush``'s identity.
    body = "\n".join(f"\tif err := w.files[{i}].Sync(); err != nil {{\n\t\treturn err\n\t}}" for i in range(2))
    source = ("package p\n\nfunc (w *Writer) Flush() {\n\tw.buf.Flush()\n\tw.n = 0\n}\n\n"
              "// Close syncs every file of the writer and reports the first error\n// the file system returned.\n"
              f"func (w *Writer) Close() error {{\n{body}\n\treturn nil\n}}\n").encode()
    chunks = PARSER.chunk(source, "w.go", "go", budget(80))
    assert [(c.start_line, c.end_line, c.symbol) for c in chunks] == [(1, 9, "w.Writer.Flush"),
                                                                      (10, 18, "w.Writer.Close")]
    assert all(c.n_tokens <= 80 for c in chunks)


def test_tail_of_a_split_method_joins_the_next_function_under_that_functions_header() -> None:
    # the method's last piece is two lines and the piece before it is full: it joins the function
    # after the class, whose header names that function alone (not the method the tail came from)
    body = "\n".join(f"        total = total + self.values[{i}] * {i}" for i in range(6))
    source = (f"class Report:\n    def total(self):\n        total = 0\n{body}\n        return total\n\n\n"
              "def empty_report():\n    return Report()\n").encode()
    chunks = PARSER.chunk(source, "r.py", "python", budget(64))
    assert uncovered_lines(source, chunks) == []
    (after,) = [c for c in chunks if "def empty_report" in c.text]
    assert after.symbol == "r.empty_report" and "self.values[5]" in after.text
    assert after.embed_text == "python function empty_report\n" + after.text
