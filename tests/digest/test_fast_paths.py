"""The batched fast paths of commitments and diffs against their one-record-at-a-time reference.

Commitments are published, so the fast paths (a JSON Lines reader that cuts a whole read into
lines, leaf hashes in one comprehension, perfect subtrees hashed level by level) must give
byte-identical roots, records and errors; these properties hold them to the reference code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glassbox.digest.merkle as merkle
import glassbox.digest.records as records
from glassbox.digest import commit_dataset
from glassbox.digest.merkle import Frontier, inclusion_proofs, leaf_hash, streaming_inclusion_proofs
from glassbox.errors import InputError


def _jsonl_records(path: Path) -> Iterator[bytes]:
    """The reference reader, one ``readline`` and one strict decode per line: the definition
    the batched reader (``records._jsonl_batches``) must match, record for record and error
    for error (module attributes are read at call time, so a patched record limit holds)."""
    with records._open_binary(path) as f:
        line_no = 0
        while True:
            line = f.readline(records.MAX_RECORD_BYTES + 2)
            if not line:
                return
            line_no += 1
            if len(line) > records.MAX_RECORD_BYTES and not line.endswith(b"\n"):
                raise InputError(
                    f"{path}: line {line_no} is longer than {records.MAX_RECORD_BYTES} bytes"
                )
            if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]  # a UTF-8 byte order mark is not part of the first record
            record = line.strip(b" \t\r\n")
            if not record:
                continue
            records._check_json_line(record, path, line_no)
            yield record


hashes = st.lists(st.binary(min_size=32, max_size=32), max_size=80)
LINES = [
    b'{"id":1,"text":"a","label":0}',
    b'{"b":[1,2,{"c":null}],"a":"\\u00e9"}',
    b"  [1, 2]\t",
    b'"x"\r',
    b"42",
    b"",
    b"   ",
    b"{",  # truncated
    b'{"a":1,"a":2}',  # duplicate key
    b"NaN",
    b"[1] [2]",  # two values
    b"1,2",
    b'"\xff"',  # not UTF-8
    b'"' + b"y" * 40 + b'"',  # longer than the patched record limit
    b"\xef\xbb\xbf{}",
    '"caf\u00e9"'.encode(),
]


@given(hashes, st.integers(0, 20), st.sampled_from([2, 4, 8]))
def test_absorb_is_extend(leaves: list[bytes], prefix: int, block: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merkle, "ABSORB_BLOCK", block)
        fast, slow = Frontier(), Frontier()
        start = [hashlib.sha256(bytes([i])).digest() for i in range(prefix)]
        fast.extend(start)
        slow.extend(start)
        fast.absorb(leaves)
        slow.extend(leaves)
    assert (fast.size, fast.hashes, fast.root()) == (slow.size, slow.hashes, slow.root())


@given(hashes.filter(bool), st.data(), st.sampled_from([2, 4, 8]))
def test_streaming_proofs_skip_blocks_no_proof_looks_into(
    leaves: list[bytes], data: st.DataObject, block: int
) -> None:
    indices = data.draw(st.lists(st.integers(0, len(leaves) - 1), max_size=5))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merkle, "ABSORB_BLOCK", block)
        got = streaming_inclusion_proofs(iter(leaves), len(leaves), indices)
    want = dict(zip(indices, inclusion_proofs(leaves, indices), strict=True))
    assert got == want


def _outcome(read: object) -> tuple[str, object]:
    try:
        return "ok", list(read)  # type: ignore[call-overload]
    except InputError as exc:
        return "error", str(exc)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from(LINES), max_size=12),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
    st.sampled_from([1, 3, 7, 64]),
)
def test_batched_jsonl_reader_is_the_reference(
    tmp_path: Path, lines: list[bytes], newline: bytes, final_newline: bool, read_bytes: int
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(newline.join(lines) + (newline if final_newline and lines else b""))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(records, "MAX_RECORD_BYTES", 32)
        mp.setattr(records, "_READ_BYTES", read_bytes)
        reference = _outcome(_jsonl_records(path))
        batched = _outcome(record for batch in records._jsonl_batches(path) for record in batch)
    assert batched == reference


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.dictionaries(
            st.text(max_size=4),
            st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none()),
            max_size=3,
        ),
        max_size=60,
    ),
    st.sampled_from([2, 8, 4096]),
)
def test_commitment_is_the_reference(
    tmp_path: Path, rows: list[dict[str, object]], block: int
) -> None:
    import json

    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    frontier = Frontier()
    for record in _jsonl_records(path):
        frontier.extend([leaf_hash(record)])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merkle, "ABSORB_BLOCK", block)
        mp.setattr(records, "_READ_BYTES", 50)
        commitment = commit_dataset(path)
    assert (commitment.root, commitment.size) == (frontier.root(), frontier.size)


def test_stored_commitment_is_unchanged(tmp_path: Path) -> None:
    # A root computed by the per-record code before the fast paths: it must never change.
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"".join(b'{"id":%d,"label":%d}\n' % (i, i % 3) for i in range(10_000)))
    assert commit_dataset(path).root.hex() == STORED_ROOT


STORED_ROOT = "0b4d68ca850efb989d0a2dc91a875ff333dbeb48ca8e8227f646e14fb816eb18"


@given(hashes, st.integers(0, 3), st.sampled_from([1, 2, 4, 8]))
def test_add_subtree_is_extend(leaves: list[bytes], blocks: int, width: int) -> None:
    """Joining perfect subtree roots gives the tree their leaves give (the parallel commitment
    joins its workers' answers this way)."""
    leaves = (leaves * (blocks * width))[: blocks * width] if leaves else []
    joined, slow = Frontier(), Frontier()
    for at in range(0, len(leaves), width):
        joined.add_subtree(merkle.perfect_root(leaves[at : at + width]), width)
    slow.extend(leaves)
    assert (joined.size, joined.hashes, joined.root()) == (slow.size, slow.hashes, slow.root())
    if width > 1:
        odd = Frontier()
        odd.extend(leaves[:1] or [b"\0" * 32])
        with pytest.raises(ValueError, match="cannot join"):
            odd.add_subtree(b"\0" * 32, width)


@given(st.lists(st.sampled_from(LINES), max_size=12))
def test_valid_json_lines_is_the_per_line_check(lines: list[bytes]) -> None:
    stripped = [line.strip(b" \t\r\n") for line in lines]
    stripped = [line for line in stripped if line and not line.startswith(b"\xef\xbb\xbf")]
    per_line = True
    for number, line in enumerate(stripped, 1):
        try:
            records._check_json_line(line, Path("d.jsonl"), number)
        except InputError:
            per_line = False
    assert records.valid_json_lines(stripped) == per_line


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.sampled_from(LINES[:5] + LINES[-1:]), min_size=0, max_size=70),
    st.sampled_from([4, 16]),
    st.one_of(st.none(), st.integers(0, 69)),
    st.sampled_from([40, 1 << 20]),
)
def test_parallel_commitment_is_the_serial_one(
    tmp_path: Path, lines: list[bytes], width: int, bad_at: int | None, block_bytes: int
) -> None:
    """Root, size and errors of a commitment spread over worker processes are the serial
    commitment's, with full blocks (sized by count or by bytes), a partial last block, and an
    invalid line anywhere."""
    import glassbox.digest.dataset as dataset

    body = list(lines)
    if bad_at is not None and body:
        body.insert(min(bad_at, len(body)), b'{"a":1,"a":2}')
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\n".join(body) + b"\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dataset, "PARALLEL_MIN_BYTES", 0)
        mp.setattr(dataset, "PARALLEL_BLOCK", width)
        mp.setattr(dataset, "PARALLEL_BLOCK_BYTES", block_bytes)  # fewer records per block
        serial = _outcome(commit_dataset(path) for _ in range(1))
        parallel = _outcome(commit_dataset(path, workers=2) for _ in range(1))
        if serial[0] == "ok":  # and the parallel path did run
            assert dataset._commit_parallel(path, None, 2) is not None
    assert parallel == serial
