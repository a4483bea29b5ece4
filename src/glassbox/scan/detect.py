"""Format detection from content (magic bytes and structure), never from the file name.

Renaming a pickle to ``.bin``, ``.txt`` or ``data/0`` is a published scanner bypass; the name is
only used as a tie-breaker for formats without a magic number (ONNX protobuf).
"""

from __future__ import annotations

import enum
import lzma
import struct
import zlib

from glassbox.scan.pickle_ops import (
    OPCODE_NAMES,
    PICKLE_START_OPCODES,
    looks_like_pickle_start,
)

HEAD_SIZE = 1 << 16


class Format(enum.Enum):
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    ZLIB = "zlib"
    LZMA = "lzma"  # raw LZMA ("alone" format: joblib's .xz-less lzma compressor)
    LZ4 = "lz4"
    ZSTD = "zstd"
    ZFILE = "zfile"  # joblib's legacy compressed container
    NPY = "npy"
    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    HDF5 = "hdf5"
    PICKLE = "pickle"
    MAYBE_PICKLE = "maybe-pickle"
    JSON = "json"
    ONNX = "onnx"
    SAVEDMODEL = "tf-savedmodel"
    UNKNOWN = "unknown"


# Opcodes a protocol 0/1 pickle can start with (after which we try a full parse).
_WEAK_PICKLE_STARTS = PICKLE_START_OPCODES


def _is_zlib(head: bytes) -> bool:
    """A zlib header that the head also inflates behind. The two header bytes alone are a weak
    signal (one in a thousand random byte pairs pass), and raw tensor storages that happened to
    start with one were reported as broken zlib streams, a false positive in about one real
    checkpoint in four; data that fails to inflate at its start is not loaded as zlib."""
    if len(head) < 2 or head[0] & 0x0F != 8 or head[0] >> 4 > 7:
        return False
    if (head[0] << 8 | head[1]) % 31:
        return False
    try:
        zlib.decompressobj().decompress(head, 1 << 16)
    except zlib.error:
        return False
    return True


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _hdf5_signature_at(head: bytes) -> int | None:
    """Where the HDF5 superblock starts: offset 0, or after a user block (512, 1024, 2048, ...
    bytes of anything; h5py and Keras open such files as HDF5)."""
    offset = 0
    while offset + 8 <= len(head):
        if head[offset : offset + 8] == HDF5_SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def _utf16_or_bom_json(head: bytes) -> bool:
    """JSON behind a byte-order mark or in UTF-16/32 (``json.loads`` on bytes reads them)."""
    for bom, enc in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if head.startswith(bom):
            text = head[len(bom) : len(bom) + 64].decode(enc, "ignore").lstrip()
            return text[:1] in ("{", "[")
    return (
        head[:4] in (b"{\x00\x00\x00", b"[\x00\x00\x00")
        or (len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[:1] in (b"{", b"["))
        or (len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1:2] in (b"{", b"["))
    )


def _is_zfile(head: bytes) -> bool:
    """joblib's legacy container: b"ZF", the hex length padded to 19 bytes, then zlib."""
    if len(head) < 23 or not head.startswith(b"ZF0x"):
        return False
    length = head[2:21].rstrip(b" ")
    return all(c in b"0123456789abcdefABCDEFx" for c in length[2:]) and len(length) > 2


def _is_lzma_alone(head: bytes) -> bool:
    """The legacy .lzma header (properties byte, dictionary size, length) that decodes."""
    if len(head) < 13 or head[0] > 224:
        return False
    (dict_size,) = struct.unpack("<I", head[1:5])
    if dict_size < 4096 or (dict_size & (dict_size - 1) and dict_size != 0xFFFFFFFF):
        return False
    try:
        lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(head, 1 << 12)
    except lzma.LZMAError:
        return False
    return True


def _protobuf_model(head: bytes) -> bool:
    """ONNX ModelProto starts with small-numbered fields with valid wire types."""
    if not head or head[0] != 0x08:  # field 1 (ir_version), varint
        return False
    i = 1
    while i < len(head) and head[i] & 0x80:
        i += 1
    i += 1
    if i >= len(head):
        return False
    tag = head[i]
    field, wire = tag >> 3, tag & 7
    return 1 <= field <= 20 and wire in (0, 2)


def detect(head: bytes, size: int | None, name: str = "") -> Format:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return Format.ZIP
    if head.startswith(b"\x93NUMPY"):
        return Format.NPY
    if head.startswith(b"GGUF"):
        return Format.GGUF
    if _hdf5_signature_at(head) is not None:
        return Format.HDF5
    if head.startswith(b"\x1f\x8b"):
        return Format.GZIP
    if head.startswith(b"BZh") and len(head) > 3 and head[3:4].isdigit():
        return Format.BZ2
    if head.startswith(b"\xfd7zXZ\x00"):
        return Format.XZ
    if head.startswith(b"\x04\x22\x4d\x18"):
        return Format.LZ4
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return Format.ZSTD
    if _is_zfile(head):
        return Format.ZFILE
    if _is_lzma_alone(head):
        return Format.LZMA
    if len(head) >= 262 and head[257:262] == b"ustar":
        return Format.TAR
    if looks_like_pickle_start(head):
        return Format.PICKLE
    if len(head) >= 10 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        fits = n >= 2 and (size is None or n + 8 <= size)
        # A header length past the end is still safetensors (and a finding), if it looks like one.
        if fits or head[9:10] in (b'"', b"}"):
            return Format.SAFETENSORS
    if _is_zlib(head):
        return Format.ZLIB
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"[") or _utf16_or_bom_json(head):
        return Format.JSON
    if name.endswith("saved_model.pb"):
        return Format.SAVEDMODEL
    if _protobuf_model(head) or (name.endswith(".onnx") and head[:1] in (b"\x08", b"\x12", b":")):
        return Format.ONNX
    if maybe_pickle(head):
        return Format.MAYBE_PICKLE
    return Format.UNKNOWN


def maybe_pickle(head: bytes) -> bool:
    """Starts with an opcode a protocol 0/1 pickle can start with (a weak signal only)."""
    return bool(head) and head[0] in _WEAK_PICKLE_STARTS and head[0] in OPCODE_NAMES
