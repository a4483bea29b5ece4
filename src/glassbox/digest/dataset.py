"""Dataset commitments: one Merkle root over a dataset's records, and proofs about single records.

A producer publishes the commitment (root and record count) without publishing the data; later
they can prove that a given record was in it (an RFC 9162 inclusion proof, verified with the
same ``glassbox.digest.merkle`` code the transparency log uses) or, for a *sorted* commitment,
that a record was not.

Leaves are ``leaf_hash(record_bytes)`` with the canonical bytes of ``glassbox.digest.records``.
An unsorted commitment keeps file order (leaf ``i`` is record ``i``) and is computed streaming in
O(log n) memory. A sorted commitment orders the leaves by their hash; an absence proof is then
two adjacent leaves whose hashes bracket the absent record's leaf hash, each with an inclusion
proof. Only the neighbours' leaf *hashes* are revealed, not their records.

What a verifier must trust: the root, and the record count (``size``). With the root alone an
inclusion proof still shows that the record is one of the leaves, but not *which* index (a
proof can restate a leaf's position in a smaller claimed tree); absence proofs need the size,
since adjacency and the ends of the tree are defined by it.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.digest.merkle import (
    Frontier,
    ProofError,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    leaf_hashes,
    root_of,
    verify_inclusion,
)
from glassbox.digest.records import iter_records, open_records
from glassbox.errors import InputError

COMMITMENT_TYPE = "https://glassbox.dev/dataset-commitment/v1"
RECORD_PROOF_TYPE = "https://glassbox.dev/dataset-record-proof/v1"
ABSENCE_PROOF_TYPE = "https://glassbox.dev/dataset-absence-proof/v1"


@dataclass(frozen=True)
class DatasetCommitment:
    """What a producer publishes: the root over ``size`` records of format ``fmt``."""

    root: bytes
    size: int
    fmt: str
    sorted_records: bool = False
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": COMMITMENT_TYPE,
            "name": self.name,
            "format": self.fmt,
            "sorted": self.sorted_records,
            "size": self.size,
            "root": self.root.hex(),
            "leaf_hash": "rfc9162-sha256",
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetCommitment:
        try:
            if not isinstance(data, dict):
                raise TypeError("expected a JSON object")
            if data.get("type") != COMMITMENT_TYPE:
                raise ValueError(f"type is {data.get('type')!r}, expected {COMMITMENT_TYPE}")
            commitment = cls(
                root=_hash32(data["root"], "root"),
                size=_count(data["size"], "size"),
                fmt=str(data["format"]),
                sorted_records=bool(data.get("sorted", False)),
                name=str(data.get("name", "")),
                metadata=dict(data.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed dataset commitment: {exc}") from exc
        return commitment


@dataclass(frozen=True)
class RecordProof:
    """Inclusion proof: ``record`` is leaf ``index`` of a ``tree_size``-leaf tree under ``root``."""

    record: bytes
    index: int
    tree_size: int
    root: bytes
    audit_path: tuple[bytes, ...]
    fmt: str = ""
    sorted_records: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": RECORD_PROOF_TYPE,
            "format": self.fmt,
            "sorted": self.sorted_records,
            "index": self.index,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "record": base64.b64encode(self.record).decode("ascii"),
            "audit_path": [h.hex() for h in self.audit_path],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordProof:
        try:
            if data.get("type") != RECORD_PROOF_TYPE:
                raise ValueError(f"type is {data.get('type')!r}, expected {RECORD_PROOF_TYPE}")
            return cls(
                record=base64.b64decode(data["record"], validate=True),
                index=_count(data["index"], "index"),
                tree_size=_count(data["tree_size"], "tree_size"),
                root=_hash32(data["root"], "root"),
                audit_path=tuple(_hash32(h, "audit path hash") for h in data["audit_path"]),
                fmt=str(data.get("format", "")),
                sorted_records=bool(data.get("sorted", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            raise InputError(f"malformed record proof: {exc}") from exc


@dataclass(frozen=True)
class Neighbour:
    """A leaf next to where an absent record would sit: its index, leaf hash and audit path."""

    index: int
    leaf: bytes
    audit_path: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leaf_hash": self.leaf.hex(),
            "audit_path": [h.hex() for h in self.audit_path],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Neighbour:
        return cls(
            index=_count(data["index"], "index"),
            leaf=_hash32(data["leaf_hash"], "leaf hash"),
            audit_path=tuple(_hash32(h, "audit path hash") for h in data["audit_path"]),
        )


@dataclass(frozen=True)
class AbsenceProof:
    """``record`` is not in the sorted commitment: its leaf hash falls between two adjacent leaves.

    ``left`` is ``None`` when the record would sort before every leaf, ``right`` when after.
    """

    record: bytes
    tree_size: int
    root: bytes
    left: Neighbour | None
    right: Neighbour | None
    fmt: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": ABSENCE_PROOF_TYPE,
            "format": self.fmt,
            "sorted": True,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "record": base64.b64encode(self.record).decode("ascii"),
            "left": None if self.left is None else self.left.to_dict(),
            "right": None if self.right is None else self.right.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbsenceProof:
        try:
            if data.get("type") != ABSENCE_PROOF_TYPE:
                raise ValueError(f"type is {data.get('type')!r}, expected {ABSENCE_PROOF_TYPE}")
            left, right = data["left"], data["right"]
            return cls(
                record=base64.b64decode(data["record"], validate=True),
                tree_size=_count(data["tree_size"], "tree_size"),
                root=_hash32(data["root"], "root"),
                left=None if left is None else Neighbour.from_dict(left),
                right=None if right is None else Neighbour.from_dict(right),
                fmt=str(data.get("format", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            raise InputError(f"malformed absence proof: {exc}") from exc


def load_proof(data: dict[str, Any]) -> RecordProof | AbsenceProof:
    """Either kind of proof, by its ``type``."""
    if not isinstance(data, dict):
        raise InputError("malformed proof: expected a JSON object")
    if data.get("type") == ABSENCE_PROOF_TYPE:
        return AbsenceProof.from_dict(data)
    return RecordProof.from_dict(data)


# --- producing ----------------------------------------------------------------------------


PARALLEL_BLOCK = 16384  # most records per worker task: one perfect subtree, one 32-byte answer
PARALLEL_BLOCK_BYTES = 4 << 20  # ... fewer for larger records, so memory in flight stays small
PARALLEL_MIN_BYTES = 64 << 20  # below this, starting worker processes costs more than it saves


def commit_dataset(
    path: str | Path,
    *,
    fmt: str | None = None,
    sorted_records: bool = False,
    workers: int = 1,
) -> DatasetCommitment:
    """The Merkle commitment to the dataset at ``path``.

    ``workers`` > 1 spreads an unsorted JSON Lines commitment of at least
    ``PARALLEL_MIN_BYTES`` over that many processes (``_commit_parallel``); the root is the
    same, and so is every error.
    """
    if workers > 1 and not sorted_records:
        parallel = _commit_parallel(Path(path), fmt, workers)
        if parallel is not None:
            return parallel
    stream = open_records(path, fmt)
    if sorted_records:
        leaves = sorted(leaf for batch in stream.batches for leaf in leaf_hashes(batch))
        root, size = root_of(leaves), len(leaves)
    else:
        # A list of records at a time: its leaves in one comprehension, its subtrees level by
        # level (``Frontier.absorb``), so no Python frame runs per record.
        frontier = Frontier()
        for batch in stream.batches:
            frontier.absorb(leaf_hashes(batch))
        root, size = frontier.root(), frontier.size
    return DatasetCommitment(
        root=root,
        size=size,
        fmt=stream.fmt,
        sorted_records=sorted_records,
        name=Path(path).name,
        metadata=stream.metadata,
    )


def _block_root(records: list[bytes], width: int) -> bytes | list[bytes] | None:
    """A worker's task: check each record as one strict JSON value, hash the leaves, and return
    the perfect subtree's root (a full block of ``width``) or the leaves (the last, partial
    block); ``None`` if a record is not valid (the caller then names it)."""
    from glassbox.digest.merkle import perfect_root
    from glassbox.digest.records import valid_json_lines

    if not valid_json_lines(records):
        return None
    leaves = leaf_hashes(records)
    return perfect_root(leaves) if len(leaves) == width else leaves


def _commit_parallel(path: Path, fmt: str | None, workers: int) -> DatasetCommitment | None:
    """An unsorted JSON Lines commitment over ``workers`` processes, or ``None`` where it does
    not apply (another format, a compressed or small file: the serial path runs instead).

    This process only reads and cuts lines (unchecked) into blocks of a power of two records
    (``PARALLEL_BLOCK``, fewer where that would pass ``PARALLEL_BLOCK_BYTES``); each worker
    checks its block's records, hashes their leaves and its perfect subtree, and answers one
    hash, which joins the frontier in file order. At most two blocks
    per worker are in flight, so memory stays flat in the dataset's size. A block with an
    invalid record sends the whole file through the serial path, which raises the same error,
    naming the same line, as a serial commitment would. Workers are spawned, not forked: the
    caller may have threads.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    from glassbox.digest.records import detect_format
    from glassbox.errors import InputError

    if not path.is_file() or path.suffix.lower() == ".gz":
        return None
    if detect_format(path, fmt) != "jsonl" or path.stat().st_size < PARALLEL_MIN_BYTES:
        return None
    stream = open_records(path, "jsonl", validate=False)
    width = 0  # a power of two, fixed from the first read's record sizes
    frontier = Frontier()
    invalid = False

    def join(answer: bytes | list[bytes] | None) -> None:
        nonlocal invalid
        if answer is None:
            invalid = True
        elif isinstance(answer, bytes):
            frontier.add_subtree(answer, width)
        else:
            frontier.absorb(answer)

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        in_flight: deque[Future[bytes | list[bytes] | None]] = deque()
        block: list[bytes] = []
        for batch in stream.batches:
            if not width:
                average = max(1, sum(map(len, batch)) // len(batch))
                width = min(PARALLEL_BLOCK, max(1, PARALLEL_BLOCK_BYTES // average))
                width = 1 << (width.bit_length() - 1)
            block.extend(batch)
            while len(block) >= width and not invalid:
                in_flight.append(pool.submit(_block_root, block[:width], width))
                del block[:width]
                while len(in_flight) > 2 * workers:
                    join(in_flight.popleft().result())
            if invalid:
                break
        if block and not invalid:
            in_flight.append(pool.submit(_block_root, block, width))
        while in_flight:
            join(in_flight.popleft().result())
    if invalid:
        commit_dataset(path, fmt="jsonl")  # raises the serial path's error for the first bad line
        raise InputError(f"{path}: the dataset changed while it was read")
    return DatasetCommitment(
        root=frontier.root(),
        size=frontier.size,
        fmt="jsonl",
        sorted_records=False,
        name=path.name,
        metadata=stream.metadata,
    )


def _leaves(
    path: str | Path,
    fmt: str | None,
    sorted_records: bool,
    keep: set[int] | frozenset[int] = frozenset(),
) -> tuple[str, list[bytes], dict[int, bytes]]:
    """Format, leaf hashes in commitment order, and the records at the file indices ``keep``."""
    stream = open_records(path, fmt)
    leaves: list[bytes] = []
    kept: dict[int, bytes] = {}
    wanted = sorted(keep)
    for batch in stream.batches:
        start, end = len(leaves), len(leaves) + len(batch)
        for i in wanted[bisect.bisect_left(wanted, start) : bisect.bisect_left(wanted, end)]:
            kept[i] = batch[i - start]
        leaves.extend(leaf_hashes(batch))
    if sorted_records:
        leaves.sort()
    return stream.fmt, leaves, kept


def _records_at(
    records: Iterator[bytes], leaves: list[bytes], indices: set[int]
) -> dict[int, bytes]:
    """The records at sorted ``indices``, found by their leaf hashes in a second pass."""
    wanted: dict[bytes, list[int]] = {}
    for index in indices:
        wanted.setdefault(leaves[index], []).append(index)
    found: dict[int, bytes] = {}
    for record in records:
        for at in wanted.get(leaf_hash(record), ()):
            found[at] = record
    if len(found) != len(indices):
        raise InputError("the dataset changed while the proof was being built")
    return found


def prove_record(
    path: str | Path, index: int, *, fmt: str | None = None, sorted_records: bool = False
) -> RecordProof:
    """Inclusion proof for record ``index`` (file order, or leaf-hash order when sorted)."""
    return prove_records(path, [index], fmt=fmt, sorted_records=sorted_records)[0]


def prove_records(
    path: str | Path,
    indices: Sequence[int],
    *,
    fmt: str | None = None,
    sorted_records: bool = False,
) -> list[RecordProof]:
    """Inclusion proofs for many records from one pass over the data (two when sorted: a
    sorted index's record is only known once every leaf has been seen).

    Needs every leaf hash in memory (32 bytes per record); the tree's levels are hashed once
    and shared by all the proofs.
    """
    wanted = set(indices)
    kind, leaves, kept = _leaves(
        path, fmt, sorted_records, keep=set() if sorted_records else wanted
    )
    for index in indices:
        if not 0 <= index < len(leaves):
            raise InputError(
                f"record {index} does not exist: the dataset has {len(leaves)} records"
            )
    if sorted_records:
        kept = _records_at(iter_records(path, kind), leaves, wanted)
    root = root_of(leaves)
    paths = inclusion_proofs(leaves, indices)
    return [
        RecordProof(
            record=kept[index],
            index=index,
            tree_size=len(leaves),
            root=root,
            audit_path=tuple(audit_path),
            fmt=kind,
            sorted_records=sorted_records,
        )
        for index, audit_path in zip(indices, paths, strict=True)
    ]


def prove_absence(path: str | Path, record: bytes, *, fmt: str | None = None) -> AbsenceProof:
    """Proof that ``record`` (canonical bytes) is not in the *sorted* commitment of ``path``."""
    kind, leaves, _ = _leaves(path, fmt, sorted_records=True)
    target = leaf_hash(record)
    at = bisect.bisect_left(leaves, target)
    if at < len(leaves) and leaves[at] == target:
        raise InputError(f"the record is in the dataset (sorted index {at}); it cannot be absent")

    def neighbour(i: int) -> Neighbour | None:
        if not 0 <= i < len(leaves):
            return None
        return Neighbour(i, leaves[i], tuple(inclusion_proof(leaves, i)))

    return AbsenceProof(
        record=record,
        tree_size=len(leaves),
        root=root_of(leaves),
        left=neighbour(at - 1),
        right=neighbour(at),
        fmt=kind,
    )


# --- verifying ----------------------------------------------------------------------------

Trusted = DatasetCommitment | bytes | str


def _trusted(commitment_or_root: Trusted, size: int | None) -> tuple[bytes, int | None]:
    """The root (and record count, when known) the verifier trusts; never the proof's own."""
    if isinstance(commitment_or_root, DatasetCommitment):
        if size is not None and size != commitment_or_root.size:
            raise InputError(f"size {size} contradicts the commitment ({commitment_or_root.size})")
        return commitment_or_root.root, commitment_or_root.size
    if isinstance(commitment_or_root, str):
        try:
            return _hash32(commitment_or_root, "root"), size
        except ValueError as exc:
            raise InputError(f"malformed root: {exc}") from exc
    if len(commitment_or_root) != 32:
        raise InputError(f"a root is 32 bytes, got {len(commitment_or_root)}")
    return bytes(commitment_or_root), size


def _check_tree(proof_size: int, proof_root: bytes, trusted_size: int | None, root: bytes) -> None:
    """The tree a proof claims must be the trusted one (its size too, when that is known)."""
    if trusted_size is not None and proof_size != trusted_size:
        raise ProofError(f"proof is for {proof_size} records but the commitment has {trusted_size}")
    if proof_root != root:
        raise ProofError(f"proof is for root {proof_root.hex()}, not {root.hex()}")


def verify_record(
    proof: RecordProof, commitment_or_root: Trusted, *, size: int | None = None
) -> None:
    """Raise ``ProofError`` unless ``proof.record`` is in the committed dataset.

    With a commitment (or ``size``) the record's index is checked too; with a bare root only its
    membership is (see the module docstring).
    """
    root, trusted_size = _trusted(commitment_or_root, size)
    if (
        isinstance(commitment_or_root, DatasetCommitment)
        and proof.sorted_records != commitment_or_root.sorted_records
    ):
        raise ProofError("proof and commitment disagree on whether records are sorted")
    _check_tree(proof.tree_size, proof.root, trusted_size, root)
    verify_inclusion(leaf_hash(proof.record), proof.index, proof.tree_size, proof.audit_path, root)


def verify_absence(
    proof: AbsenceProof, commitment_or_root: Trusted, *, size: int | None = None
) -> None:
    """Raise ``ProofError`` unless ``proof.record`` is provably not in the sorted commitment."""
    root, trusted_size = _trusted(commitment_or_root, size)
    if isinstance(commitment_or_root, DatasetCommitment) and not commitment_or_root.sorted_records:
        raise ProofError("absence can only be proven against a sorted commitment")
    if trusted_size is None:
        raise InputError("an absence proof needs the commitment's record count (size)")
    _check_tree(proof.tree_size, proof.root, trusted_size, root)
    target = leaf_hash(proof.record)
    left, right = proof.left, proof.right
    if left is None and right is None:
        if trusted_size != 0:
            raise ProofError("absence proof names no neighbours in a non-empty dataset")
        return
    if left is None:
        if right is None or right.index != 0:
            raise ProofError("a record before every leaf needs leaf 0 as its right neighbour")
    elif right is None:
        if left.index != trusted_size - 1:
            raise ProofError("a record after every leaf needs the last leaf as its left neighbour")
    elif right.index != left.index + 1:
        raise ProofError(f"neighbours {left.index} and {right.index} are not adjacent")
    if left is not None:
        if not left.leaf < target:
            raise ProofError("the left neighbour does not sort before the record")
        verify_inclusion(left.leaf, left.index, trusted_size, left.audit_path, root)
    if right is not None:
        if not target < right.leaf:
            raise ProofError("the right neighbour does not sort after the record")
        verify_inclusion(right.leaf, right.index, trusted_size, right.audit_path, root)


# --- parsing helpers ----------------------------------------------------------------------


def _hash32(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a hex string")
    raw = bytes.fromhex(value)
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer")
    return value
