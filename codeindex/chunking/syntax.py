"""Syntax-aware splitting: a parse tree and per-language rules → pieces that partition the lines.

Works on any object shaped like a tree-sitter node (``NodeLike``), so the logic is tested with
hand-built trees. Children of a node are grouped into line-disjoint clusters; each cluster owns the
lines up to the next cluster, so the regions partition the file and no line is ever lost. A region
holding one *unit* (function, class, ...) keeps it whole if it fits the budget and otherwise splits
it at its children, recursively; depth is bounded and a region without usable structure falls back to
line windows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from codeindex.chunking.pieces import SOLO_SHARE, Piece, Scope, gap_piece, merge, windows
from codeindex.chunking.source import SourceLines

MAX_DEPTH = 120
"""Deeper than this, a region is cut into line windows instead of followed down the tree."""

CLASSLIKE = frozenset({"class", "struct", "interface", "trait", "impl", "enum", "object", "record",
                       "protocol", "extension"})
"""Kinds whose member functions are methods (not modules or namespaces)."""


class NodeLike(Protocol):
    """The part of ``tree_sitter.Node`` the splitter uses."""

    type: str
    start_byte: int
    end_byte: int

    @property
    def start_point(self) -> Any: ...
    @property
    def end_point(self) -> Any: ...
    @property
    def children(self) -> Sequence[Any]: ...
    @property
    def named_children(self) -> Sequence[Any]: ...
    def child_by_field_name(self, name: str, /) -> Any: ...


NameFn = Callable[[Any, bytes], "str | None"]


@dataclass(frozen=True, slots=True)
class LanguageRules:
    """Which nodes are units and how to name them, for one language."""

    units: Mapping[str, str]
    """Node type → kind (``function``, ``class``, ...); in a class-like unit, ``function`` → ``method``."""
    wrappers: frozenset[str] = frozenset()
    """Nodes that span a unit found among their named children (decorators, ``export``, templates)."""
    declarations: frozenset[str] = frozenset()
    """Variable declarations that are units when a declarator's value is a function or class."""
    function_values: frozenset[str] = frozenset({"arrow_function", "function_expression", "function",
                                                 "class", "class_expression", "generator_function"})
    attached: frozenset[str] = frozenset({"attribute_item", "decorator", "annotation"})
    """Besides comments: nodes that belong to the unit right after them."""
    namers: Mapping[str, NameFn] = field(default_factory=dict)
    """Node type → special name function (e.g. Go methods named ``Recv.method``)."""


@dataclass(frozen=True, slots=True)
class Unit:
    node: Any
    kind: str
    name: str


_IDENT_TYPES = ("identifier", "field_identifier", "type_identifier", "simple_identifier", "constant",
                "name", "property_identifier", "qualified_identifier", "scoped_identifier",
                "scope_resolution", "destructor_name", "operator_name", "word", "namespace_identifier",
                "dot_index_expression", "method_index_expression", "qualified_name")


def node_text(node: Any, data: bytes) -> str:
    return data[node.start_byte:node.end_byte].decode("utf-8", errors="replace")


def default_name(node: Any, data: bytes) -> str | None:
    """The unit's own name: the ``name`` field, a C declarator chain, an impl's type, or an identifier."""
    found = node.child_by_field_name("name")
    if found is not None:
        return node_text(found, data)
    declarator = node.child_by_field_name("declarator")
    for _ in range(16):  # C/C++: pointer → function → qualified name
        if declarator is None:
            break
        if declarator.type in _IDENT_TYPES:
            return node_text(declarator, data)
        inner = declarator.child_by_field_name("declarator")
        if inner is None:
            inner = next((c for c in declarator.named_children if c.type in _IDENT_TYPES), None)
        declarator = inner
    typ = node.child_by_field_name("type")
    if typ is not None:
        return node_text(typ, data)
    for child in node.named_children:
        if child.type in _IDENT_TYPES:
            return node_text(child, data)
    for child in node.named_children:  # Go type_declaration → type_spec name
        inner = child.child_by_field_name("name")
        if inner is not None:
            return node_text(inner, data)
    return None


_SPACES = re.compile(r"\s+")
_GENERIC_ARGS = re.compile(r"<[^<>]*>")
_SEPARATORS = re.compile(r"::|:|\\")


def _clean_name(name: str) -> str:
    """One line, no generic arguments, ``.`` as separator: ``Ring<T>`` → ``Ring``, ``A::b`` → ``A.b``."""
    name = _SPACES.sub(" ", name).strip()
    for _ in range(4):
        name = _GENERIC_ARGS.sub("", name)
    name = _SEPARATORS.sub(".", name).strip(". ")
    return name[:80]


