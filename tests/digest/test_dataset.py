"""Dataset commitments: roots, inclusion proofs, absence proofs, and forgeries that must fail."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.digest import (
    AbsenceProof,
    DatasetCommitment,
    ProofError,
    RecordProof,
    commit_dataset,
    iter_records,
    load_proof,
    prove_absence,
    prove_record,
    prove_records,
    verify_absence,
    verify_record,
)
from glassbox.digest.merkle import EMPTY_ROOT, leaf_hash, root_of
from glassbox.errors import InputError


def write_jsonl(path: Path, records: list[str]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "d.jsonl", [f"record {i}" for i in range(11)])


def test_root_is_rfc9162_over_records(jsonl: Path) -> None:
    records = list(iter_records(jsonl))
    commitment = commit_dataset(jsonl)
    assert commitment.root == root_of([leaf_hash(r) for r in records])
    assert commitment.size == 11 and commitment.fmt == "jsonl" and not commitment.sorted_records
    sorted_commitment = commit_dataset(jsonl, sorted_records=True)
    assert sorted_commitment.root == root_of(sorted(leaf_hash(r) for r in records))
    assert sorted_commitment.root != commitment.root


def test_commitment_round_trips(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a,b\n1,2\n")
    commitment = commit_dataset(f)
    assert commitment.metadata == {"header": ["a", "b"]}
    assert DatasetCommitment.from_dict(json.loads(json.dumps(commitment.to_dict()))) == commitment
    with pytest.raises(InputError, match="malformed dataset commitment"):
        DatasetCommitment.from_dict({**commitment.to_dict(), "root": "zz"})
    with pytest.raises(InputError, match="malformed dataset commitment"):
        DatasetCommitment.from_dict({**commitment.to_dict(), "size": -1})


def test_empty_dataset(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text("\n\n")
    commitment = commit_dataset(f)
    assert (commitment.size, commitment.root) == (0, EMPTY_ROOT)
    with pytest.raises(InputError, match="record 0 does not exist"):
        prove_record(f, 0)
    proof = prove_absence(f, b'"anything"')
    verify_absence(proof, commit_dataset(f, sorted_records=True))


@pytest.mark.parametrize("sorted_records", [False, True])
def test_every_record_proves(jsonl: Path, sorted_records: bool) -> None:
    commitment = commit_dataset(jsonl, sorted_records=sorted_records)
    records = set(iter_records(jsonl))
    seen = set()
    for index in range(commitment.size):
        proof = prove_record(jsonl, index, sorted_records=sorted_records)
        verify_record(proof, commitment)
        verify_record(RecordProof.from_dict(json.loads(json.dumps(proof.to_dict()))), commitment)
        verify_record(proof, commitment.root.hex(), size=commitment.size)
        verify_record(proof, commitment.root)
        seen.add(proof.record)
    assert seen == records


def test_unsorted_index_is_file_order(jsonl: Path) -> None:
    assert prove_record(jsonl, 3).record == b'"record 3"'


def test_out_of_range(jsonl: Path) -> None:
    with pytest.raises(InputError, match="record 11 does not exist: the dataset has 11 records"):
        prove_record(jsonl, 11)


def forgeries(proof: RecordProof) -> list[RecordProof]:
    flipped = bytearray(proof.audit_path[0])
    flipped[0] ^= 1
    return [
        dataclasses.replace(proof, record=proof.record + b" "),
        dataclasses.replace(proof, index=proof.index + 1),
        dataclasses.replace(proof, audit_path=(bytes(flipped), *proof.audit_path[1:])),
        dataclasses.replace(proof, audit_path=proof.audit_path[:-1]),
        dataclasses.replace(proof, audit_path=(*proof.audit_path, proof.audit_path[0])),
        dataclasses.replace(proof, tree_size=proof.tree_size + 1),
    ]


def test_forged_proofs_fail(jsonl: Path) -> None:
    commitment = commit_dataset(jsonl)
    proof = prove_record(jsonl, 5)
    for forged in forgeries(proof):
        with pytest.raises(ProofError):
            verify_record(forged, commitment)


def test_proof_against_a_different_root_fails(jsonl: Path, tmp_path: Path) -> None:
    proof = prove_record(jsonl, 2)
    other = commit_dataset(write_jsonl(tmp_path / "o.jsonl", ["x", "y", "record 2"]))
    with pytest.raises(ProofError):
        verify_record(proof, other)
    with pytest.raises(ProofError):
        verify_record(proof, other.root.hex())
    # A proof that carries the other root is still checked against the trusted one.
    with pytest.raises(ProofError):
        verify_record(dataclasses.replace(proof, root=other.root), commit_dataset(jsonl))


def test_bare_root_does_not_pin_the_index(tmp_path: Path) -> None:
    """Leaf 2 of a 3-leaf tree re-states itself as leaf 1 of a claimed 2-leaf tree; the
    record count from the commitment is what rules that out."""
    f = write_jsonl(tmp_path / "three.jsonl", ["a", "b", "c"])
    commitment = commit_dataset(f)
    leaves = [leaf_hash(r) for r in iter_records(f)]
    forged = RecordProof(
        record=b'"c"',
        index=1,
        tree_size=2,
        root=commitment.root,
        audit_path=(root_of(leaves[:2]),),
    )
    verify_record(forged, commitment.root)  # membership of "c" does hold
    with pytest.raises(ProofError, match="2 records but the commitment has 3"):
        verify_record(forged, commitment)


def test_sorted_flag_must_match(jsonl: Path) -> None:
    proof = prove_record(jsonl, 0)
    with pytest.raises(ProofError, match="sorted"):
        verify_record(proof, commit_dataset(jsonl, sorted_records=True))


def test_malformed_proofs_are_input_errors(jsonl: Path) -> None:
    good = prove_record(jsonl, 1).to_dict()
    for bad in (
        {**good, "type": "other"},
        {**good, "record": "***"},
        {**good, "audit_path": ["00"]},
        {**good, "audit_path": 5},
        {**good, "index": "1"},
        {k: v for k, v in good.items() if k != "root"},
    ):
        with pytest.raises(InputError, match="malformed record proof"):
            load_proof(bad)
    with pytest.raises(InputError):
        load_proof([])  # type: ignore[arg-type]
    # Called directly (not through load_proof), a non-object is malformed input, not a crash.
    with pytest.raises(InputError, match="malformed record proof"):
        RecordProof.from_dict([])  # type: ignore[arg-type]


# --- absence -------------------------------------------------------------------------------


@pytest.mark.parametrize("absent", ["record 5x", "", "zzz", "aaa", "record 99"])
def test_absence_proof_verifies(jsonl: Path, absent: str) -> None:
    commitment = commit_dataset(jsonl, sorted_records=True)
    record = json.dumps(absent).encode()
    proof = prove_absence(jsonl, record)
    verify_absence(proof, commitment)
    verify_absence(AbsenceProof.from_dict(json.loads(json.dumps(proof.to_dict()))), commitment)
    assert isinstance(load_proof(proof.to_dict()), AbsenceProof)


def test_present_record_has_no_absence_proof(jsonl: Path) -> None:
    with pytest.raises(InputError, match="is in the dataset"):
        prove_absence(jsonl, b'"record 4"')


def test_absence_needs_size_and_a_sorted_commitment(jsonl: Path) -> None:
    proof = prove_absence(jsonl, b'"nope"')
    commitment = commit_dataset(jsonl, sorted_records=True)
    with pytest.raises(InputError, match="record count"):
        verify_absence(proof, commitment.root)
    verify_absence(proof, commitment.root, size=commitment.size)
    with pytest.raises(ProofError, match="sorted commitment"):
        verify_absence(proof, commit_dataset(jsonl))


def test_forged_absence_proofs_fail(jsonl: Path) -> None:
    commitment = commit_dataset(jsonl, sorted_records=True)
    proof = prove_absence(jsonl, b'"not there"')
    assert proof.left is not None or proof.right is not None
    present = b'"record 7"'
    # Claiming a present record is absent, reusing a genuine pair of neighbours.
    with pytest.raises(ProofError):
        verify_absence(dataclasses.replace(proof, record=present), commitment)
    # Dropping a neighbour, or pointing at non-adjacent leaves.
    inner = prove_absence(jsonl, _record_between(jsonl))
    assert inner.left is not None and inner.right is not None
    for forged in (
        dataclasses.replace(inner, left=None),
        dataclasses.replace(inner, right=None),
        dataclasses.replace(inner, right=dataclasses.replace(inner.right, index=inner.left.index)),
        dataclasses.replace(inner, left=inner.right, right=inner.left),
        dataclasses.replace(inner, tree_size=inner.tree_size + 1),
        dataclasses.replace(inner, left=dataclasses.replace(inner.left, leaf=b"\x00" * 32)),
    ):
        with pytest.raises(ProofError):
            verify_absence(forged, commitment)


def _record_between(path: Path) -> bytes:
    """A record whose leaf hash falls strictly inside the sorted leaves (not at either end)."""
    leaves = sorted(leaf_hash(r) for r in iter_records(path))
    for i in range(1000):
        candidate = json.dumps(f"absent {i}").encode()
        if leaves[0] < leaf_hash(candidate) < leaves[-1]:
            return candidate
    raise AssertionError("no candidate")  # pragma: no cover


# --- properties ----------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(st.text(max_size=20), min_size=1, max_size=40, unique=True),
    data=st.data(),
    sorted_records=st.booleans(),
)
def test_random_datasets_prove_and_forgeries_fail(
    tmp_path: Path, records: list[str], data: st.DataObject, sorted_records: bool
) -> None:
    f = write_jsonl(tmp_path / "p.jsonl", records)
    commitment = commit_dataset(f, sorted_records=sorted_records)
    assert commitment.size == len(records)
    index = data.draw(st.integers(0, len(records) - 1))
    proof = prove_record(f, index, sorted_records=sorted_records)
    verify_record(proof, commitment)
    assert json.loads(proof.record) in records
    forged = dataclasses.replace(proof, record=proof.record + b"x")
    with pytest.raises(ProofError):
        verify_record(forged, commitment)
    if proof.audit_path:
        for forged in forgeries(proof):
            with pytest.raises(ProofError):
                verify_record(forged, commitment)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(st.text(max_size=10), max_size=30, unique=True), probe=st.text(max_size=10))
def test_random_absence(tmp_path: Path, records: list[str], probe: str) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", records)
    commitment = commit_dataset(f, sorted_records=True)
    record = json.dumps(probe).encode()
    if probe in records:
        with pytest.raises(InputError):
            prove_absence(f, record)
        return
    proof = prove_absence(f, record)
    verify_absence(proof, commitment)
    for present in records[:3]:
        with pytest.raises(ProofError):
            verify_absence(
                dataclasses.replace(proof, record=json.dumps(present).encode()), commitment
            )


def test_dataset_changing_between_passes_is_reported(
    jsonl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sorted proof reads the data twice; if the record is gone by then, say so."""
    import glassbox.digest.dataset as dataset_mod

    monkeypatch.setattr(dataset_mod, "iter_records", lambda path, fmt=None: iter([b'"other"']))
    with pytest.raises(InputError, match="changed while the proof was being built"):
        prove_record(jsonl, 0, sorted_records=True)


@pytest.mark.parametrize("sorted_records", [False, True])
def test_many_proofs_from_one_read_equal_single_proofs(
    tmp_path: Path, sorted_records: bool
) -> None:
    from unittest import mock

    from glassbox.digest import dataset

    path = tmp_path / "dup.jsonl"
    # Duplicate records: in a sorted commitment two indices share one leaf hash.
    path.write_text("".join(json.dumps({"v": i % 7}) + "\n" for i in range(23)))
    indices = [0, 22, 7, 14, 3]
    commitment = commit_dataset(path, sorted_records=sorted_records)
    with mock.patch.object(dataset, "open_records", wraps=dataset.open_records) as reads:
        proofs = prove_records(path, indices, sorted_records=sorted_records)
    assert reads.call_count == 1  # one leaf pass (sorted: plus one record pass, not per proof)
    assert proofs == [prove_record(path, i, sorted_records=sorted_records) for i in indices]
    for proof in proofs:
        verify_record(proof, commitment)
