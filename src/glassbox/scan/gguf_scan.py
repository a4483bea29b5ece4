"""GGUF: our own bounded reader of the header, metadata and tensor table.

Every length and count is checked against the bytes that remain before it is used, so a
hostile header (a string length of 2**63, a billion tensors) ends in a finding, not an
allocation. Tensor data must lie inside the file, aligned, without overlap (llama.cpp trusts
these offsets). Chat templates found in the metadata are checked for Jinja escapes.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from glassbox.scan.context import ScanContext, Source
from glassbox.scan.templates import report_template

# ggml type id -> (block size in elements, bytes per block), from the GGML type table.
GGML_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98),
    19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1),
    25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
MAX_STRING = 64 << 20
_U64 = struct.Struct("<Q")
MAX_COUNT = 1 << 27
MAX_DIMS = 4
READ_CHUNK = 1 << 20  # string arrays are walked over buffers of this size


class GGUFError(ValueError):
    pass


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise GGUFError(f"needs {n} bytes at offset {self.pos}, past end of file")
        data = self.f.read(n)
        if len(data) != n:
            raise GGUFError("truncated")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GGUFError(f"skips {n} bytes at offset {self.pos}, past end of file")
        self.f.seek(n, 1)
        self.pos += n

    def skip_strings(self, count: int) -> None:
        """Skip an array of strings (a tokenizer vocabulary: 32k to 250k entries) without
        decoding it: over buffers of ``READ_CHUNK`` bytes, one length read per string in a loop
        kept to a few bytecodes (this walk was most of the time spent on a GGUF file), and a
        string that runs past the buffer is sought over rather than read into it."""
        unpack = _U64.unpack_from
        buf = b""
        at = 0
        remaining = count
        while remaining:
            prev = at
            walked = 0
            try:
                for walked in range(1, remaining + 1):  # noqa: B007 - read after the loop
                    prev = at
                    at += 8 + unpack(buf, at)[0]
            except (struct.error, OverflowError):
                walked -= 1  # the length at ``at`` is not (wholly) in the buffer (or ``at`` is
                # past any buffer: the string before it claimed a length near 2**64)
            remaining -= walked
            blen = len(buf)
            if at > blen:  # the last string walked ends past the buffer: seek to its end
                n = at - prev - 8
                if n > MAX_STRING:
                    raise GGUFError(f"string of {n} bytes in an array")
                self.skip(at - blen)
                buf = b""
                at = 0
            elif remaining:
                more = self._chunk()
                if not more:
                    raise GGUFError("truncated string array")
                buf = buf[at:] + more
                at = 0
        # Give back what was read past the array.
        unread = len(buf) - at
        self.f.seek(-unread, 1)
        self.pos -= unread

    def _chunk(self) -> bytes:
        want = min(READ_CHUNK, self.size - self.pos)
        data = self.f.read(want) if want > 0 else b""
        self.pos += len(data)
        return data

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def string(self, keep: bool = True) -> str | None:
        n = self.u64()
        if n > MAX_STRING:
            raise GGUFError(f"string of {n} bytes at offset {self.pos}")
        if not keep:
            self.skip(n)
            return None
        return self.take(n).decode("utf-8", "replace")

    def value(self, vtype: int, keep: bool) -> object:
        if vtype in _SCALARS:
            fmt = _SCALARS[vtype]
            return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        if vtype == 8:
            return self.string(keep)
        if vtype == 9:
            etype = self.u32()
            count = self.u64()
            if count > MAX_COUNT:
                raise GGUFError(f"array of {count} items")
            if etype in _SCALARS:
                self.skip(count * struct.calcsize(_SCALARS[etype]))
                return None
            if etype == 8:
                self.skip_strings(count)
                return None
            raise GGUFError(f"array of unsupported type {etype}")
        raise GGUFError(f"unknown metadata value type {vtype}")


def scan_gguf(ctx: ScanContext, src: Source) -> None:
    with src.seekable(ctx.limits) as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(0)
        try:
            _scan(ctx, src, _Reader(f, size))
        except GGUFError as exc:
            ctx.report("GBX-GGUF-001", f"GGUF structure invalid: {exc}", member=src.member)


def _scan(ctx: ScanContext, src: Source, r: _Reader) -> None:
    if r.take(4) != b"GGUF":
        raise GGUFError("bad magic")
    version = r.u32()
    if version not in (2, 3):
        raise GGUFError(f"unsupported version {version}")
    n_tensors = r.u64()
    n_kv = r.u64()
    if n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
        raise GGUFError(f"implausible counts ({n_tensors} tensors, {n_kv} metadata keys)")
    alignment = 32
    keys: set[str] = set()
    for _ in range(n_kv):
        key = r.string() or ""
        if key in keys:
            raise GGUFError(f"duplicate metadata key {key!r}; readers disagree on which wins")
        keys.add(key)
        vtype = r.u32()
        wanted = key == "general.alignment" or "chat_template" in key
        value = r.value(vtype, keep=wanted)
        if key == "general.alignment":
            if not isinstance(value, int) or value <= 0 or value & (value - 1):
                raise GGUFError(f"general.alignment {value!r} is not a power of two")
            alignment = value
        elif "chat_template" in key and isinstance(value, str):
            report_template(ctx, src, key, value)
        if ctx.out_of_time():
            ctx.report("GBX-LIM-002", "time limit reached in GGUF metadata", member=src.member)
            return
    tensors: list[tuple[int, int, str]] = []
    names: set[str] = set()
    for _ in range(n_tensors):
        name = r.string() or ""
        if name in names:
            raise GGUFError(f"duplicate tensor name {name!r}")
        names.add(name)
        n_dims = r.u32()
        if n_dims == 0 or n_dims > MAX_DIMS:
            raise GGUFError(f"tensor {name!r} has {n_dims} dimensions")
        count = 1
        for _d in range(n_dims):
            count *= r.u64()
        ttype = r.u32()
        offset = r.u64()
        if ttype not in GGML_SIZES:
            raise GGUFError(f"tensor {name!r} has unknown type {ttype}")
        block, nbytes_block = GGML_SIZES[ttype]
        if count % block:
            raise GGUFError(f"tensor {name!r}: {count} elements not a multiple of block {block}")
        if offset % alignment:
            raise GGUFError(f"tensor {name!r} offset {offset} not aligned to {alignment}")
        tensors.append((offset, count // block * nbytes_block, name))
    data_start = (r.pos + alignment - 1) // alignment * alignment
    tensors.sort()
    prev_end, prev_name = 0, ""
    for offset, nbytes, name in tensors:
        if data_start + offset + nbytes > r.size:
            raise GGUFError(
                f"tensor {name!r} ends at {data_start + offset + nbytes}, past the "
                f"{r.size}-byte file"
            )
        if offset < prev_end:
            raise GGUFError(f"tensors {prev_name!r} and {name!r} overlap")
        prev_end, prev_name = offset + nbytes, name
