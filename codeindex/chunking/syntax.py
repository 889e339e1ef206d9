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


@dataclass(slots=True)
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
    if name.isidentifier():  # the common case, which none of the rewrites below touch
        return name[:80]
    name = _SPACES.sub(" ", name).strip()
    for _ in range(4):
        name = _GENERIC_ARGS.sub("", name)
    name = _SEPARATORS.sub(".", name).strip(". ")
    return name[:80]


class _Cluster:
    """Children of one node that share lines (``start..end``), and what ``region`` asks of them.

    Filled while the children are walked once: the attached-only flag, the one main node (a named
    child that is not a comment or attribute) and, computed on demand and kept, the unit it makes.
    """

    __slots__ = ("end", "main", "n_main", "nodes", "only_attached", "start", "unit", "unit_known")

    def __init__(self, node: Any, start: int, end: int, attached: bool, main: bool) -> None:
        self.nodes = [node]
        self.start = start
        self.end = end
        self.only_attached = attached
        self.main = node if main else None
        self.n_main = 1 if main else 0
        self.unit: Unit | None = None
        self.unit_known = False


class Splitter:
    """Splits one parsed file. Holds per-file state; create one per ``chunk`` call.

    It runs over every node it descends into, so the hot paths read node attributes once each and
    keep per-cluster facts instead of recomputing them (see ``_Cluster``).
    """

    def __init__(self, rules: LanguageRules, lines: SourceLines, limit: int) -> None:
        self.rules = rules
        self.lines = lines
        self.limit = limit

    # ------------------------------------------------------------------ classification
    def unit_of(self, node: Any) -> Unit | None:
        rules = self.rules
        typ = node.type
        kind = rules.units.get(typ)
        if kind is not None and typ.endswith("_specifier") and node.child_by_field_name("body") is None:
            kind = None  # C `struct point *p = ...` uses a type; only a definition with a body is a unit
        if kind is not None:
            namer = rules.namers.get(typ, default_name)
            name = namer(node, self.lines.data) or default_name(node, self.lines.data) or typ
            return Unit(node, kind, _clean_name(name))
        if typ in rules.wrappers:
            for child in node.named_children:
                inner = self.unit_of(child)
                if inner is not None:
                    return Unit(node, inner.kind, inner.name)
        if typ in rules.declarations:
            for child in node.named_children:
                value = child.child_by_field_name("value")
                name = child.child_by_field_name("name")
                if value is not None and name is not None and value.type in rules.function_values:
                    kind = "class" if "class" in value.type else "function"
                    return Unit(node, kind, _clean_name(node_text(name, self.lines.data)))
        return None

    def _attached(self, node: Any) -> bool:
        return "comment" in node.type or node.type in self.rules.attached

    def _cluster_unit(self, cluster: _Cluster) -> Unit | None:
        """The unit a cluster holds: its one main node's, if it has exactly one and that is a unit."""
        if not cluster.unit_known:
            cluster.unit = self.unit_of(cluster.main) if cluster.n_main == 1 else None
            cluster.unit_known = True
        return cluster.unit

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
        est = self.lines.est_prefix
        limit = self.limit
        n = len(clusters)
        for i, cluster in enumerate(clusters):
            r_first = first if i == 0 else cluster.start
            r_last = last if i == n - 1 else clusters[i + 1].start - 1
            if est[r_last + 1] - est[r_first] <= limit and self._cluster_unit(cluster) is None:
                # what ``region`` returns for a small region without a unit, without the call
                pieces.append(Piece(r_first, r_last, scope.kind, scope.name, scope.context_for(r_first)))
            else:
                pieces.extend(self.region(cluster, r_first, r_last, scope, depth))
        return merge(pieces, self.lines, limit, scope)

    def region(self, cluster: _Cluster, first: int, last: int, scope: Scope, depth: int) -> list[Piece]:
        est = self.lines.estimate(first, last)
        unit = self._cluster_unit(cluster)
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
        biggest = max(cluster.nodes, key=lambda n: n.end_point[0] - n.start_point[0])
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

    def _clusters(self, children: Sequence[Any], first: int, last: int) -> list[_Cluster]:
        """Children grouped so that no two groups share a line, comments joined to what they precede."""
        attached_types = self.rules.attached
        clusters: list[_Cluster] = []
        current: _Cluster | None = None
        for child in children:
            start = child.start_point[0]
            end, end_column = child.end_point
            if end > start and end_column == 0:
                end -= 1  # ends at the start of the next line: really ends on the line before
            if start < first:
                start = first
            if end > last:
                end = last
            if start > end:
                continue
            typ = child.type
            attached = "comment" in typ or typ in attached_types
            main = not attached and getattr(child, "is_named", True)
            if current is not None and start <= current.end:
                current.nodes.append(child)
                if end > current.end:
                    current.end = end
                current.only_attached = current.only_attached and attached
                if main:
                    current.main = child
                    current.n_main += 1
            else:
                current = _Cluster(child, start, end, attached, main)
                clusters.append(current)
        return self._attach_forward(clusters)

    def _attach_forward(self, clusters: list[_Cluster]) -> list[_Cluster]:
        """Comments and attributes right above a unit join the unit's cluster."""
        out: list[_Cluster] = []
        pending: _Cluster | None = None
        for cluster in clusters:
            # A pending cluster is all attached, so joining it changes neither the cluster's main
            # node nor its unit. (Re-checking the merged list made a long run of comments quadratic.)
            if pending is not None:
                if cluster.start == pending.end + 1 and (cluster.only_attached
                                                         or self._cluster_unit(cluster) is not None):
                    cluster.nodes[:0] = pending.nodes
                    cluster.start = pending.start
                else:
                    out.append(pending)
                pending = None
            if cluster.only_attached:
                pending = cluster
            else:
                out.append(cluster)
        if pending is not None:
            out.append(pending)
        return out

    def _windows(self, first: int, last: int, scope: Scope) -> list[Piece]:
        return [_solo(gap_piece(a, b, scope)) for a, b in windows(first, last, self.lines, self.limit)]


def _solo(piece: Piece) -> Piece:
    """``piece`` marked solo (``dataclasses.replace`` spelled out: it is called for many pieces)."""
    return Piece(piece.first, piece.last, piece.kind, piece.name, piece.context, piece.units, True,
                 piece.start_byte, piece.end_byte)
