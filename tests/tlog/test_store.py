"""The bundle layout: rows, their encoding, and what the store refuses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.digest import merkle
from glassbox.errors import InputError
from glassbox.tlog.sequencer import Pending, Results, Sequencer, append_batch
from glassbox.tlog.sqlite_store import SQLiteStore
from glassbox.tlog.store import (
    HASH,
    MAX_LEAF,
    TILE,
    SQLStore,
    decode_entries,
    encode_entries,
    nodes_before,
)
from glassbox.tlog.tiles import read_tile
from glassbox.tlog.tree import StoredTree, audit_store


def bundle_rows(store: SQLStore) -> list[tuple[int, int]]:
    return [(int(s), int(w)) for s, w in store._read("SELECT start, width FROM tlog_bundle")]


def test_batches_become_bundles_that_never_cross_a_tile(store: SQLStore) -> None:
    leaves = [f"leaf {i}".encode() for i in range(700)]
    state = None
    for start, end in ((0, 100), (100, 400), (400, 401), (401, 700)):
        state, _ = append_batch(store, state, [Pending(x) for x in leaves[start:end]])
    rows = sorted(bundle_rows(store))
    assert rows == [(0, 100), (100, 156), (256, 144), (400, 1), (401, 111), (512, 188)]
    assert all(s // TILE == (s + w - 1) // TILE for s, w in rows)
    # A full tile's entry bundle is the C2SP encoding of its leaves, whatever the batches were.
    assert read_tile(store, 700, None, 1, TILE) == encode_entries(leaves[256:512])
    assert read_tile(store, 700, None, 2, 188) == encode_entries(leaves[512:700])
    assert b"".join(store.node_range(0, 0, 700)) == b"".join(map(merkle.leaf_hash, leaves))
    assert audit_store(store) == merkle.root_of([merkle.leaf_hash(x) for x in leaves])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=40))
def test_entry_encoding_round_trips(leaves: list[bytes]) -> None:
    assert decode_entries(encode_entries(leaves), len(leaves)) == leaves


@given(st.binary(max_size=200), st.integers(0, 5))
def test_damaged_entry_bundles_are_refused(data: bytes, count: int) -> None:
    try:
        leaves = decode_entries(data, count)
    except Exception as exc:  # only ever the one clear error
        assert "damaged entry bundle" in str(exc)
    else:
        assert encode_entries(leaves) == data and len(leaves) == count


@given(st.integers(0, 1 << 50))
def test_nodes_before_counts_trailing_ones(row: int) -> None:
    """Leaf i completes one interior hash per trailing one bit; the closed form is the sum."""
    small = row % 4096
    assert nodes_before(small) == sum((i ^ (i + 1)).bit_length() - 1 for i in range(small))
    assert nodes_before(row + 1) - nodes_before(row) == (row ^ (row + 1)).bit_length() - 1


def test_oversized_leaf_is_refused_alone(store: SQLStore) -> None:
    seq = Sequencer(store)
    try:
        with pytest.raises(InputError, match=f"at most {MAX_LEAF} bytes"):
            seq.submit(Pending(b"x" * (MAX_LEAF + 1)))
        assert seq.add(Pending(b"x" * MAX_LEAF)).index == 0  # the limit itself fits
        assert StoredTree(store).store.leaves(0, 1)[0].leaf == b"x" * MAX_LEAF
    finally:
        seq.close()
    with pytest.raises(InputError, match="at most"):
        append_batch(store, None, [Pending(b"ok"), Pending(b"y" * (MAX_LEAF + 1))])
    assert store.size() == 1


def test_results_slice_and_concat_keep_duplicates() -> None:
    h = [bytes([i]) * HASH for i in range(6)]
    a = Results([0, 1, 0], h[:3], frozenset({2}))
    b = Results([2, 1], h[3:5], frozenset({1}))
    both = Results.concat([a, b])
    assert [(x.index, x.duplicate) for x in both] == [
        (0, False),
        (1, False),
        (0, True),
        (2, False),
        (1, True),
    ]
    assert [(x.index, x.duplicate) for x in both[2:4]] == [(0, True), (2, False)]
    assert both[-1].leaf_hash == h[4]
    with pytest.raises(ValueError):
        both[::2]


def test_sequencer_answers_across_chunks_with_duplicates(store: SQLStore) -> None:
    seq = Sequencer(store, max_batch=3)
    try:
        leaves = [b"a", b"b", b"a", b"c", b"b", b"d", b"e"]
        got = seq.add_many([Pending(x) for x in leaves])
        assert [(r.index, r.duplicate) for r in got] == [
            (0, False),
            (1, False),
            (0, True),
            (2, False),
            (1, True),
            (3, False),
            (4, False),
        ]
        assert [r.leaf_hash for r in got] == [merkle.leaf_hash(x) for x in leaves]
    finally:
        seq.close()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=6), st.data())
def test_any_batching_gives_the_same_tree(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], data: st.DataObject
) -> None:
    """However entries are batched, bundles tile the log without crossing a tile, and the
    stored tree is the RFC 9162 tree of the leaves (every hash a proof reads is right)."""
    store = SQLiteStore(tmp_path_factory.mktemp("batching") / "log.db")
    try:
        leaves = [f"entry {i}".encode() for i in range(sum(sizes))]
        hashes = [merkle.leaf_hash(x) for x in leaves]
        state, at = None, 0
        for n in sizes:
            state, _ = append_batch(store, state, [Pending(x) for x in leaves[at : at + n]])
            at += n
        rows = sorted(bundle_rows(store))
        assert [s for s, _ in rows] == [0] + [s + w for s, w in rows[:-1]]
        assert all(s // TILE == (s + w - 1) // TILE for s, w in rows)
        tree = StoredTree(store)
        size = data.draw(st.integers(1, len(leaves)))
        index = data.draw(st.integers(0, size - 1))
        proof = tree.inclusion_proof(index, size)
        merkle.verify_inclusion(hashes[index], index, size, proof, merkle.root_of(hashes[:size]))
        old = data.draw(st.integers(1, size))
        merkle.verify_consistency(
            old,
            size,
            tree.consistency_proof(old, size),
            merkle.root_of(hashes[:old]),
            merkle.root_of(hashes[:size]),
        )
        assert [r.leaf for r in store.leaves(0, len(leaves))] == leaves
    finally:
        store.close()
