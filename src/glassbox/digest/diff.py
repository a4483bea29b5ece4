"""Dataset diffs: which records a derived dataset added, removed, modified or relabelled.

Records are matched by a *key*: a field of each record (a JSON Lines / Parquet field, a CSV
column) named by the caller, or, when none is named, the record's position (record ``i`` of the
upstream against record ``i`` of the derived dataset). A keyed record whose bytes differ is
*relabelled* when only its label field differs and *modified* otherwise.

Memory stays bounded whatever the size: each side is read once as a stream of small entries
(key, index, leaf hash, a digest of the record without its label, the label), sorted by key in
runs of ``run_records`` entries spilled to temporary files and merged back (an external merge
sort); the two sorted streams are then merge-joined. Only the first ``limit`` changes are kept
in memory; the rest are counted. Each kept change carries RFC 9162 inclusion proofs of its
record(s) against both sides' commitments, built by one more streaming pass per side
(``glassbox.digest.merkle.streaming_inclusion_proofs``), so a reader can check every named
change against the two published roots without the data.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import json
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from glassbox.digest.dataset import DatasetCommitment, RecordProof, verify_record
from glassbox.digest.merkle import Frontier, leaf_hashes, streaming_inclusion_proofs
from glassbox.digest.records import open_records
from glassbox.errors import InputError, VerificationError

DIFF_TYPE = "https://glassbox.dev/dataset-diff/v1"
CHANGE_KINDS = ("added", "removed", "modified", "relabelled")
DEFAULT_LABEL = "label"
RUN_RECORDS = 200_000
MAX_LABELS = 1000  # distinct label values summarised; more are counted under "(other)"
MAX_KEY_BYTES = 4096
_sha256 = hashlib.sha256
_HEAD = struct.Struct(">IQ32s16sH")

# (key, index, leaf hash, digest of the record without its label, label)
Entry = tuple[bytes, int, bytes, bytes, bytes]


@dataclass(frozen=True)
class RecordChange:
    """One changed record, by key, with proofs of its bytes on each side that has it."""

    kind: str
    key: str
    upstream_index: int | None
    derived_index: int | None
    upstream_label: str | None = None
    derived_label: str | None = None
    upstream_proof: RecordProof | None = None
    derived_proof: RecordProof | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "upstream_index": self.upstream_index,
            "derived_index": self.derived_index,
            "upstream_label": self.upstream_label,
            "derived_label": self.derived_label,
            "upstream_proof": self.upstream_proof.to_dict() if self.upstream_proof else None,
            "derived_proof": self.derived_proof.to_dict() if self.derived_proof else None,
        }


@dataclass
class DatasetDiff:
    """The outcome: both commitments, counts by kind and by label, and the listed changes."""

    upstream: DatasetCommitment
    derived: DatasetCommitment
    key: str | None
    label: str | None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGE_KINDS, 0))
    unchanged: int = 0
    by_label: dict[str, dict[str, int]] = field(default_factory=dict)
    changes: list[RecordChange] = field(default_factory=list)
    omitted: int = 0

    @property
    def changed(self) -> int:
        return sum(self.counts.values())

    def kinds(self) -> set[str]:
        """The kinds of change present (for a step's declared allowance)."""
        return {kind for kind, n in self.counts.items() if n}

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": DIFF_TYPE,
            "key": self.key or "(record index)",
            "label": self.label,
            "upstream": self.upstream.to_dict(),
            "derived": self.derived.to_dict(),
            "summary": {**self.counts, "unchanged": self.unchanged},
            "by_label": self.by_label,
            "changes": [c.to_dict() for c in self.changes],
            "changes_omitted": self.omitted,
        }


# --- reading one side ---------------------------------------------------------------------


