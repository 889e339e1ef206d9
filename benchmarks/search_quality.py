"""Search quality on real code, CodeSearchNet style: a function's doc summary is the query, the function the answer.

For each target function the first sentence of its docstring (Python) or doc comment (``/** */`` in
JavaScript/TypeScript/Java, ``//`` in Go, ``///`` in Rust) becomes a query, and the docstring or
comment is removed from a derived copy of the corpus, so the answer cannot be found by matching the
query against its own text. The copy is indexed, every query is run in vector, lexical and hybrid
mode, and MRR@10 and recall@10 are reported. A result counts as a hit when it is in the target's
file and its line range overlaps the function's lines (in the stripped file).

Go doc comments conventionally start with the function's name; that leading name is dropped from
the query, otherwise lexical search would find most answers by the identifier alone.

    python -m benchmarks --scenarios search_quality --corpus DIR [--embedder onnx]
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchmarkError, Context, codeindex_cli

TS_LANGUAGES = {".js": "javascript", ".mjs": "javascript", ".ts": "typescript", ".java": "java", ".go": "go",
                ".rs": "rust"}
FUNCTION_NODES = {
    "javascript": {"function_declaration", "method_definition", "generator_function_declaration"},
    "typescript": {"function_declaration", "method_definition", "generator_function_declaration"},
    "java": {"method_declaration", "constructor_declaration"},
    "go": {"function_declaration", "method_declaration"},
    "rust": {"function_item"},
}
DOC_PREFIX = {"javascript": "/**", "typescript": "/**", "java": "/**", "go": "//", "rust": "///"}
WRAPPERS = {"export_statement"}  # a doc comment sits before `export function f`, not before `function f`
SKIPPABLE = {"attribute_item", "decorator"}  # between a doc comment and its function


@dataclass(slots=True)
class Target:
    """One query: ``doc_lines`` (1-based, inclusive) are removed; ``start``/``end`` span the function."""

    path: str
    language: str
    name: str
    query: str
    start: int
    end: int
    doc_first: int
    doc_last: int
    replace_with: str | None = None  # a line put where the docstring was (Python: ``pass`` if needed)


def first_sentence(text: str) -> str:
    """The summary: text up to the first blank line, tag line (``@param``) or sentence end."""
    lines = []
    for line in text.strip().splitlines():
        line = line.strip()
        if not line or line.startswith(("@", ":param", "Args:", "Returns:", "#")):
            break
        lines.append(line)
    summary = " ".join(lines)
    match = re.search(r"(?<=[.!?])\s", summary)
    return (summary[:match.start()] if match else summary).strip()


def good_query(query: str) -> bool:
    words = query.split()
    return 3 <= len(words) <= 40 and sum(c.isalpha() for c in query) >= 0.6 * len(query) and "TODO" not in query


def python_targets(path: str, source: str) -> Iterator[Target]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node, clean=True)
        first = node.body[0]
        if not doc or not isinstance(first, ast.Expr) or first.end_lineno is None or node.end_lineno is None:
            continue
        if len(node.body) > 1 and node.body[1].lineno <= first.end_lineno:
            continue  # something shares the docstring's last line
        query = first_sentence(doc)
        if not good_query(query):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        indent = " " * first.col_offset
        yield Target(path, "python", node.name, query, start, node.end_lineno, first.lineno, first.end_lineno,
                     replace_with=f"{indent}pass" if len(node.body) == 1 else None)


def _comment_text(raw: str) -> str:
    out = []
    for line in raw.splitlines():
        line = line.strip()
        line = re.sub(r"^(/\*\*+|/{2,3}|\*+/?)", "", line)
        out.append(line.removesuffix("*/").strip())
    return "\n".join(out)


def _last_row(node: Any) -> int:
    """0-based last row a node covers (a Rust line comment ends at column 0 of the next row)."""
    return int(node.end_point[0] - (1 if node.end_point[1] == 0 and node.end_point[0] > node.start_point[0] else 0))


def treesitter_targets(path: str, source: bytes, language: str) -> Iterator[Target]:
    from tree_sitter_language_pack import get_parser

    tree = get_parser(language).parse(source)  # type: ignore[arg-type]
    lines = source.split(b"\n")
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type not in FUNCTION_NODES[language]:
            continue
        name_node = node.child_by_field_name("name")
        if name_node is None or name_node.text is None:
            continue
        name = name_node.text.decode(errors="replace")
        anchor = node.parent if node.parent is not None and node.parent.type in WRAPPERS else node
        sibling = anchor.prev_sibling
        while sibling is not None and sibling.type in SKIPPABLE:
            sibling = sibling.prev_sibling
        comments: list[Any] = []
        next_row = anchor.start_point[0]
        while sibling is not None and "comment" in sibling.type and _last_row(sibling) >= next_row - 1:
            comments.insert(0, sibling)
            next_row = sibling.start_point[0]
            sibling = sibling.prev_sibling
            if DOC_PREFIX[language] == "/**":
                break  # one block comment
        if not comments:
            continue
        raw = b"\n".join(c.text or b"" for c in comments).decode(errors="replace")
        if not raw.lstrip().startswith(DOC_PREFIX[language]) or (language == "rust" and "////" in raw):
            continue
        first_row, last_row = comments[0].start_point[0], _last_row(comments[-1])
        # The comment must own its lines: nothing but whitespace before it, nothing after it.
        before = lines[first_row][:comments[0].start_point[1]]
        after = lines[last_row][comments[-1].end_point[1]:] if comments[-1].end_point[1] > 0 else b""
        if before.strip() or after.strip():
            continue
        query = first_sentence(_comment_text(raw))
        if language == "go" and query.split(" ", 1)[0] == name:
            query = query.split(" ", 1)[1] if " " in query else ""
        if not good_query(query):
            continue
        start = min([anchor.start_point[0], *(s.start_point[0] for s in _skipped(anchor))]) + 1
        yield Target(path, language, name, query, start, _last_row(anchor) + 1, first_row + 1, last_row + 1)


def _skipped(anchor: Any) -> list[Any]:
    out = []
    sibling = anchor.prev_sibling
    while sibling is not None and sibling.type in SKIPPABLE:
        out.append(sibling)
        sibling = sibling.prev_sibling
    return out


def find_targets(root: Path) -> list[Target]:
    """Every candidate (function with a usable summary) under ``root``, in path order."""
    found: list[Target] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.stat().st_size > 500_000:
            continue
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".py":
            found.extend(python_targets(rel, path.read_text(errors="replace")))
        elif path.suffix in TS_LANGUAGES:
            found.extend(treesitter_targets(rel, path.read_bytes(), TS_LANGUAGES[path.suffix]))
    return found


def select(targets: list[Target], n: int, seed: int = 7) -> list[Target]:
    """Up to ``n`` targets spread evenly over languages; queries that occur twice are dropped."""
    counts: dict[str, int] = {}
    for t in targets:
        counts[t.query.lower()] = counts.get(t.query.lower(), 0) + 1
    by_lang: dict[str, list[Target]] = {}
    for t in targets:
        if counts[t.query.lower()] == 1:
            by_lang.setdefault(t.language, []).append(t)
    rng = random.Random(seed)
    for pool in by_lang.values():
        rng.shuffle(pool)
    chosen: list[Target] = []
    while len(chosen) < n and any(by_lang.values()):
        for pool in by_lang.values():
            if pool and len(chosen) < n:
                chosen.append(pool.pop())
    return chosen


def strip_docs(root: Path, chosen: list[Target]) -> list[Target]:
    """Remove the chosen targets' docs from the files under ``root``; return targets with final spans.

    Overlapping doc ranges in one file (nested functions) keep only the first target.
    """
    by_file: dict[str, list[Target]] = {}
    for t in chosen:
        by_file.setdefault(t.path, []).append(t)
    final: list[Target] = []
    for rel, targets in by_file.items():
        path = root / rel
        lines = path.read_bytes().split(b"\n")
        keep: list[Target] = []
        taken: set[int] = set()
        for t in sorted(targets, key=lambda t: t.doc_first):
            rows = set(range(t.doc_first, t.doc_last + 1))
            if not rows & taken:
                keep.append(t)
                taken |= rows
        # Bottom-up so earlier line numbers stay valid while editing.
        for t in sorted(keep, key=lambda t: t.doc_first, reverse=True):
            replacement = [t.replace_with.encode()] if t.replace_with else []
            lines[t.doc_first - 1:t.doc_last] = replacement
        path.write_bytes(b"\n".join(lines))
        for t in keep:
            removed_before = sum((o.doc_last - o.doc_first + 1) - (1 if o.replace_with else 0)
                                 for o in keep if o.doc_last < t.start)
            removed_inside = sum((o.doc_last - o.doc_first + 1) - (1 if o.replace_with else 0)
                                 for o in keep if t.start <= o.doc_first and o.doc_last <= t.end)
            start = t.start - removed_before
            final.append(Target(t.path, t.language, t.name, t.query, start,
                                t.end - removed_before - removed_inside, t.doc_first, t.doc_last, t.replace_with))
    return final


def score(ranks: list[int | None], k: int = 10) -> tuple[float, float]:
    """MRR@k and recall@k of 1-based ranks (None: not in the top k)."""
    if not ranks:
        return 0.0, 0.0
    mrr = sum(1.0 / r for r in ranks if r is not None and r <= k) / len(ranks)
    recall = sum(1 for r in ranks if r is not None and r <= k) / len(ranks)
    return mrr, recall


def rank_of(target: Target, hits: list[Any]) -> int | None:
    for i, hit in enumerate(hits, 1):
        if hit.path == target.path and hit.start_line <= target.end and hit.end_line >= target.start:
            return i
    return None


def run_scenario(ctx: Context) -> dict[str, Any]:
    from codeindex import Index

    n = 120 if ctx.smoke else 600
    root = ctx.fresh_copy("quality")
    chosen = select(find_targets(root), n)
    targets = strip_docs(root, chosen)
    if not targets:
        raise BenchmarkError("no functions with docstrings or doc comments found in the corpus")
    backend = ctx.backend
    codeindex_cli(["rebuild", str(root), "--embedder", backend])
    index = Index(root)
    figures: dict[str, Any] = {"queries": len(targets), "embedder": backend}
    for lang in sorted({t.language for t in targets}):
        figures[f"queries_{lang}"] = sum(t.language == lang for t in targets)
    for mode in ("hybrid", "vector", "lexical"):
        ranks = [rank_of(t, index.search(t.query, k=10, mode=mode)) for t in targets]
        mrr, recall = score(ranks)
        figures[f"mrr10_{mode}"] = mrr
        figures[f"recall10_{mode}"] = recall
        for lang in sorted({t.language for t in targets}):
            lang_ranks = [r for r, t in zip(ranks, targets, strict=True) if t.language == lang]
            figures[f"mrr10_{mode}_{lang}"] = score(lang_ranks)[0]
    return figures
