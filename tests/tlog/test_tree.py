"""The storage-backed tree: known answers, proofs between random sizes, tamper detection.

Known-answer data: tests/vectors/tlog/rfc6962_reference_tree.json (transparency-dev/merkle
testonly/constants.go, see tests/vectors/tlog/SOURCES.md) and the Sunlight mirror's 300-leaf
tree (sunlight_skylight_testdata.json, FiloSottile/sunlight cmd/skylight/testdata/gen.go).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.digest import merkle
from glassbox.errors import InputError, VerificationError
from glassbox.tlog.sequencer import Pending, Sequencer, append_batch
from glassbox.tlog.sqlite_store import SQLiteStore
from glassbox.tlog.store import SQLStore
from glassbox.tlog.tree import StoredTree, audit_store, consistency_ranges, range_nodes
from tests.conftest import load_vector
from tests.tlog.helpers import corrupt_node, edit_leaf

N = 300
LEAVES = [f"record {i}".encode() for i in range(N)]
HASHES = [merkle.leaf_hash(x) for x in LEAVES]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> StoredTree:
    store = SQLiteStore(tmp_path_factory.mktemp("tree") / "log.db")
    edge = None
    for start in range(0, N, 37):  # uneven batches cross every subtree boundary
        edge, _ = append_batch(store, edge, [Pending(x) for x in LEAVES[start : start + 37]])
    return StoredTree(store)


def test_reference_tree_roots(store: SQLStore) -> None:
    vec = load_vector("tlog/rfc6962_reference_tree.json")
    leaves = [bytes.fromhex(h) for h in vec["leaf_inputs_hex"]]
    seq = Sequencer(store, max_batch=3)
    try:
        seq.add_many([Pending(x) for x in leaves])
    finally:
        seq.close()
    tree = StoredTree(store)
    for size, want in enumerate(vec["roots_by_size_hex"]):
        assert tree.root(size).hex() == want
    assert audit_store(store).hex() == vec["roots_by_size_hex"][-1]


def test_sunlight_mirror_tree_root_and_tiles(big: StoredTree) -> None:
    """The mirror checkpoint's root is the tree of 'record 0'..'record 299'."""
    vec = load_vector("tlog/sunlight_skylight_testdata.json")["mirror"]
    root_line = vec["cosigned_checkpoint"].split("\n")[2]
    assert big.root(N) == base64.b64decode(root_line)
    tiles = vec["hash_tiles_b64"]
    assert b"".join(big.store.node_range(0, 0, 256)) == base64.b64decode(tiles["tile/0/000"])
    assert b"".join(big.store.node_range(0, 256, 300)) == base64.b64decode(tiles["tile/0/001.p/44"])
    assert b"".join(big.store.node_range(8, 0, 1)) == base64.b64decode(tiles["tile/1/000.p/1"])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_inclusion_proofs_verify(big: StoredTree, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, N))
    index = data.draw(st.integers(0, size - 1))
    proof = big.inclusion_proof(index, size)
    assert proof == merkle.inclusion_proof(HASHES[:size], index)
    root = merkle.root_of(HASHES[:size])
    assert big.root(size) == root
    merkle.verify_inclusion(HASHES[index], index, size, proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[i] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(bad[i]))
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(HASHES[index], index, size, bad, root)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_consistency_proofs_verify(big: StoredTree, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, N))
    old = data.draw(st.integers(1, size))
    proof = big.consistency_proof(old, size)
    assert proof == merkle.consistency_proof(HASHES[:size], old)
    r1, r2 = merkle.root_of(HASHES[:old]), merkle.root_of(HASHES[:size])
    merkle.verify_consistency(old, size, proof, r1, r2)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[i] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(bad[i]))
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, size, bad, r1, r2)


