"""The built-in tree-sitter parser: AST-aware chunks for 17 languages.

Registered like any third-party plugin, through ``codeindex_parsers``. Grammars come from
``tree-sitter-language-pack`` 0.13.0, which bundles them (no download at run time). Tree-sitter
parsers do not pickle, so the parser object holds no state: parsers are created on first use in each
process and kept in a module-level cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from typing import Any

import codeindex
from codeindex.chunking.build import build_chunks, header_allowance
from codeindex.chunking.definitions import find_definitions, unit_counts, wholes
from codeindex.chunking.source import SourceLines
from codeindex.chunking.syntax import LanguageRules, Splitter, node_text
from codeindex.hookspecs import ChunkBudget, LanguageSpec
from codeindex.models import Chunk, Definition

PARSER_VERSION = "1.3.0"
"""1.1: whole definitions (exact counts near the limit), splits at body statements with the signature
as context, balanced groups, no piece of three lines or fewer beside a neighbour it fits with.
1.2: small chunks join their neighbour on exact counts; overflowing runs of dense lines are cut
again as one run (no 3-line tail per group); a unit that fits stays whole when its region has lines
after it too; C++ headers named ``.h`` parse as C++.
1.3: a region too big to be one piece is cut at the children of all its nodes, not only the biggest
(the first branches of an ``else if`` chain were windowed); no piece boundary cuts a definition that
fits (a misparse hid the unit from the splitter: the definitions query still finds it); a small chunk
holding no unit that nothing of its scope takes joins the other neighbour, across a definition boundary."""


def _go_method_name(node: Any, data: bytes) -> str | None:
    """Go methods are named ``Recv.Method`` so they group under their type like methods elsewhere."""
    name = node.child_by_field_name("name")
    receiver = node.child_by_field_name("receiver")
    if name is None:
        return None
    words = re.findall(r"[A-Za-z_]\w*", node_text(receiver, data)) if receiver is not None else []
    recv = words[-1] if words else ""
    if receiver is not None and "[" in node_text(receiver, data):  # (s *Set[T]) → Set
        recv = re.sub(r"\[.*", "", node_text(receiver, data)).split()[-1].lstrip("(*") if words else ""
    method = node_text(name, data)
    return f"{recv}.{method}" if recv else method


def _rust_impl_name(node: Any, data: bytes) -> str | None:
    typ = node.child_by_field_name("type")
    return node_text(typ, data) if typ is not None else None


_JS_UNITS = {
    "function_declaration": "function", "generator_function_declaration": "function",
    "method_definition": "function", "class_declaration": "class", "abstract_class_declaration": "class",
    "interface_declaration": "interface", "enum_declaration": "enum", "module": "module",
    "internal_module": "namespace", "type_alias_declaration": "type",
}
_JS_RULES = LanguageRules(
    units=_JS_UNITS,
    wrappers=frozenset({"export_statement", "decorated_definition", "ambient_declaration"}),
    declarations=frozenset({"lexical_declaration", "variable_declaration"}),
)

RULES: dict[str, LanguageRules] = {
    "python": LanguageRules(
        units={"function_definition": "function", "class_definition": "class"},
        wrappers=frozenset({"decorated_definition"}),
    ),
    "javascript": _JS_RULES,
    "typescript": _JS_RULES,
    "tsx": _JS_RULES,
    "go": LanguageRules(
        units={"function_declaration": "function", "method_declaration": "method",
               "type_declaration": "type"},
        namers={"method_declaration": _go_method_name},
    ),
    "rust": LanguageRules(
        units={"function_item": "function", "struct_item": "struct", "enum_item": "enum",
               "union_item": "struct", "trait_item": "trait", "impl_item": "impl", "mod_item": "module",
               "macro_definition": "macro"},
        namers={"impl_item": _rust_impl_name},
    ),
    "java": LanguageRules(
        units={"class_declaration": "class", "interface_declaration": "interface",
               "enum_declaration": "enum", "record_declaration": "record",
               "annotation_type_declaration": "interface", "method_declaration": "function",
               "constructor_declaration": "function"},
    ),
    "c": LanguageRules(
        units={"function_definition": "function", "struct_specifier": "struct",
               "union_specifier": "struct", "enum_specifier": "enum"},
        wrappers=frozenset({"type_definition", "declaration"}),
    ),
    "cpp": LanguageRules(
        units={"function_definition": "function", "class_specifier": "class",
               "struct_specifier": "struct", "union_specifier": "struct", "enum_specifier": "enum",
               "namespace_definition": "namespace"},
        wrappers=frozenset({"template_declaration", "type_definition", "declaration",
                            "linkage_specification"}),
    ),
    "csharp": LanguageRules(
        units={"class_declaration": "class", "interface_declaration": "interface",
               "struct_declaration": "struct", "enum_declaration": "enum", "record_declaration": "record",
               "namespace_declaration": "namespace", "method_declaration": "function",
               "constructor_declaration": "function", "local_function_statement": "function"},
    ),
    "ruby": LanguageRules(
        units={"method": "function", "singleton_method": "function", "class": "class",
               "module": "module", "singleton_class": "class"},
    ),
    "php": LanguageRules(
        units={"function_definition": "function", "method_declaration": "function",
               "class_declaration": "class", "interface_declaration": "interface",
               "trait_declaration": "trait", "enum_declaration": "enum"},
        attached=frozenset({"attribute_list"}),
    ),
    "kotlin": LanguageRules(
        units={"function_declaration": "function", "class_declaration": "class",
               "object_declaration": "object", "companion_object": "object"},
    ),
    "swift": LanguageRules(
        units={"function_declaration": "function", "class_declaration": "class",
               "protocol_declaration": "protocol", "extension_declaration": "extension",
               "init_declaration": "function"},
    ),
    "scala": LanguageRules(
        units={"function_definition": "function", "class_definition": "class",
               "object_definition": "object", "trait_definition": "trait", "enum_definition": "enum"},
    ),
    "bash": LanguageRules(units={"function_definition": "function"}),
    "lua": LanguageRules(units={"function_declaration": "function"}),
}
"""Per language: unit node types and their kinds. Containers need no rule: an oversize unit is split
at its children, and units met there (methods in a class body) are named under it."""

SPECS: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", (".py", ".pyi", ".pyw"), ("SConstruct", "SConscript"), ("python", "python3")),
    LanguageSpec("javascript", (".js", ".mjs", ".cjs", ".jsx"), (), ("node", "nodejs")),
    LanguageSpec("typescript", (".ts", ".mts", ".cts")),
    LanguageSpec("tsx", (".tsx",)),
    LanguageSpec("go", (".go",)),
    LanguageSpec("rust", (".rs",)),
    LanguageSpec("java", (".java",)),
    LanguageSpec("c", (".c", ".h")),
    LanguageSpec("cpp", (".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp", ".inl")),
    LanguageSpec("csharp", (".cs",)),
    LanguageSpec("ruby", (".rb", ".rake", ".gemspec"), ("Rakefile", "Gemfile", "Guardfile"), ("ruby",)),
    LanguageSpec("php", (".php", ".phtml"), (), ("php",)),
    LanguageSpec("kotlin", (".kt", ".kts")),
    LanguageSpec("swift", (".swift",)),
    LanguageSpec("scala", (".scala", ".sc")),
    LanguageSpec("bash", (".sh", ".bash", ".zsh"), (".bashrc", ".bash_profile", ".zshrc", ".profile"),
                 ("sh", "bash", "zsh", "dash", "ksh")),
    LanguageSpec("lua", (".lua",), (), ("lua",)),
)

_CPP_MARKERS = re.compile(rb"^[ \t]*(?:namespace(?:[ \t]+\w+)?[ \t]*\{|template[ \t]*<|class[ \t]+\w+[^;\n]*(?:\{|$)"
                          rb"|(?:public|private|protected)[ \t]*:|using[ \t]+namespace\b)", re.MULTILINE)
"""Lines only C++ has: a ``.h`` holding one is a C++ header (googletest's are), parsed as C++."""


def grammar_for(language: str, path: str, source: bytes) -> str:
    """The grammar (and rules) to parse a file with: its language's, except C++ headers named ``.h``.

    ``.h`` is C by extension; a C++ header parsed as C turns ``namespace x {`` into a function and
    splits the classes in it. The chunks keep the file's language; only the parse changes.
    """
    if language == "c" and path.endswith(".h") and _CPP_MARKERS.search(source):
        return "cpp"
    return language


_parsers: dict[str, Any] = {}
_queries: dict[str, Any] = {}
_parsers_lock = threading.Lock()


def _parser_for(language: str) -> Any:
    """A tree-sitter parser for ``language``, created once per process (and thread-safe)."""
    parser = _parsers.get(language)
    if parser is None:
        from tree_sitter_language_pack import get_parser

        with _parsers_lock:
            parser = _parsers.get(language)
            if parser is None:
                parser = _parsers[language] = get_parser(language)  # type: ignore[arg-type]
    return parser


def _unit_query(language: str) -> Any:
    """A query capturing every node that may be a unit (unit and declaration types the grammar has)."""
    query = _queries.get(language)
    if query is None:
        from tree_sitter import Query, QueryError
        from tree_sitter_language_pack import get_language

        rules = RULES[language]
        grammar = get_language(language)  # type: ignore[arg-type]
        patterns = []
        for node_type in sorted({*rules.units, *rules.declarations}):
            try:
                Query(grammar, f"({node_type}) @unit")
            except QueryError:  # a type this grammar version does not have
                continue
            patterns.append(f"({node_type}) @unit")
        with _parsers_lock:
            query = _queries[language] = Query(grammar, " ".join(patterns))
    return query


def _candidates(language: str, root: Any) -> list[Any]:
    from tree_sitter import QueryCursor

    return list(QueryCursor(_unit_query(language)).captures(root).get("unit", ()))


def _rules_fingerprint(rules: LanguageRules) -> str:
    data = {"units": dict(sorted(rules.units.items())), "wrappers": sorted(rules.wrappers),
            "declarations": sorted(rules.declarations), "values": sorted(rules.function_values),
            "attached": sorted(rules.attached), "namers": sorted(rules.namers)}
    return json.dumps(data, sort_keys=True)


@functools.cache
def _config_hash(language: str) -> str:
    """The rules' hash, once per language and process: the parse task asks for it for every file."""
    rules = RULES.get(language)
    if rules is None:
        raise ValueError(f"treesitter parser has no rules for language {language!r}")
    fingerprint = _rules_fingerprint(rules)
    if language == "c":  # C++ headers named .h parse with the C++ rules (``grammar_for``)
        fingerprint += _rules_fingerprint(RULES["cpp"])
    return hashlib.blake2b(fingerprint.encode(), digest_size=8).hexdigest()


class TreeSitterParser:
    """AST-aware chunker. Stateless, so it pickles cheaply to Dask workers."""

    name = "treesitter"
    version = PARSER_VERSION

    def languages(self) -> Sequence[LanguageSpec]:
        return SPECS

    def config_hash(self, language: str) -> str:
        return _config_hash(language)

    def chunk(self, source: bytes, path: str, language: str, budget: ChunkBudget) -> list[Chunk]:
        return self.chunk_with_definitions(source, path, language, budget)[0]

    def chunk_with_definitions(self, source: bytes, path: str, language: str,
                               budget: ChunkBudget) -> tuple[list[Chunk], list[Definition]]:
        rules = RULES.get(language)
        if rules is None:
            raise ValueError(f"treesitter parser has no rules for language {language!r}")
        if budget.max_tokens < 16:
            raise ValueError(f"token budget {budget.max_tokens} is too small to chunk code")
        grammar = grammar_for(language, path, source)
        rules = RULES[grammar]
        lines = SourceLines.from_bytes(source)
        root = _parser_for(grammar).parse(source).root_node
        limit = max(8, budget.max_tokens - header_allowance(language, ()))
        splitter = Splitter(rules, lines, limit, budget.max_tokens)
        found = find_definitions(_candidates(grammar, root), splitter.unit_of, rules.wrappers)
        splitter.counts = unit_counts(found, lines, limit, language, budget.count_tokens)
        splitter.wholes = wholes(found, splitter.counts, lines, limit, budget.max_tokens)
        pieces = splitter.split(root)
        chunks = build_chunks(pieces, lines, path, language, budget,
                              resplit=lambda first, last, limit: splitter.resplit(root, first, last, limit),
                              join_small=True)
        return chunks, [definition for _, definition in found]




@codeindex.hookimpl
def codeindex_parsers() -> list[TreeSitterParser]:
    return [TreeSitterParser()]