class _Side:
    """Streams one dataset as diff entries, committing to it on the way."""

    def __init__(
        self,
        path: Path,
        fmt: str | None,
        key: str | None,
        label: str | None,
        known_root: bytes | None = None,
    ) -> None:
        self.path = path
        self.known_root = known_root
        self.fmt = fmt
        self.key = key
        self.label = label
        self.frontier = Frontier()
        self.commitment: DatasetCommitment | None = None

    def entries(self) -> Iterator[Entry]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Entry]]:
        """The side's entries, a list per batch of records (file order)."""
        # A side whose root the caller already holds (committed, so checked, moments ago) is
        # not checked again: its root is compared instead, once the pass is over.
        stream = open_records(self.path, self.fmt, validate=self.known_root is None)
        self.fmt = stream.fmt
        header = stream.metadata.get("header")
        key_at = _column(header, self.key, self.path) if header and self.key else None
        label_at = _column(header, self.label, self.path, optional=True) if header else None
        absorb, entry, index = self.frontier.absorb, self._entry, 0
        key_name, label_name = self.key, self.label
        for batch in stream.batches:
            leaves = leaf_hashes(batch)
            absorb(leaves)
            if key_name is None and label_name is None:
                yield [
                    (at.to_bytes(8, "big"), at, leaf, leaf[:16], b"")
                    for at, leaf in enumerate(leaves, index)
                ]
                index += len(leaves)
                continue
            # Every record is one JSON value (the readers check it), so the batch parses as one
            # array in a single C call instead of a ``json.loads`` per record.
            values = _parse_batch(batch, self.path)
            out: list[Entry] = []
            add = out.append
            for leaf, value in zip(leaves, values, strict=True):
                # The common case inline (an object with its key and label fields); anything
                # else, errors included, through ``_entry``: the same entry either way.
                if (
                    type(value) is dict
                    and label_name is not None
                    and label_name in value
                    and (key_name is None or key_name in value)
                ):
                    if key_name is None:
                        key = index.to_bytes(8, "big")
                    else:
                        found = value[key_name]
                        key = str(found).encode() if type(found) is int else _canonical(found)
                    if len(key) <= MAX_KEY_BYTES:
                        rest = value.copy()
                        found = rest.pop(label_name)
                        label = str(found).encode() if type(found) is int else _canonical(found)
                        add((key, index, leaf, _sha256(_canonical(rest)).digest()[:16], label))
                        index += 1
                        continue
                add(entry(index, value, leaf, key_at, label_at))
                index += 1
            yield out
        root = self.frontier.root()
        if self.known_root is not None and root != self.known_root:
            raise InputError(
                f"{self.path}: its records commit to {root.hex()}, not the expected "
                f"{self.known_root.hex()}: the dataset changed since it was committed"
            )
        self.commitment = DatasetCommitment(
            root=root,
            size=self.frontier.size,
            fmt=stream.fmt,
            name=self.path.name,
            metadata=stream.metadata,
        )

    def _entry(
        self, index: int, value: Any, leaf: bytes, key_at: int | None, label_at: int | None
    ) -> Entry:
        if self.key is None:
            key = index.to_bytes(8, "big")
        else:
            key = _canonical(self._field(value, self.key, key_at, index, required=True))
            if len(key) > MAX_KEY_BYTES:
                raise InputError(
                    f"{self.path}: record {index}: key {self.key!r} is longer than "
                    f"{MAX_KEY_BYTES} bytes"
                )
        rest, label = leaf[:16], b""
        if self.label is not None:
            found = self._field(value, self.label, label_at, index, required=False)
            if found is not _MISSING:
                label = _canonical(found)
                rest = _without(value, self.label, label_at)
        return (key, index, leaf, rest, label)

    def _field(
        self, value: Any, name: str, column: int | None, index: int, *, required: bool
    ) -> Any:
        if isinstance(value, dict):
            if name in value:
                return value[name]
        elif isinstance(value, list) and column is not None:
            return value[column]
        if not required:
            return _MISSING
        what = "column" if column is not None else "field"
        raise InputError(f"{self.path}: record {index} has no key {what} {name!r}")


def _parse_batch(batch: list[bytes], path: Path) -> list[Any]:
    try:
        values: list[Any] = json.loads(b"[" + b",".join(batch) + b"]")
    except (ValueError, RecursionError):  # the readers only yield JSON; this is defensive
        raise InputError(f"{path}: a record is not JSON") from None
    if len(values) != len(batch):
        raise InputError(f"{path}: a record is not one JSON value")
    return values


_MISSING = object()
# Records come from the readers as JSON already (JSON Lines as written, CSV and Parquet rows as
# canonical JSON), so their values are JSON-native and need none of canonical_json's tagging.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_CANONICAL = _ENCODER.encode
# ``JSONEncoder.encode`` builds a new C encoder on every call, most of the cost of encoding a
# small record; this is the same C encoder built once (with the same settings, so the same
# bytes), or ``None`` where the C accelerator is missing.
_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Callable[[Any, int], Sequence[str]] | None = (
    None
    if _MAKE_ENCODER is None
    else _MAKE_ENCODER(
        None,
        _ENCODER.default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        True,
        False,
        False,
    )
)


def _canonical(value: Any) -> bytes:
    kind = type(value)
    if kind is int:
        return str(value).encode()
    if kind is str:
        return json.encoder.encode_basestring(value).encode("utf-8")
    if _C_ENCODE is not None and (kind is dict or kind is list):
        return "".join(_C_ENCODE(value, 0)).encode("utf-8")
    return _CANONICAL(value).encode("utf-8")