@given(st.integers(0, 1 << 40), st.integers(0, 1 << 20))
def test_range_nodes_tile_the_range(lo: int, length: int) -> None:
    lo &= ~((1 << max(length.bit_length(), 1)) - 1)  # proof ranges start suitably aligned
    nodes = range_nodes(lo, lo + length)
    assert sum(1 << lvl for lvl, _ in nodes) == length
    pos = lo
    for lvl, idx in nodes:
        assert idx << lvl == pos
        pos += 1 << lvl
    assert [lvl for lvl, _ in nodes] == sorted((lvl for lvl, _ in nodes), reverse=True)


def test_consistency_ranges_are_log_sized() -> None:
    assert len(consistency_ranges(1_000_003, 9_999_999_999)) <= 2 * 34


def test_out_of_range_requests_are_input_errors(big: StoredTree) -> None:
    with pytest.raises(InputError):
        big.inclusion_proof(5, N + 1)
    with pytest.raises(InputError):
        big.inclusion_proof(N, N)
    with pytest.raises(InputError):
        big.consistency_proof(10, 5)
    assert big.consistency_proof(0, 5) == []


def test_dedup_returns_same_index(store: SQLStore) -> None:
    seq = Sequencer(store)
    try:
        a = seq.add(Pending(b"alpha"))
        b = seq.add(Pending(b"beta"))
        again = seq.add(Pending(b"alpha"))
        batch = seq.add_many([Pending(b"gamma"), Pending(b"gamma"), Pending(b"beta")])
    finally:
        seq.close()
    assert (a.index, b.index, again.index) == (0, 1, 0)
    assert again.duplicate and not a.duplicate
    assert [r.index for r in batch] == [2, 2, 1]
    assert store.size() == 3


def test_edited_node_hash_is_detected(store: SQLStore) -> None:
    edge = None
    edge, _ = append_batch(store, edge, [Pending(x) for x in LEAVES[:20]])
    tree = StoredTree(store)
    root = tree.root(20)
    audit_store(store)
    corrupt_node(store, 2, 1)
    with pytest.raises(VerificationError, match="level 2, index 1"):
        audit_store(store)
    proof = tree.inclusion_proof(0, 20)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(HASHES[0], 0, 20, proof, root)


def test_edited_leaf_is_detected(store: SQLStore) -> None:
    append_batch(store, None, [Pending(x) for x in LEAVES[:9]])
    edit_leaf(store, 4, b"record X", rehash=False)
    with pytest.raises(VerificationError, match=r"leaf 4 does not match its stored hash"):
        store.leaves(0, 9)  # nothing serves a leaf whose bytes changed under its hash
    edit_leaf(store, 4, b"record X")  # the stored leaf hash rewritten to match, too
    with pytest.raises(VerificationError, match=r"level 1, index 2"):
        audit_store(store)  # its pair's stored hash no longer matches the leaves


def test_damaged_bundle_is_reported(store: SQLStore) -> None:
    """A bundle whose columns disagree in length is refused, never sliced into hashes."""
    append_batch(store, None, [Pending(x) for x in LEAVES[:8]])
    with store.write_lock:
        store.begin_append()
        store._wexec("UPDATE tlog_bundle SET hashes = substr(hashes, 1, 40) WHERE start = 0")
        store.commit()
    with pytest.raises(VerificationError, match="damaged bundle at leaf 0"):
        StoredTree(store).inclusion_proof(3, 8)


def test_missing_node_is_reported(store: SQLStore) -> None:
    append_batch(store, None, [Pending(x) for x in LEAVES[:8]])
    corrupt_node(store, 3, 0, truncate=True)
    with pytest.raises(VerificationError, match="damaged bundle"):
        StoredTree(store).root(8)


def test_failed_batch_leaves_nothing(store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seq = Sequencer(store)
    try:
        seq.add(Pending(b"kept"))

        def boom(rows: object) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(store, "set_size", boom)  # after the rows went in
        with pytest.raises(RuntimeError):
            seq.add_many([Pending(b"x"), Pending(b"y")])
        monkeypatch.undo()
        assert store.size() == 1
        assert seq.add(Pending(b"x")).index == 1
    finally:
        seq.close()
    audit_store(store)
