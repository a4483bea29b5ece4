"""The report's trigger image is a valid PNG that decodes back to the same pixels."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from glassbox.scan.behavior.png import SIGNATURE, encode_png


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(SIGNATURE)
    pos, chunks = len(SIGNATURE), {}
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        payload = png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks[kind] = payload
        pos += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[i * (width + 1) : (i + 1) * (width + 1)] for i in range(height)]
    assert all(r[0] == 0 for r in rows)
    assert b"IEND" in chunks
    return np.array([list(r[1:]) for r in rows], dtype=np.uint8)


@settings(max_examples=30, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.floats(0, 1)),
    st.integers(1, 3),
)
def test_round_trip(image: np.ndarray, scale: int) -> None:
    out = decode(encode_png(image, scale=scale))
    expected = np.repeat(np.repeat(np.rint(image * 255).astype(np.uint8), scale, 0), scale, 1)
    assert np.array_equal(out, expected)


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="2-D"):
        encode_png(np.zeros(4))
    with pytest.raises(ValueError, match="scale"):
        encode_png(np.zeros((2, 2)), scale=0)