class Splitter:
    """Splits one parsed file. Holds per-file state; create one per ``chunk`` call."""

    def __init__(self, rules: LanguageRules, lines: SourceLines, limit: int) -> None:
        self.rules = rules
        self.lines = lines
        self.limit = limit

    # ------------------------------------------------------------------ classification
    def unit_of(self, node: Any) -> Unit | None:
        rules = self.rules
        kind = rules.units.get(node.type)
        if kind is not None and node.type.endswith("_specifier") and node.child_by_field_name("body") is None:
            kind = None  # C `struct point *p = ...` uses a type; only a definition with a body is a unit
        if kind is not None:
            namer = rules.namers.get(node.type, default_name)
            name = namer(node, self.lines.data) or default_name(node, self.lines.data) or node.type
            return Unit(node, kind, _clean_name(name))
        if node.type in rules.wrappers:
            for child in node.named_children:
                inner = self.unit_of(child)
                if inner is not None:
                    return Unit(node, inner.kind, inner.name)
        if node.type in rules.declarations:
            for child in node.named_children:
                value = child.child_by_field_name("value")
                name = child.child_by_field_name("name")
                if value is not None and name is not None and value.type in rules.function_values:
                    kind = "class" if "class" in value.type else "function"
                    return Unit(node, kind, _clean_name(node_text(name, self.lines.data)))
        return None

    def _attached(self, node: Any) -> bool:
        return "comment" in node.type or node.type in self.rules.attached

    def _cluster_unit(self, nodes: Sequence[Any]) -> Unit | None:
        main = [n for n in nodes if getattr(n, "is_named", True) and not self._attached(n)]
        if len(main) != 1:
            return None
        return self.unit_of(main[0])

    # ------------------------------------------------------------------ splitting
    def split(self, root: Any) -> list[Piece]:
        """Pieces covering every line of the file."""
        last = len(self.lines) - 1
        return self.split_children(root, 0, last, Scope(), 0)

    def split_children(self, node: Any, first: int, last: int, scope: Scope, depth: int) -> list[Piece]:
        """Pieces covering lines ``first..last``, cut where ``node``'s children start."""
        if depth > MAX_DEPTH:
            return self._windows(first, last, scope)
        clusters = self._clusters(node.children, first, last)
        if not clusters:
            return self._windows(first, last, scope)
        pieces: list[Piece] = []
        for i, (nodes, _start, _end) in enumerate(clusters):
            r_first = first if i == 0 else clusters[i][1]
            r_last = last if i == len(clusters) - 1 else clusters[i + 1][1] - 1
            pieces.extend(self.region(nodes, r_first, r_last, scope, depth))
        return merge(pieces, self.lines, self.limit, scope)

    def region(self, nodes: Sequence[Any], first: int, last: int, scope: Scope, depth: int) -> list[Piece]:
        est = self.lines.estimate(first, last)
        unit = self._cluster_unit(nodes)
        if unit is not None:
            in_class = bool(scope.name) and scope.kind in CLASSLIKE
            kind = "method" if unit.kind == "function" and in_class else unit.kind
            name = f"{scope.name}.{unit.name}" if scope.name else unit.name
            if est <= self.limit:
                return [Piece(first, last, kind, name, scope.context_for(first), units=1,
                              solo=est * SOLO_SHARE > self.limit)]
            target = self._body_holder(unit.node)
            sig_line = target.start_point[0]
            signature = self.lines.line_text(sig_line).strip()
            inner = Scope(kind=kind, name=name, context=(*scope.context, signature),
                          outer_context=scope.context_for(first), first_line=sig_line)
            parts = self.split_children(target, first, last, inner, depth + 1)
            return [p if p.solo else _solo(p) for p in parts]
        if est <= self.limit or first == last:
            return [gap_piece(first, last, scope)]
        biggest = max(nodes, key=lambda n: n.end_point[0] - n.start_point[0])
        if biggest.end_point[0] > biggest.start_point[0] and biggest.children:
            return self.split_children(biggest, first, last, scope, depth + 1)
        return self._windows(first, last, scope)

    def _body_holder(self, node: Any) -> Any:
        """For a wrapper (``export``, decorators), the node whose children hold the unit's body."""
        if node.type in self.rules.wrappers:
            for child in node.named_children:
                if self.unit_of(child) is not None:
                    return self._body_holder(child)
        return node

    def _clusters(self, children: Sequence[Any], first: int, last: int) -> list[tuple[list[Any], int, int]]:
        """Children grouped so that no two groups share a line: ``(nodes, start_line, end_line)``."""
        clusters: list[tuple[list[Any], int, int]] = []
        for child in children:
            start, end = child.start_point[0], child.end_point[0]
            if end > start and child.end_point[1] == 0:
                end -= 1  # ends at the start of the next line: really ends on the line before
            start, end = max(start, first), min(end, last)
            if start > end:
                continue
            if clusters and start <= clusters[-1][2]:
                nodes, c_start, c_end = clusters[-1]
                nodes.append(child)
                clusters[-1] = (nodes, c_start, max(c_end, end))
            else:
                clusters.append(([child], start, end))
        return self._attach_forward(clusters)

    def _attach_forward(self, clusters: list[tuple[list[Any], int, int]]) -> list[tuple[list[Any], int, int]]:
        """Comments and attributes right above a unit join the unit's cluster."""
        out: list[tuple[list[Any], int, int]] = []
        pending: tuple[list[Any], int, int] | None = None
        for cluster in clusters:
            nodes, start, end = cluster
            # Checked on the new nodes only: a pending cluster is all attached already. (Re-checking the
            # merged list made a long run of line comments quadratic.)
            only_attached = all(self._attached(n) for n in nodes)
            if pending is not None:
                p_nodes, p_start, p_end = pending
                if start == p_end + 1 and (only_attached or self._cluster_unit(nodes) is not None):
                    cluster = (p_nodes + nodes, p_start, end)
                else:
                    out.append(pending)
                pending = None
            if only_attached:
                pending = cluster
            else:
                out.append(cluster)
        if pending is not None:
            out.append(pending)
        return out

    def _windows(self, first: int, last: int, scope: Scope) -> list[Piece]:
        return [_solo(gap_piece(a, b, scope)) for a, b in windows(first, last, self.lines, self.limit)]


def _solo(piece: Piece) -> Piece:
    from dataclasses import replace

    return replace(piece, solo=True)
