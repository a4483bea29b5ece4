"""PyTorch's legacy tar format (before 0.4): the ``storages`` and ``tensors`` members are
pickles interleaved with raw bytes, and ``torch.load`` unpickles every one of them. A generic
scanner stops at the first raw block, so a payload in the third pickle would go unseen; this
follows the layout of ``torch.serialization.legacy_load`` to reach each pickle."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable

from glassbox.scan.context import ScanContext, Source
from glassbox.scan.pickle_ops import ByteReader, Global, PickleResult, TruncatedError, run_pickle
from glassbox.scan.pickle_scan import report_result

Recurse = Callable[[ScanContext, Source, int], None]

ELEMENT_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
    "QInt8Storage": 1,
    "QUInt8Storage": 1,
    "QInt32Storage": 4,
}
MAX_ENTRIES = 1_000_000


def is_legacy_member(name: str) -> bool:
    return name.rsplit("/", 1)[-1] in ("storages", "tensors")


def scan_legacy_member(ctx: ScanContext, src: Source, depth: int, recurse: Recurse) -> None:
    kind = (src.name or "").rsplit("/", 1)[-1]
    with contextlib.closing(src.open()) as f:
        reader = ByteReader(f) if src.data is None else ByteReader.over(src.data)
        stream = 0

        def one() -> PickleResult:
            nonlocal stream
            start = reader.offset
            res = run_pickle(reader, deadline=ctx.deadline)
            report_result(
                ctx, src, res, stream=stream, start=start, strong=True, member=src.member,
                recurse=recurse, depth=depth,
            )  # fmt: skip
            stream += 1
            if not res.stopped:
                raise TruncatedError("pickle did not end")
            return res

        def bad(why: str) -> None:
            ctx.report("GBX-PKL-007", f"legacy torch '{kind}' member: {why}", member=src.member)

        try:
            count = one().value
            if not isinstance(count, int) or not 0 <= count <= MAX_ENTRIES:
                bad(f"entry count {count!r} is not a small integer")
                return
            for _ in range(count):
                args = one().value
                if kind == "storages":
                    storage_type = args[2] if isinstance(args, tuple) and len(args) >= 3 else None
                    size = (
                        ELEMENT_SIZES.get(storage_type.name)
                        if isinstance(storage_type, Global)
                        else None
                    )
                    if size is None:
                        bad("storage of unknown type; the rest was not scanned")
                        return
                    (numel,) = struct.unpack("<q", reader.read(8))
                    if numel < 0:
                        bad("negative storage size")
                        return
                    reader.skip(numel * size)
                else:
                    (ndim,) = struct.unpack("<i", reader.read(4))
                    if not 0 <= ndim <= 64:
                        bad(f"tensor with {ndim} dimensions")
                        return
                    reader.skip(4 + 16 * ndim + 8)
                if ctx.out_of_time():
                    ctx.report("GBX-LIM-002", "time limit reached", member=src.member)
                    return
            if kind == "storages":
                one()  # storage views
            if reader.peek(1):
                bad("unexpected data after the last pickle")
        except (TruncatedError, struct.error) as exc:
            bad(f"truncated ({exc})")
