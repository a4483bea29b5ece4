"""Verified bytes in private memory: read once from one descriptor, hashed as read, loaded from
that same memory.

A loader that is handed a *path* reopens it, so a file checked under that path can be swapped
before it is read; that is why ``glassbox.trust.copy`` makes a private copy on disk. For the
formats Glassbox can deserialise itself from memory (safetensors, which executes no code and is
a JSON header over raw little-endian arrays), no copy on disk is needed: each file is opened
once, read into anonymous private memory (``MAP_PRIVATE | MAP_ANONYMOUS``, transparent huge
pages where the kernel allows), and the tensors are views into that memory. They own it: it is
not backed by the file, so nothing done to the file afterwards (a rename over it, a write in
place, a truncation) reaches them, unlike ``safe_open``/``from_pretrained``'s lazy ``mmap`` of
the file itself.

Cold, the bytes are hashed as they are read: a reader thread fills the buffer chunk by chunk
and this thread hashes each chunk once it has landed (``os.readv`` and ``hashlib`` both release
the GIL), so the cost approaches max(read, hash) and the digest is of exactly the bytes that
will be loaded. Warm, the digest cache vouches for the *open* descriptor's (device, inode,
size, mtime, ctime); the same five are checked again after the last byte is in memory, and a
difference refuses the file. Because the tensors never point back into the file, this
check-after-read is the whole window: there is no later read to race.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import queue
import struct
import sys
import threading
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError

if TYPE_CHECKING:
    from glassbox.digest import HashMethod

CHUNK = 4 << 20  # hashed as soon as it lands; small enough to stay in cache while hashed
HUGE_PAGE = 2 << 20
MAX_HEADER = 100 << 20  # as the safetensors format itself and the scanner limit it

# safetensors dtype -> torch attribute name (torch is imported only when tensors are made).
TORCH_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "C64": "complex64",
}


class VerifiedBuffer:
    """A file's verified bytes in anonymous private memory.

    Never closed explicitly: tensors made from it keep the mapping alive (``torch.frombuffer``
    holds a reference), and it is unmapped when the last of them is gone.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # MAP_PRIVATE: anonymous shared memory is shmem, which gets no huge pages.
        # A whole number of 2 MiB pages: the kernel then aligns the mapping so that all of it,
        # not all but its ends, can be backed by transparent huge pages.
        mapped = max(size, 1) if size < HUGE_PAGE else -(-size // HUGE_PAGE) * HUGE_PAGE
        self.memory = mmap.mmap(-1, mapped, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if size >= HUGE_PAGE and hasattr(mmap, "MADV_HUGEPAGE"):
            with contextlib.suppress(OSError):
                self.memory.madvise(mmap.MADV_HUGEPAGE)  # ~2x faster to fault in

    def view(self) -> memoryview:
        return memoryview(self.memory)[: self.size]

    def tensors(self, where: str) -> dict[str, Any]:
        return safetensors_tensors(self, where)


class ShardHasher:
    """The digests of a byte stream under a hash method (one per shard when sharded), fed in
    chunks of any size."""

    def __init__(self, method: HashMethod) -> None:
        from glassbox.digest.hashing import new_hasher

        algorithm = method.algorithm

        def fresh() -> Any:
            return new_hasher(algorithm)

        self._new = fresh
        self._shard = method.shard_size
        self._hasher = self._new()
        self._in_shard = 0
        self._digests: list[bytes] = []

    def feed(self, chunk: memoryview) -> None:
        if self._shard is None:
            self._hasher.update(chunk)
            return
        while chunk:
            take = min(len(chunk), self._shard - self._in_shard)
            self._hasher.update(chunk[:take])
            self._in_shard += take
            chunk = chunk[take:]
            if self._in_shard == self._shard:
                self._digests.append(self._hasher.digest())
                self._hasher = self._new()
                self._in_shard = 0

    def finish(self) -> tuple[bytes, ...]:
        if self._shard is None:
            return (self._hasher.digest(),)
        if self._in_shard:
            self._digests.append(self._hasher.digest())
        return tuple(self._digests)


def read_into_memory(
    fd: int, size: int, method: HashMethod | None
) -> tuple[VerifiedBuffer, tuple[bytes, ...] | None]:
    """Read ``size`` bytes from ``fd`` (at its start) into private memory; with ``method``,
    also their digests, computed over the buffer as it fills."""
    buffer = VerifiedBuffer(size)
    view = buffer.view()
    if method is None:
        _read_all(fd, view, size, None)
        return buffer, None
    hasher = ShardHasher(method)
    if size <= 2 * CHUNK:
        _read_all(fd, view, size, None)
        hasher.feed(view)
        return buffer, hasher.finish()
    landed: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    failed: list[BaseException] = []

    def reader() -> None:
        try:
            _read_all(fd, view, size, landed)
        except BaseException as exc:  # handed to the hashing thread, raised there
            failed.append(exc)
        finally:
            landed.put(None)

    thread = threading.Thread(target=reader, name="glassbox-verified-read", daemon=True)
    thread.start()
    try:
        while (span := landed.get()) is not None:
            hasher.feed(view[span[0] : span[0] + span[1]])
    finally:
        thread.join()
    if failed:
        raise failed[0]
    return buffer, hasher.finish()


def _read_all(
    fd: int, view: memoryview, size: int, landed: queue.SimpleQueue[tuple[int, int] | None] | None
) -> None:
    step = CHUNK if landed is not None else 1 << 30
    done = 0
    while done < size:
        got = os.readv(fd, [view[done : min(size, done + step)]])
        if not got:
            raise InputError(f"file shrank while being read ({done} of {size} bytes)")
        if landed is not None:
            landed.put((done, got))
        done += got


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def safetensors_tensors(buffer: VerifiedBuffer, where: str) -> dict[str, Any]:
    """The tensors of a safetensors file held in ``buffer``, as views into it (no copy).

    Checked as strictly as the format's reference parser: a bounded header, known dtypes,
    offsets that tile the data area exactly (no overlap, no gap, nothing past the end), sizes
    that match the shapes. A tensor whose offset is not aligned to its element size is copied
    (the one case a view would be misaligned). Raises ``InputError`` naming ``where``.
    """
    import torch

    def bad(problem: str) -> InputError:
        return InputError(f"{where}: not a valid safetensors file: {problem}")

    if sys.byteorder != "little":  # pragma: no cover - no big-endian test machine
        raise InputError(f"{where}: safetensors loads need a little-endian machine")
    size = buffer.size
    view = buffer.view()
    if size < 8:
        raise bad("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", view[:8])
    if n > MAX_HEADER or 8 + n > size:
        raise bad(f"header length {n} does not fit the file ({size} bytes)")
    try:
        header = json.loads(bytes(view[8 : 8 + n]), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    base = 8 + n
    data_len = size - base
    specs: list[tuple[int, int, str, Any, list[int]]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise bad(f"tensor {name!r} is not an object")
        dtype_name = entry.get("dtype")
        shape = entry.get("shape")
        offsets = entry.get("data_offsets")
        if not isinstance(dtype_name, str) or dtype_name not in TORCH_DTYPES:
            raise bad(f"tensor {name!r} has an unsupported dtype {dtype_name!r}")
        dtype = getattr(torch, TORCH_DTYPES[dtype_name], None)
        if dtype is None:  # pragma: no cover - an older torch without this dtype
            raise bad(f"tensor {name!r}: this torch has no {dtype_name}")
        if not isinstance(shape, list) or not all(
            type(d) is int and 0 <= d < 1 << 62 for d in shape
        ):
            raise bad(f"tensor {name!r} has an invalid shape")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            raise bad(f"tensor {name!r} has data offsets outside the file")
        numel = 1
        for d in shape:
            numel *= d
        if numel * dtype.itemsize != offsets[1] - offsets[0]:
            raise bad(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape}")
        specs.append((offsets[0], offsets[1], name, dtype, shape))
    specs.sort(key=lambda s: (s[0], s[1]))
    end = 0
    for start, stop, name, _, _ in specs:
        if start != end:
            raise bad(f"tensor {name!r} overlaps another or leaves a gap at byte {end}")
        end = stop
    if end != data_len:
        raise bad(f"{data_len - end} bytes after the last tensor")
    tensors: dict[str, Any] = {}
    memory = buffer.memory
    for start, stop, name, dtype, shape in specs:
        count = (stop - start) // dtype.itemsize
        if count == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        elif (base + start) % dtype.itemsize == 0:
            tensors[name] = torch.frombuffer(
                memory, dtype=dtype, count=count, offset=base + start
            ).reshape(shape)
        else:
            raw = torch.frombuffer(
                memory, dtype=torch.uint8, count=stop - start, offset=base + start
            )
            tensors[name] = raw.clone().view(dtype).reshape(shape)
    return tensors
