"""``.npy`` arrays: a bounded header parse; object arrays hide a pickle right after it."""

from __future__ import annotations

import ast
import contextlib
import re
import struct
from collections.abc import Callable

from glassbox.scan.context import ScanContext, Source
from glassbox.scan.pickle_ops import ByteReader
from glassbox.scan.pickle_scan import scan_pickle_reader

Recurse = Callable[[ScanContext, Source, int], None]
MAX_HEADER = 1 << 20


_DIM = r"(?:0|[1-9][0-9]*)"
# The header exactly as numpy writes it for a plain dtype: ``repr`` of a dict with its three
# keys in numpy's order, a simple type code and a tuple of non-negative ints, then padding.
_USUAL_HEADER = re.compile(
    r"\{'descr': '([<>|=]?[A-Za-z][A-Za-z0-9]*(?:\[[A-Za-z0-9]+\])?)', "
    r"'fortran_order': (True|False), "
    rf"'shape': \((|{_DIM},|{_DIM}(?:, {_DIM})+)\), \}}[ \n]*",
    re.ASCII,
)


def usual_header(text: str) -> dict[str, object] | None:
    """The header numpy writes for every plain array, parsed without compiling it; None for
    any other text. ``ast.literal_eval`` compiles its input to an AST, which cost more than
    the rest of scanning an ``.npz`` member; whatever this accepts is a literal that
    ``literal_eval`` reads to the very same dict (tested), and everything else goes to it."""
    m = _USUAL_HEADER.fullmatch(text)
    if m is None:
        return None
    descr, order, dims = m.groups()
    shape = tuple(int(d) for d in dims.rstrip(",").split(", ") if d)
    return {"descr": descr, "fortran_order": order == "True", "shape": shape}


def _parse_header(text: str) -> dict[str, object]:
    usual = usual_header(text)
    if usual is not None:
        return usual
    # ast.literal_eval only builds literals (no names, calls or attributes): the same parser
    # numpy itself uses for this header; bounded by MAX_HEADER.
    value = ast.literal_eval(text)
    if not isinstance(value, dict) or not {"descr", "fortran_order", "shape"} <= set(value):
        raise ValueError("header is not a dict with descr, fortran_order and shape")
    return value


def _has_object(descr: object) -> bool:
    """Whether numpy would build object items (and so unpickle) for this ``descr``. numpy reads
    the string through ``np.dtype``, which accepts "O", "|O8", "object", "object_", comma
    lists ("i4,O") and sub-array prefixes ("(2,)O"): no other type code holds an "O" or the
    word "object", so either anywhere in the string is treated as an object dtype."""
    if isinstance(descr, str):
        return "O" in descr or "object" in descr.lower()
    if isinstance(descr, list):  # fields: (name, dtype[, shape]); a name is not a type
        return any(isinstance(f, tuple | list) and len(f) >= 2 and _has_object(f[1]) for f in descr)
    return False


def _itemsize(descr: object) -> int | None:
    if isinstance(descr, str):
        code = descr.lstrip("<>|=")
        kind, digits = code[:1], code[1:]
        if digits.isdigit():
            return int(digits) * (4 if kind == "U" else 1)
        if kind == "?":
            return 1
    return None


def scan_npy(ctx: ScanContext, src: Source, depth: int, recurse: Recurse) -> None:
    with contextlib.closing(src.open()) as f:
        pre = f.read(10)
        try:
            if len(pre) < 10:
                raise ValueError("truncated preamble")
            major = pre[6]
            if major == 1:
                hlen = struct.unpack("<H", pre[8:10])[0]
                rest = b""
            elif major in (2, 3):
                rest = f.read(2)
                if len(rest) < 2:
                    raise ValueError("truncated preamble")
                hlen = struct.unpack("<I", pre[8:10] + rest)[0]
            else:
                raise ValueError(f"unknown format version {major}")
            if hlen > MAX_HEADER:
                raise ValueError(f"header of {hlen} bytes exceeds {MAX_HEADER}")
            raw = f.read(hlen)
            if len(raw) < hlen:
                raise ValueError("truncated header")
            header = _parse_header(raw.decode("utf-8" if major == 3 else "latin-1"))
        except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
            ctx.report("GBX-NPY-001", f"numpy header unreadable ({exc})", member=src.member)
            return
        data_start = len(pre) + len(rest) + hlen
        shape = header["shape"]
        if not isinstance(shape, tuple) or not all(isinstance(x, int) and x >= 0 for x in shape):
            ctx.report("GBX-NPY-001", f"numpy shape {shape!r} is invalid", member=src.member)
            return
        if _has_object(header["descr"]):
            ctx.report(
                "GBX-PKL-009",
                "object array: numpy.load needs allow_pickle=True, which runs the pickle below",
                member=src.member,
            )
            reader = ByteReader(f, start=data_start)
            scan_pickle_reader(ctx, src, reader, depth, recurse, strong=True)
            return
        itemsize = _itemsize(header["descr"])
        if itemsize is not None and src.size is not None:
            count = 1
            for dim in shape:
                count *= dim
            if data_start + count * itemsize > src.size:
                ctx.report(
                    "GBX-NPY-001",
                    f"array needs {count * itemsize} data bytes but the file holds "
                    f"{src.size - data_start}",
                    member=src.member,
                )
