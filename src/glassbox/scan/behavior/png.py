"""A minimal greyscale PNG encoder, so a reconstructed trigger can travel inside a JSON report.

Only what the report needs (8-bit greyscale, no filter, nearest-neighbour upscaling so an 8x8
trigger is visible), written against the PNG specification with ``zlib`` and ``struct``.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(image: np.ndarray, *, scale: int = 1) -> bytes:
    """Encode a 2-D array with values in [0, 1] as an 8-bit greyscale PNG."""
    if image.ndim != 2 or image.size == 0:
        raise ValueError("encode_png expects a non-empty 2-D array")
    if scale < 1:
        raise ValueError("scale must be at least 1")
    pixels = np.rint(np.clip(np.nan_to_num(image), 0.0, 1.0) * 255).astype(np.uint8)
    pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    height, width = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 per row
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def png_base64(image: np.ndarray, *, scale: int = 1) -> str:
    return base64.b64encode(encode_png(image, scale=scale)).decode("ascii")
