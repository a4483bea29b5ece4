"""Route a byte source to the scanner for its detected format, recursively, and turn every
failure inside a format scanner into a finding instead of a crash."""

from __future__ import annotations

import struct
import zlib

from glassbox.scan.configs import scan_yaml
from glassbox.scan.containers import (
    scan_compressed,
    scan_tar,
    scan_zip,
    trailing_zip,
    zip_end_inside_tar_member,
)
from glassbox.scan.context import BombError, LimitError, ScanContext, Source
from glassbox.scan.detect import HEAD_SIZE, Format, detect, maybe_pickle
from glassbox.scan.gguf_scan import scan_gguf
from glassbox.scan.keras import scan_hdf5, scan_json
from glassbox.scan.numpy_scan import scan_npy
from glassbox.scan.onnx_scan import scan_onnx
from glassbox.scan.pickle_scan import scan_pickle
from glassbox.scan.safetensors_scan import scan_safetensors
from glassbox.scan.serving import scan_savedmodel

_COMPRESSED = {
    Format.GZIP: "gzip",
    Format.BZ2: "bz2",
    Format.XZ: "xz",
    Format.ZLIB: "zlib",
    Format.LZMA: "lzma",
    Format.LZ4: "lz4",
    Format.ZSTD: "zstd",
    Format.ZFILE: "zfile",
}


def scan_source(ctx: ScanContext, src: Source, depth: int = 0) -> None:
    where = src.member
    if depth > ctx.limits.max_depth:
        ctx.report(
            "GBX-LIM-001",
            f"containers nested more than {ctx.limits.max_depth} deep; not inspected further",
            member=where,
        )
        return
    if ctx.out_of_time():
        ctx.report("GBX-LIM-002", "time limit reached; member not scanned", member=where)
        return
    try:
        head = src.head(HEAD_SIZE)
        fmt = detect(head, src.size, src.name)
        _dispatch(ctx, src, depth, fmt, head)
    # One name per except clause: compiled with mypyc (hatch_build.py), a name is typed by
    # its first clause, and binding another exception class to it fails at run time.
    except BombError as bomb:
        ctx.report("GBX-ZIP-003", f"decompression bomb: {bomb}", member=where)
    except LimitError as limit:
        ctx.report("GBX-LIM-002", str(limit), member=where)
    except RecursionError:
        ctx.report("GBX-LIM-001", "structure nested too deeply", member=where)
    except (OSError, EOFError, ValueError, struct.error, zlib.error, MemoryError) as err:
        ctx.report("GBX-FS-002", f"could not be read ({type(err).__name__}: {err})", member=where)
    except Exception as exc:  # a scanner bug must not hide the other members: report, go on
        if depth == 0:
            raise
        ctx.report(
            "GBX-LIM-002",
            f"scanner failed on this member ({type(exc).__name__}: {exc})",
            member=where,
        )


def _dispatch(ctx: ScanContext, src: Source, depth: int, fmt: Format, head: bytes) -> None:
    _dispatch_format(ctx, src, depth, fmt, head)
    whole = src.size is not None and len(head) >= src.size
    if fmt is Format.ZIP or (whole and b"PK\x05\x06" not in head):
        return  # the head held the whole file and it has no end-of-zip record
    if trailing_zip(src) and not (fmt is Format.TAR and zip_end_inside_tar_member(ctx, src)):
        ctx.report(
            "GBX-ZIP-008",
            f"{fmt.value} file is also a zip archive (polyglot): loaders that open it as a zip "
            "see different content",
            member=src.member,
        )
        scan_zip(ctx, src, depth, scan_source)


def _dispatch_format(ctx: ScanContext, src: Source, depth: int, fmt: Format, head: bytes) -> None:
    if fmt is Format.MAYBE_PICKLE or (fmt is Format.ZLIB and maybe_pickle(head)):
        # A zlib header can also be the start of a protocol-0 pickle (MARK, STRING is "(S"):
        # a stream that is both is scanned both ways.
        if scan_pickle(ctx, src, depth, scan_source, strong=False):
            ctx.formats.add(Format.PICKLE.value)
        if fmt is Format.MAYBE_PICKLE:
            return
    if fmt is not Format.UNKNOWN and fmt is not Format.SAVEDMODEL:
        ctx.formats.add(fmt.value)
    if fmt is Format.PICKLE:
        scan_pickle(ctx, src, depth, scan_source, strong=True)
    elif fmt is Format.ZIP:
        scan_zip(ctx, src, depth, scan_source)
    elif fmt is Format.TAR:
        scan_tar(ctx, src, depth, scan_source)
    elif fmt in _COMPRESSED:
        scan_compressed(ctx, src, depth, scan_source, _COMPRESSED[fmt])
    elif fmt is Format.NPY:
        scan_npy(ctx, src, depth, scan_source)
    elif fmt is Format.SAFETENSORS:
        scan_safetensors(ctx, src)
    elif fmt is Format.GGUF:
        scan_gguf(ctx, src)
    elif fmt is Format.ONNX:
        scan_onnx(ctx, src)
    elif fmt is Format.JSON:
        scan_json(ctx, src)
    elif fmt is Format.HDF5:
        scan_hdf5(ctx, src)
    elif fmt is Format.SAVEDMODEL:
        scan_savedmodel(ctx, src)
    elif fmt is Format.UNKNOWN and src.name.lower().endswith((".yaml", ".yml")):
        scan_yaml(ctx, src)