def _column(
    header: list[str], name: str | None, path: Path, *, optional: bool = False
) -> int | None:
    if name is None:
        return None
    if name not in header:
        if optional:
            return None
        raise InputError(
            f"{path}: CSV header has no column {name!r} (columns: {', '.join(header)})"
        )
    if header.count(name) > 1:
        raise InputError(f"{path}: CSV header names column {name!r} twice")
    return header.index(name)


def _without(value: Any, label: str, column: int | None) -> bytes:
    """Digest of the record with its label removed: equal on both sides means a relabel."""
    if isinstance(value, dict):
        rest: Any = value.copy()
        rest.pop(label, None)
    else:
        rest = [v for i, v in enumerate(value) if i != column]
    return hashlib.sha256(_canonical(rest)).digest()[:16]


# --- external sort ------------------------------------------------------------------------


def _write_run(entries: list[Entry], handle: IO[bytes]) -> None:
    pack = _HEAD.pack
    for key, index, leaf, rest, label in entries:
        handle.write(pack(len(key), index, leaf, rest, len(label)))
        handle.write(key)
        handle.write(label)


def _read_run(path: Path) -> Iterator[Entry]:
    """One sorted run, streamed back (64 KiB of buffer per run: a merge of the hundreds of
    runs of a 100-million-record dataset stays small)."""
    size = _HEAD.size
    unpack = _HEAD.unpack
    with path.open("rb", buffering=1 << 16) as handle:
        while head := handle.read(size):
            key_len, index, leaf, rest, label_len = unpack(head)
            key = handle.read(key_len)
            label = handle.read(label_len)
            yield (key, index, leaf, rest, label)


def _sorted_entries(side: _Side, work: Path, run_records: int) -> Iterator[Entry]:
    """The side's entries in key order, sorted in bounded memory."""
    if side.key is None:
        yield from side.entries()  # keyed by position: already in order
        return
    runs: list[Path] = []
    buffer: list[Entry] = []
    for batch in side.batches():
        buffer.extend(batch)
        while len(buffer) >= run_records:
            spill, buffer = buffer[:run_records], buffer[run_records:]
            spill.sort()
            run = work / f"{id(side)}-{len(runs)}.run"
            with run.open("wb", buffering=1 << 20) as handle:
                _write_run(spill, handle)
            runs.append(run)
            del spill  # not held while the next run fills: one run in memory at a time
    buffer.sort()
    if not runs:
        yield from buffer
        return
    yield from heapq.merge(iter(buffer), *(_read_run(r) for r in runs))


def _unique(entries: Iterator[Entry], path: Path, key: str | None) -> Iterator[Entry]:
    previous: Entry | None = None
    for entry in entries:
        if previous is not None and previous[0] == entry[0]:
            raise InputError(
                f"{path}: key {key!r} is not unique: {_show(entry[0])} is records "
                f"{previous[1]} and {entry[1]}"
            )
        previous = entry
        yield entry


def _show(key: bytes) -> str:
    text = key.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= 200 else text[:200] + "…"


_LABEL_NAMES: dict[bytes, str] = {}


def _label_text(label: bytes) -> str | None:
    if not label:
        return None
    try:
        value = json.loads(label)
    except ValueError:
        return _show(label)
    return value if isinstance(value, str) else _show(label)


# --- the diff -----------------------------------------------------------------------------


