"""safetensors: the format is safe only if its header is; check it as strictly as the spec.

An 8-byte little-endian header length, a JSON object of tensors (dtype, shape, data_offsets into
the byte buffer that follows) and optional string ``__metadata__``. Overlapping or out-of-bounds
offsets and duplicate keys are where parsers disagree, so each is a finding.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import struct

from glassbox.scan.context import ScanContext, Source

DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
    "C128": 16,
}
# Sub-byte types: size in bits per element.
_SUBBYTE_BITS = {"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(f"duplicate key {k!r}")
        out[k] = v
    return out


def scan_safetensors(ctx: ScanContext, src: Source) -> None:
    def bad(message: str, subject: str | None = None) -> None:
        ctx.report("GBX-ST-001", message, member=src.member, subject=subject)

    with contextlib.closing(src.open()) as f:
        pre = f.read(8)
        if len(pre) < 8:
            bad("file shorter than the 8-byte header length")
            return
        (n,) = struct.unpack("<Q", pre)
        if n > ctx.limits.max_safetensors_header:
            bad(f"header length {n} exceeds {ctx.limits.max_safetensors_header} bytes")
            return
        raw = f.read(n)
    if len(raw) < n:
        bad(f"header length {n} runs past the end of the file")
        return
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        bad(f"header is not valid JSON ({exc})")
        return
    if not isinstance(header, dict):
        bad("header is not a JSON object")
        return
    buffer = None if src.size is None else src.size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in info.items()
            ):
                bad("__metadata__ must map strings to strings", name)
            continue
        if not isinstance(info, dict) or set(info) - {"dtype", "shape", "data_offsets"}:
            bad("tensor entry has unexpected fields", name)
            continue
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_SIZES and dtype not in _SUBBYTE_BITS:
            bad(f"unknown dtype {dtype!r}", name)
            continue
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            bad("shape is not a list of non-negative integers", name)
            continue
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            bad("data_offsets is not a pair of integers", name)
            continue
        begin, end = offsets
        count = 1
        for d in shape:
            count *= d
        if isinstance(dtype, str) and dtype in DTYPE_SIZES:
            nbytes = count * DTYPE_SIZES[dtype]
        else:
            nbytes = (count * _SUBBYTE_BITS[str(dtype)] + 7) // 8
        if begin < 0 or end < begin:
            bad(f"data_offsets [{begin}, {end}] are inverted or negative", name)
            continue
        if end - begin != nbytes:
            bad(f"data_offsets span {end - begin} bytes but {dtype}{shape} needs {nbytes}", name)
        if buffer is not None and end > buffer:
            bad(f"tensor ends at {end}, past the {buffer}-byte data buffer", name)
        spans.append((begin, end, name))
    spans.sort()
    for (_b1, e1, n1), (b2, _e2, n2) in itertools.pairwise(spans):
        if b2 < e1:
            bad(f"tensors {n1!r} and {n2!r} overlap", n2)
    # The spec requires the buffer to be fully indexed: bytes no tensor owns are hidden data.
    covered = 0
    for begin, end, _name in spans:
        if begin > covered:
            break
        covered = max(covered, end)
    if buffer is not None and covered < buffer:
        bad(f"{buffer - covered} bytes of the data buffer belong to no tensor (hidden data)")
