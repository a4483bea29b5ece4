"""Manifest contract: OMS ordering, root digest, shard names, diff."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.digest import HashMethod, Manifest, ManifestItem


def _item(name: str, data: bytes = b"x") -> ManifestItem:
    return ManifestItem(name, hashlib.sha256(data).digest(), len(data))


def test_items_sorted_by_path_components_not_strings() -> None:
    manifest = Manifest("m", HashMethod(), (_item("a.b"), _item("a/b")))
    # PurePosixPath order: ('a', 'b') < ('a.b',), although "a.b" < "a/b" as strings.
    assert [i.name for i in manifest.items] == ["a/b", "a.b"]


def test_root_digest_is_sha256_of_ordered_item_digests() -> None:
    items = (_item("z", b"1"), _item("a", b"2"))
    manifest = Manifest("m", HashMethod(), items)
    want = hashlib.sha256(items[1].digest + items[0].digest).digest()
    assert manifest.root_digest == want


def test_shard_names_sort_numerically_and_group_by_file() -> None:
    manifest = Manifest(
        "m", HashMethod("sha256", 10), (_item("f:10:20"), _item("f:0:10"), _item("f:2:3x"))
    )
    assert [i.name for i in manifest.items] == ["f:0:10", "f:10:20", "f:2:3x"]
    assert set(manifest.file_digests()) == {"f", "f:2:3x"}


def test_non_ascii_digits_are_not_a_shard_suffix() -> None:
    item = _item("x:1:²")
    assert item.path == "x:1:²"
    assert item.sort_key() == (("x:1:²",), 0, 0)


def test_diff_names_modified_added_removed() -> None:
    want = Manifest("m", HashMethod(), (_item("a", b"1"), _item("b", b"2")))
    got = Manifest("m", HashMethod(), (_item("a", b"changed"), _item("c", b"3")))
    diff = want.diff(got)
    assert (diff.modified, diff.added, diff.removed) == (("a",), ("c",), ("b",))
    assert "modified: a" in diff.describe()


def test_round_trip_through_dict() -> None:
    manifest = Manifest("m", HashMethod("blake3", 1024), (_item("f:0:1"),), (".git",))
    assert Manifest.from_dict(manifest.to_dict()) == manifest


_SEGMENT = st.text(st.characters(blacklist_characters="/\x00"), min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join), min_size=2, max_size=8))
def test_order_is_path_component_order(names: list[str]) -> None:
    """The fast sort key orders normalised names exactly as PurePosixPath (model_signing) does."""
    unique = sorted(set(names))
    items = tuple(_item(n) for n in unique)
    manifest = Manifest("m", HashMethod(), items)
    want = sorted(unique, key=lambda n: PurePosixPath(n).parts)
    assert [i.name for i in manifest.items] == want