def diff_datasets(
    upstream: str | Path,
    derived: str | Path,
    *,
    key: str | None = None,
    label: str | None = DEFAULT_LABEL,
    upstream_format: str | None = None,
    derived_format: str | None = None,
    limit: int | None = 10_000,
    proofs: bool = True,
    run_records: int = RUN_RECORDS,
    progress: Callable[[int], None] | None = None,
    upstream_root: bytes | None = None,
) -> DatasetDiff:
    """Compare two datasets record by record (see the module docstring).

    ``key`` names the field (or CSV column) that identifies a record; ``None`` matches records by
    position. ``label`` names the label field (``None``: no relabel class). ``limit`` caps the
    changes listed (``None``: all; counts always cover everything). ``progress`` is called with
    the number of records read. ``upstream_root``: the upstream's commitment root, when the
    caller already committed it; its records are then not checked again, and the diff fails if
    they no longer commit to that root.
    """
    if key is not None and key == label:
        raise InputError(f"the key field {key!r} cannot also be the label field")
    if run_records < 1:
        raise InputError("run_records must be at least 1")
    up_side = _Side(Path(upstream), upstream_format, key, label, upstream_root)
    down_side = _Side(Path(derived), derived_format, key, label)
    with tempfile.TemporaryDirectory(prefix="glassbox-diff-") as tmp:
        work = Path(tmp)
        a = _unique(_sorted_entries(up_side, work, run_records), up_side.path, key)
        b = _unique(_sorted_entries(down_side, work, run_records), down_side.path, key)
        changes: list[tuple[str, Entry | None, Entry | None]] = []
        counts = dict.fromkeys(CHANGE_KINDS, 0)
        by_label: dict[str, dict[str, int]] = {}
        unchanged = omitted = 0
        seen = 0

        def note(kind: str, old: Entry | None, new: Entry | None) -> None:
            nonlocal omitted
            counts[kind] += 1
            if kind == "relabelled":
                assert old is not None and new is not None
                _count(by_label, old[4], "relabelled_from")
                _count(by_label, new[4], "relabelled_to")
            else:
                entry = old if old is not None else new
                assert entry is not None
                _count(by_label, entry[4], kind)
            if limit is None or len(changes) < limit:
                changes.append((kind, old, new))
            else:
                omitted += 1

        x, y = next(a, None), next(b, None)
        while x is not None or y is not None:
            if y is None or (x is not None and x[0] < y[0]):
                assert x is not None
                note("removed", x, None)
                x = next(a, None)
                seen += 1
            elif x is None or y[0] < x[0]:
                note("added", None, y)
                y = next(b, None)
                seen += 1
            else:
                if x[2] == y[2]:
                    unchanged += 1
                elif x[3] == y[3] and x[4] != y[4]:
                    note("relabelled", x, y)
                else:
                    note("modified", x, y)
                x, y = next(a, None), next(b, None)
                seen += 2
            if progress is not None and seen >= 65536:
                progress(seen)
                seen = 0
        if progress is not None and seen:
            progress(seen)
    assert up_side.commitment is not None and down_side.commitment is not None
    result = DatasetDiff(
        upstream=up_side.commitment,
        derived=down_side.commitment,
        key=key,
        label=label,
        counts=counts,
        unchanged=unchanged,
        by_label=dict(sorted(by_label.items())),
        omitted=omitted,
    )
    up_proofs: dict[int, RecordProof] = {}
    down_proofs: dict[int, RecordProof] = {}
    if proofs and changes:
        up_proofs = _prove(up_side, {o[1] for _, o, _ in changes if o is not None})
        down_proofs = _prove(down_side, {n[1] for _, _, n in changes if n is not None})
    for kind, old, new in changes:
        either = old if old is not None else new
        assert either is not None
        result.changes.append(
            RecordChange(
                kind=kind,
                key=_show(either[0]) if key else str(either[1]),
                upstream_index=old[1] if old else None,
                derived_index=new[1] if new else None,
                upstream_label=_label_text(old[4]) if old else None,
                derived_label=_label_text(new[4]) if new else None,
                upstream_proof=up_proofs.get(old[1]) if old else None,
                derived_proof=down_proofs.get(new[1]) if new else None,
            )
        )
    return result


def _count(by_label: dict[str, dict[str, int]], label: bytes, kind: str) -> None:
    name = _LABEL_NAMES.get(label)
    if name is None:
        name = _label_text(label) or "(none)"
        if len(_LABEL_NAMES) < MAX_LABELS * 4:  # labels are few: each parsed once, not per record
            _LABEL_NAMES[label] = name
    if name not in by_label and len(by_label) >= MAX_LABELS:
        name = "(other)"
    slot = by_label.setdefault(name, {})
    slot[kind] = slot.get(kind, 0) + 1


def _prove(side: _Side, indices: set[int]) -> dict[int, RecordProof]:
    """Inclusion proofs for ``indices`` of one side, from one more streaming pass."""
    commitment = side.commitment
    assert commitment is not None
    records: dict[int, bytes] = {}
    wanted = sorted(indices)

    def leaves() -> Iterator[bytes]:
        # No JSON check on this pass: a record that changed since the first pass changes its
        # leaf, and the proof built from it then fails against the commitment below.
        start = 0
        for batch in open_records(side.path, side.fmt, validate=False).batches:
            end = start + len(batch)
            for i in wanted[bisect.bisect_left(wanted, start) : bisect.bisect_left(wanted, end)]:
                records[i] = batch[i - start]
            yield from leaf_hashes(batch)
            start = end

    try:
        paths = streaming_inclusion_proofs(leaves(), commitment.size, indices)
    except ValueError:
        raise InputError(f"{side.path}: the dataset changed while the diff was read") from None
    out = {}
    for index, path in paths.items():
        proof = RecordProof(
            record=records[index],
            index=index,
            tree_size=commitment.size,
            root=commitment.root,
            audit_path=tuple(path),
            fmt=commitment.fmt,
        )
        try:
            verify_record(proof, commitment)
        except VerificationError:
            raise InputError(f"{side.path}: the dataset changed while the diff was read") from None
        out[index] = proof
    return out
