"""Verified bytes in private memory: read once, hashed as read, parsed in place, never backed
by the file."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from glassbox.digest import HashMethod
from glassbox.errors import InputError
from glassbox.trust import memory
from glassbox.trust.memory import VerifiedBuffer, read_into_memory, safetensors_tensors


def _buffer(data: bytes) -> VerifiedBuffer:
    buffer = VerifiedBuffer(len(data))
    buffer.view()[:] = data
    return buffer


def _read(path: Path, method: HashMethod | None) -> tuple[VerifiedBuffer, tuple[bytes, ...] | None]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_into_memory(fd, os.fstat(fd).st_size, method)
    finally:
        os.close(fd)


def _mapping_of(address: int) -> str:
    """The /proc/self/maps line of the mapping holding ``address``."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= address < hi:
                return line
    raise AssertionError(f"{address:#x} is not mapped")


TENSORS = {
    "f32": torch.arange(12, dtype=torch.float32).reshape(3, 4),
    "f16": torch.linspace(-1, 1, 5, dtype=torch.float16),
    "bf16": torch.ones(2, 2, dtype=torch.bfloat16),
    "i64": torch.tensor([1, -2, 3], dtype=torch.int64),
    "u8": torch.tensor([0, 255], dtype=torch.uint8),
    "flag": torch.tensor([True, False]),
    "empty": torch.zeros(0, 3),
    "scalar": torch.tensor(2.5),
}


def test_tensors_equal_safetensors_and_live_in_anonymous_memory(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(st_save(TENSORS, metadata={"format": "pt"}))
    buffer, digests = _read(path, HashMethod())
    assert digests == (hashlib.sha256(path.read_bytes()).digest(),)
    got = safetensors_tensors(buffer, "w.safetensors")
    expected = st_load(path.read_bytes())
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype and torch.equal(got[name], tensor), name
    # Views into the private buffer (no copy), which is anonymous memory: not the file.
    line = _mapping_of(got["f32"].data_ptr())
    assert "w.safetensors" not in line
    assert line.split()[4] == "0"  # inode 0: not backed by any file
    # Writing the file afterwards cannot reach them.
    path.write_bytes(st_save({k: torch.zeros_like(v) for k, v in TENSORS.items()}))
    assert torch.equal(got["f32"], TENSORS["f32"])


def test_pipelined_hashing_matches_for_files_and_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks hashed by one thread as another reads them give the digests of the file."""
    from glassbox.digest.hashing import hash_range

    monkeypatch.setattr(memory, "CHUNK", 4096)  # many chunks, reader thread in play
    data = os.urandom(100_003)
    path = tmp_path / "blob"
    path.write_bytes(data)
    buffer, digests = _read(path, HashMethod())
    assert bytes(buffer.view()) == data
    assert digests == (hashlib.sha256(data).digest(),)
    shard = 10_000
    _, sharded = _read(path, HashMethod(shard_size=shard))
    assert sharded == tuple(
        hash_range(path, start, min(start + shard, len(data)), "sha256")
        for start in range(0, len(data), shard)
    )
    _, none = _read(path, None)
    assert none is None


def test_empty_file_has_the_methods_digests(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert _read(path, HashMethod())[1] == (hashlib.sha256(b"").digest(),)
    assert _read(path, HashMethod(shard_size=8))[1] == ()


def test_a_file_shorter_than_its_size_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that ends early (the file was truncated under it) fails in the reader thread
    and the error reaches the caller."""
    monkeypatch.setattr(memory, "CHUNK", 4096)
    path = tmp_path / "short"
    path.write_bytes(b"x" * 20_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(InputError, match="shrank while being read"):
            read_into_memory(fd, 40_000, HashMethod())
    finally:
        os.close(fd)


def _raw(header: object, data: bytes = b"", *, pad_to: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    if pad_to is not None:
        text += b" " * (pad_to - len(text))
    return struct.pack("<Q", len(text)) + text + data


_DUP = b'{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":1}'


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\x01\x02", "shorter than the 8-byte header"),
        (struct.pack("<Q", 1 << 40) + b"{}", "does not fit the file"),
        (struct.pack("<Q", 3) + b"{x}", "not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", len(_DUP)) + _DUP, "duplicate key 'a'"),
        (_raw({"a": {"dtype": "X9", "shape": [1], "data_offsets": [0, 1]}}, b"\0"), "dtype"),
        (_raw({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"\0"), "shape"),
        (_raw({"a": {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}}, b"\0"), "shape"),
        (_raw({"a": {"dtype": "U8", "shape": [9], "data_offsets": [0, 9]}}, b"\0"), "outside"),
        (_raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4), "bytes"),
        (
            _raw(
                {
                    "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                    "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]},
                },
                b"\0" * 3,
            ),
            "overlaps",
        ),
        (_raw({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}, b"\0\0"), "gap"),
        (_raw({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\0\0"), "after"),
        (_raw({"a": [1, 2]}), "not an object"),
    ],
)
def test_malformed_files_are_one_line_errors(raw: bytes, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        safetensors_tensors(_buffer(raw), "m/w.safetensors")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("m/w.safetensors: not a valid safetensors file")


def test_a_misaligned_tensor_is_copied_not_misread() -> None:
    """A header whose length leaves the data area off a 4-byte boundary."""
    values = torch.tensor([1.5, -2.0, 3.25])
    header = {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}
    text_len = len(json.dumps(header))
    pad = text_len + (4 - (8 + text_len) % 4) % 4 + 1  # (8 + n) % 4 == 1
    raw = _raw(header, values.numpy().tobytes(), pad_to=pad)
    assert (8 + pad) % 4 == 1
    got = safetensors_tensors(_buffer(raw), "x")["x"]
    assert torch.equal(got, values)
    assert got.data_ptr() % 4 == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_fail_with_one_error(data: bytes) -> None:
    try:
        tensors = safetensors_tensors(_buffer(data), "fuzz")
    except InputError as exc:
        assert str(exc).startswith("fuzz: ")
        return
    assert isinstance(tensors, dict)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdefgh.", min_size=1, max_size=8),
        st.lists(st.floats(allow_nan=False, width=32), max_size=6),
        max_size=5,
    )
)
def test_any_saved_dict_round_trips(values: dict[str, list[float]]) -> None:
    tensors = {k: torch.tensor(v, dtype=torch.float32) for k, v in values.items()}
    got = safetensors_tensors(_buffer(st_save(tensors)), "rt")
    assert set(got) == set(tensors)
    assert all(torch.equal(got[k], v) for k, v in tensors.items())
