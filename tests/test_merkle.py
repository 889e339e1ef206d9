"""Pure tests of the Merkle tree and the snapshot diff: no disk."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from codeindex.changes.merkle import TreeDiff, build_tree, diff_trees, leaf_hash, update_tree

A, B, C = leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")


def test_leaf_hash_is_blake3_hex() -> None:
    assert leaf_hash(b"") == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_tree_has_every_directory_and_the_root() -> None:
    nodes = build_tree({"a/b/c.py": A, "a/d.py": B, "e.py": C})
    assert set(nodes) == {"", "a", "a/b"}
    assert build_tree({}) == {"": build_tree({})[""]}


def test_node_hash_depends_on_content_names_and_kind_only() -> None:
    base = build_tree({"x/f": A, "x/g": B})
    assert build_tree({"x/g": B, "x/f": A}) == base  # insertion order is irrelevant
    assert build_tree({"x/f": A, "x/g": C})[""] != base[""]
    assert build_tree({"x/f": A, "x/h": B})[""] != base[""]
    # A file "f" and a directory "f" holding the same hash must not collide.
    assert build_tree({"f": A})[""] != build_tree({"f/f": A})[""]
    # Unambiguous encoding: moving a character between name and neighbour changes the hash.
    assert build_tree({"ab": A, "c": B})[""] != build_tree({"a": A, "bc": B})[""]


def test_unrelated_subtree_keeps_its_node() -> None:
    old = build_tree({"src/a.py": A, "docs/x.md": B})
    new = build_tree({"src/a.py": A, "docs/x.md": C})
    assert old["src"] == new["src"]
    assert old["docs"] != new["docs"] and old[""] != new[""]


def test_diff_classifies_changes() -> None:
    old = {"keep.py": A, "edit.py": A, "gone.py": B, "old/name.py": C}
    new = {"keep.py": A, "edit.py": B, "new.py": A, "new/name.py": C}
    diff = diff_trees(old, new)
    assert diff == TreeDiff(added=["new.py"], modified=["edit.py"], deleted=["gone.py"],
                            moved=[("old/name.py", "new/name.py")], unchanged=1)
    assert not diff.is_empty()
    assert diff_trees(old, old).is_empty()


def test_moves_pair_min_k_m_by_sorted_path() -> None:
    old = {"d1": A, "d2": A, "d3": A}
    new = {"n2": A, "n1": A}
    diff = diff_trees(old, new)
    assert diff.moved == [("d1", "n1"), ("d2", "n2")]
    assert diff.deleted == ["d3"] and diff.added == []
    diff = diff_trees({"d": A}, {"n1": A, "n2": A})
    assert diff.moved == [("d", "n1")] and diff.added == ["n2"]


def test_copy_is_an_add_not_a_move() -> None:
    diff = diff_trees({"a": A}, {"a": A, "b": A})
    assert diff.added == ["b"] and diff.moved == []


paths = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3).map("/".join)
trees = st.dictionaries(paths, st.sampled_from([A, B, C]), max_size=12).filter(
    # a path cannot be both a file and a directory
    lambda t: not any(q.startswith(p + "/") for p in t for q in t))


@given(trees, trees)
def test_node_pruned_diff_equals_plain_diff(old: dict[str, str], new: dict[str, str]) -> None:
    plain = diff_trees(old, new)
    assert diff_trees(old, new, build_tree(old), build_tree(new)) == plain
    assert plain.unchanged + len(plain.added) + len(plain.modified) + len(plain.moved) == len(new)
    assert len(plain.deleted) + len(plain.modified) + plain.unchanged + len(plain.moved) == len(old)
    assert (build_tree(old)[""] == build_tree(new)[""]) == (old == new)


@given(trees, trees)
def test_update_tree_equals_full_rebuild(old: dict[str, str], new: dict[str, str]) -> None:
    diff = diff_trees(old, new)
    assert update_tree(build_tree(old), new, diff.changed_paths()) == build_tree(new)
