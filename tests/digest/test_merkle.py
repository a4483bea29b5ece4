"""RFC 9162 Merkle core: known answers and properties.

Vectors: tests/vectors/tlog/ (transparency-dev/merkle @ 417fb0c3, Apache-2.0; see SOURCES.md).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.digest import merkle
from tests.conftest import load_vector


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(value: list[str] | None) -> list[bytes]:
    return [base64.b64decode(p) for p in value or []]


REF = load_vector("tlog/rfc6962_reference_tree.json")
LEAVES = [merkle.leaf_hash(bytes.fromhex(h)) for h in REF["leaf_inputs_hex"]]


def test_reference_tree_roots_for_every_size() -> None:
    for size, want in enumerate(REF["roots_by_size_hex"]):
        assert merkle.root_of(LEAVES[:size]).hex() == want


def test_hasher_vectors() -> None:
    for vec in REF["hasher_vectors"]:
        if vec["kind"] == "empty_root":
            assert merkle.EMPTY_ROOT.hex() == vec["want_hex"]


@pytest.mark.parametrize(
    "probe",
    load_vector("tlog/merkle_inclusion_probes.json")["probes"],
    ids=lambda p: p["source_file"],
)
def test_inclusion_probes(probe: dict) -> None:
    args = (_b64(probe["leafHash"]), probe["leafIdx"], probe["treeSize"], _proof(probe["proof"]))
    if probe["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args, _b64(probe["root"]))
    else:
        merkle.verify_inclusion(*args, _b64(probe["root"]))


@pytest.mark.parametrize(
    "probe",
    load_vector("tlog/merkle_consistency_probes.json")["probes"],
    ids=lambda p: p["source_file"],
)
def test_consistency_probes(probe: dict) -> None:
    args = (probe["size1"], probe["size2"], _proof(probe["proof"]))
    roots = (_b64(probe["root1"]), _b64(probe["root2"]))
    if probe["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args, *roots)
    else:
        merkle.verify_consistency(*args, *roots)


def test_generated_proofs_match_reference_tree() -> None:
    for size in range(1, len(LEAVES) + 1):
        root = merkle.root_of(LEAVES[:size])
        for index in range(size):
            merkle.verify_inclusion(
                LEAVES[index], index, size, merkle.inclusion_proof(LEAVES[:size], index), root
            )
        for old in range(1, size + 1):
            proof = merkle.consistency_proof(LEAVES[:size], old)
            merkle.verify_consistency(old, size, proof, merkle.root_of(LEAVES[:old]), root)


def _flip(data: bytes, bit: int) -> bytes:
    buf = bytearray(data)
    buf[(bit // 8) % len(buf)] ^= 1 << (bit % 8)
    return bytes(buf)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_inclusion_property(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    index = data.draw(st.integers(0, size - 1))
    root = merkle.root_of(leaves)
    proof = merkle.inclusion_proof(leaves, index)
    merkle.verify_inclusion(leaves[index], index, size, proof, root)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(_flip(leaves[index], bit), index, size, proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(leaves[index], index, size, proof, _flip(root, bit))
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:which], _flip(proof[which], bit), *proof[which + 1 :]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(leaves[index], index, size, bad, root)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_consistency_property(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    old = data.draw(st.integers(1, size))
    root1, root2 = merkle.root_of(leaves[:old]), merkle.root_of(leaves)
    proof = merkle.consistency_proof(leaves, old)
    merkle.verify_consistency(old, size, proof, root1, root2)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(old, size, proof, _flip(root1, bit), root2)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(old, size, proof, root1, _flip(root2, bit))
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:which], _flip(proof[which], bit), *proof[which + 1 :]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, size, bad, root1, root2)


def test_frontier_matches_batch_root() -> None:
    leaves = [merkle.leaf_hash(bytes([i % 256, i // 256])) for i in range(1025)]
    frontier = merkle.Frontier()
    for i, leaf in enumerate(leaves):
        frontier.append(leaf)
        if i in (0, 1, 2, 6, 63, 64, 1024):
            assert frontier.root() == merkle.root_of(leaves[: i + 1])


def test_bad_hash_length_is_a_proof_error() -> None:
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(b"short", 0, 1, [], merkle.EMPTY_ROOT)


def test_frontier_resumes_and_reports_completed_nodes() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(11)]
    whole = merkle.Frontier()
    completed = whole.extend(leaves[:7])
    # Leaf 3 completes [2,4) and [0,4); leaf 0 completes nothing.
    assert completed[0] == b""
    assert completed[3] == merkle.root_of(leaves[2:4]) + merkle.root_of(leaves[0:4])
    resumed = merkle.Frontier(whole.size, whole.hashes)
    assert resumed.append(leaves[7]) == whole.append(leaves[7])
    resumed.extend(leaves[8:])
    assert resumed.root() == merkle.root_of(leaves)
    with pytest.raises(ValueError, match="frontier hashes"):
        merkle.Frontier(3, [leaves[0]])


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 200), data=st.data())
def test_batched_inclusion_proofs_equal_single_ones(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    indices = data.draw(st.lists(st.integers(0, size - 1), max_size=12))
    assert merkle.inclusion_proofs(leaves, indices) == [
        merkle.inclusion_proof(leaves, i) for i in indices
    ]
    with pytest.raises(ValueError, match="out of range"):
        merkle.inclusion_proofs(leaves, [size])
