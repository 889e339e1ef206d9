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
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from codeindex.chunking.pieces import (
    MAX_CONTEXT_CHARS,
    MIN_LINES,
    SOLO_SHARE,
    Piece,
    Scope,
    Whole,
    absorb_small,
    gap_piece,
    keep_whole,
    merge,
    windows,
)
from codeindex.chunking.source import SourceLines, estimate_tokens

MAX_SIGNATURE_LINES = 4
"""A split unit's pieces carry its signature as context: at most this many lines of it, joined."""

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
    anonymous: bool = False
    """No name of its own (an anonymous namespace or struct): ``name`` is its node type, and it adds
    nothing to the names of what it holds."""


@dataclass(frozen=True, slots=True)
class UnitCount:
    """A unit's exact token count as a chunk of its own (header + text), and what it says of the estimate."""

    tokens: int
    est: int
    """The estimate of the unit's own lines."""

    @property
    def rate(self) -> float:
        """Exact tokens per estimated token."""
        return self.tokens / max(1, self.est)


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

    def __init__(self, rules: LanguageRules, lines: SourceLines, limit: int, max_tokens: int | None = None,
                 counts: Mapping[tuple[int, int], UnitCount] | None = None) -> None:
        self.rules = rules
        self.lines = lines
        self.base_limit = limit
        self.limit = limit
        """The estimated-token limit in force: ``base_limit`` over the rate of the unit being split."""
        self.max_tokens = max_tokens if max_tokens is not None else limit
        self.counts = counts or {}
        """Exact counts of the units near the limit, by their node's byte span (``definitions.unit_counts``):
        such a unit is kept whole exactly when it fits ``max_tokens``."""
        self.strict_counts = False
        """Set while ``resplit`` retries: a counted unit fits only on its own lines, none added at an estimate."""
        self.wholes: Sequence[Whole] = ()
        """The definitions that fit (``definitions.wholes``): no piece boundary cuts one (``pieces.keep_whole``)."""

    # ------------------------------------------------------------------ classification
    def unit_of(self, node: Any) -> Unit | None:
        rules = self.rules
        typ = node.type
        kind = rules.units.get(typ)
        if kind is not None and typ.endswith("_specifier") and node.child_by_field_name("body") is None:
            kind = None  # C `struct point *p = ...` uses a type; only a definition with a body is a unit
        if kind is not None:
            namer = rules.namers.get(typ, default_name)
            name = namer(node, self.lines.data) or default_name(node, self.lines.data)
            return Unit(node, kind, _clean_name(name)) if name else Unit(node, kind, typ, anonymous=True)
        if typ in rules.wrappers:
            for child in node.named_children:
                inner = self.unit_of(child)
                if inner is not None:
                    return Unit(node, inner.kind, inner.name, inner.anonymous)
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
        pieces = keep_whole(self.split_children(root, 0, last, Scope(), 0), self.wholes)
        return absorb_small(pieces, self.lines, self.limit)

    def resplit(self, root: Any, first: int, last: int, limit: float) -> list[Piece]:
        """Lines ``first..last`` (a piece whose exact count overflowed) split again from the tree.

        ``limit`` is in estimated tokens, corrected by what the exact count said of this text. Scopes
        are found again from the root, so pieces inside a class keep their names and signature context.
        A first try keeps the units' exact counts and joins no small pieces (the piece may be a unit
        that fits plus a small neighbour it took in: they part again); if that gives the piece back
        whole, a second try keeps a counted unit whole only on its own lines (the comment above it,
        whose tokens were estimated, parts from it: the unit's exact count fits); only if that too
        gives the piece back are the counts, and the definitions kept whole on them, set aside.
        """
        saved = self.limit, self.counts, self.wholes
        self.limit = max(8, int(limit))
        try:
            parts = keep_whole(self.split_children(root, first, last, Scope(), 0), self.wholes)
            if len(parts) <= 1 and self.counts:
                self.strict_counts = True
                parts = keep_whole(self.split_children(root, first, last, Scope(), 0), self.wholes)
            if len(parts) <= 1:
                self.counts, self.wholes = {}, ()
                parts = absorb_small(self.split_children(root, first, last, Scope(), 0), self.lines, self.limit)
            return parts
        finally:
            self.limit, self.counts, self.wholes = saved
            self.strict_counts = False

    def split_children(self, node: Any, first: int, last: int, scope: Scope, depth: int) -> list[Piece]:
        """Pieces covering lines ``first..last``, cut where ``node``'s children start."""
        return self._split_nodes(node.children, first, last, scope, depth)

    def _split_nodes(self, nodes: Sequence[Any], first: int, last: int, scope: Scope, depth: int) -> list[Piece]:
        """Pieces covering lines ``first..last``, cut where the sibling ``nodes`` start."""
        if depth > MAX_DEPTH:
            return self._windows(first, last, scope)
        clusters = self._clusters(nodes, first, last)
        if not clusters:
            return self._windows(first, last, scope)
        pieces: list[Piece] = []
        est = self.lines.est_prefix
        limit = self.limit
        n = len(clusters)
        regions = [(cluster, first if i == 0 else cluster.start, last if i == n - 1 else clusters[i + 1].start - 1)
                   for i, cluster in enumerate(clusters)]
        if n > 1:
            regions = self._fold_small(regions)
        for cluster, r_first, r_last in regions:
            if est[r_last + 1] - est[r_first] <= limit and self._cluster_unit(cluster) is None:
                # what ``region`` returns for a small region without a unit, without the call
                pieces.append(Piece(r_first, r_last, scope.kind, scope.name, scope.context_for(r_first)))
            else:
                pieces.extend(self.region(cluster, r_first, r_last, scope, depth))
        return merge(pieces, self.lines, limit, scope)

    def _fold_small(self, regions: list[tuple[_Cluster, int, int]]) -> list[tuple[_Cluster, int, int]]:
        """A small region between regions that will be split joins one of them: a leading one (a
        signature, ``{``, a class line) the region after it, a trailing one (``return rv``, ``}``)
        the region before. Split pieces never merge with neighbours, so alone it would stay a chunk
        of a line or two."""
        est = self.lines.est_prefix
        limit = self.limit
        big = [est[b + 1] - est[a] > limit and not self._fits_by_count(cluster, a, b) for cluster, a, b in regions]
        out: list[tuple[_Cluster, int, int]] = []
        n = len(regions)
        i = 0
        while i < n:
            cluster, a, b = regions[i]
            prev_big = i > 0 and big[i - 1]
            next_big = i + 1 < n and big[i + 1]
            if (not big[i] and (prev_big or next_big) and (prev_big or i == 0) and (next_big or i == n - 1)
                    and _line_count(self.lines, a, b) <= MIN_LINES and self._cluster_unit(cluster) is None):
                if (next_big and i + 1 < n - 1) or not prev_big:
                    nxt, _, nb = regions[i + 1]
                    regions[i + 1] = (nxt, a, nb)
                else:
                    prev, pa, _ = out[-1]
                    out[-1] = (prev, pa, b)
                i += 1
                continue
            out.append((cluster, a, b))
            i += 1
        return out

    def region(self, cluster: _Cluster, first: int, last: int, scope: Scope, depth: int) -> list[Piece]:
        est = self.lines.estimate(first, last)
        unit = self._cluster_unit(cluster)
        if unit is not None:
            in_class = bool(scope.name) and scope.kind in CLASSLIKE
            kind = "method" if unit.kind == "function" and in_class else unit.kind
            qualified = f"{scope.name}.{unit.name}" if scope.name else unit.name
            name = scope.name if unit.anonymous else qualified
            node = unit.node
            count = self.counts.get((node.start_byte, node.end_byte))
            if count is None:
                limit: float = self.limit
                fits = est <= limit
            else:
                limit = self.base_limit / count.rate
                fits = self._fits_by_count(cluster, first, last)
            if fits:
                return [Piece(first, last, kind, name, scope.context_for(first), units=1,
                              solo=est * SOLO_SHARE > limit)]
            node_first = max(first, node.start_point[0])
            end_row, end_column = node.end_point
            node_last = min(last, end_row - 1 if end_column == 0 and end_row > node_first else end_row)
            if (node_first > first or node_last < last) and (
                    self.lines.estimate(node_first, node_last) <= limit if count is None else
                    count.tokens + max(0, self.lines.estimate(node_first, node_last) - count.est) * count.rate
                    <= self.max_tokens):
                # the unit fits without the lines its region adds (a long comment above it, a small
                # statement folded in after it): those are pieces of their own and the code stays
                # whole. The comment is named after the unit (grouped with it in results); what
                # follows is the scope's, free to join its neighbours.
                out = []
                if node_first > first:
                    out.append(Piece(first, node_first - 1, kind, name, scope.context_for(first), solo=True))
                out.append(Piece(node_first, node_last, kind, name, scope.context_for(node_first), units=1,
                                 solo=True))
                if node_last < last:
                    out.append(gap_piece(node_last + 1, last, scope))
                return out
            return self._split_unit(node, first, last, scope, kind, name, limit, depth)
        if est <= self.limit or first == last:
            return [gap_piece(first, last, scope)]
        # Cut at the children of every node of the cluster, not only the biggest: in an
        # ``if {...} else if {...} else {...}`` chain the branches share lines (``} else {``), and
        # descending into the biggest alone left the other branches as lines without structure,
        # cut into windows through the middle of what they hold.
        opened = [node.end_point[0] > node.start_point[0] and bool(node.children) for node in cluster.nodes]
        if any(opened):
            children = [child for node, is_open in zip(cluster.nodes, opened, strict=True)
                        for child in (node.children if is_open else (node,))]
            return self._split_nodes(children, first, last, scope, depth + 1)
        return self._windows(first, last, scope)

    def _fits_by_count(self, cluster: _Cluster, first: int, last: int) -> bool:
        """Whether the region is a unit whose exact count, plus the lines the region adds to it
        (comments above) at its rate, fits ``max_tokens``. False when no count is known."""
        unit = self._cluster_unit(cluster)
        if unit is None or not self.counts:
            return False
        count = self.counts.get((unit.node.start_byte, unit.node.end_byte))
        if count is None:
            return False
        extra = max(0, self.lines.estimate(first, last) - count.est)
        if extra and self.strict_counts:
            return False
        return count.tokens + extra * count.rate <= self.max_tokens

    def _split_unit(self, node: Any, first: int, last: int, scope: Scope, kind: str, name: str, limit: float,
                    depth: int) -> list[Piece]:
        """An oversized unit cut where its body's statements start; every piece is named after the unit.

        The regions of the body's children start at the unit's first line, so the decorators and
        signature lead the first piece instead of making a piece of their own; later pieces carry
        the signature in their context (the embedded header), not in their text.
        """
        target = self._body_holder(node)
        body = target.child_by_field_name("body")
        sig_first = target.start_point[0]
        sig_last = sig_first
        if body is not None:
            sig_last = max(sig_first, min(body.start_point[0] - 1, sig_first + MAX_SIGNATURE_LINES - 1))
            if body.start_point[0] == sig_first:  # `func f() {`: the body opens on the signature line
                sig_last = sig_first
        signature = " ".join(self.lines.line_text(i).strip() for i in range(sig_first, sig_last + 1)
                             if not self.lines.blank[i])
        inner = Scope(kind=kind, name=name, context=(*scope.context, signature),
                      outer_context=scope.context_for(first), first_line=sig_first)
        split_node = body if body is not None and body.children else target
        saved = self.limit
        # later pieces embed the signature in their header: leave room for it
        self.limit = max(8, int(limit) - estimate_tokens(signature[:MAX_CONTEXT_CHARS].encode()))
        try:
            parts = self.split_children(split_node, first, last, inner, depth + 1)
        finally:
            self.limit = saved
        out = [p if p.solo else _solo(p) for p in parts]
        if out and out[0].first == first:
            out[0] = replace(out[0], head=True)
        return out

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
        data = self.lines.data
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
            # a lone ``;`` after a unit (``class GTEST_API_ RE {...};`` parses as a function and an
            # empty statement) is punctuation, not a second main node: the unit stays a unit
            main = (not attached and getattr(child, "is_named", True)
                    and not (child.end_byte - child.start_byte == 1 and data[child.start_byte] == 59))
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


def _line_count(lines: SourceLines, first: int, last: int) -> int:
    span = lines.trim(first, last)
    return 0 if span is None else span[1] - span[0] + 1


def _solo(piece: Piece) -> Piece:
    """``piece`` marked solo (``dataclasses.replace`` spelled out: it is called for many pieces)."""
    return Piece(piece.first, piece.last, piece.kind, piece.name, piece.context, piece.units, True,
                 piece.start_byte, piece.end_byte, piece.head)
