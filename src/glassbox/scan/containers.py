"""Zip, tar and compressed streams: walk members by content, refuse bombs and tricks.

Zip members are read through our own local-header reader rather than ``zipfile.open``: PyTorch
(miniz) ignores CRCs and the encryption flag, so scanners that trusted ``zipfile`` were blinded
by a flipped flag bit or a bad CRC (CVE-2025-1945, CVE-2025-10156) while ``torch.load`` still ran
the payload. Every disagreement between what ``zipfile`` and a loader would see is a finding.
"""

from __future__ import annotations

import contextlib
import itertools
import lzma
import posixpath
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from typing import BinaryIO, cast

from glassbox.scan.context import (
    BombError,
    DecompressStream,
    LimitError,
    ScanContext,
    SectionStream,
    Source,
    may_be_utf8,
    read_upto,
)
from glassbox.scan.detect import HEAD_SIZE, Format, detect
from glassbox.scan.torch_legacy import is_legacy_member, scan_legacy_member
from glassbox.scan.torchscript import is_code_member, is_torchscript, scan_code

Recurse = Callable[[ScanContext, Source, int], None]

_ZIP_METHODS = {0: "stored", 8: "deflate", 12: "bz2", 14: "lzma"}
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
CRC_CHECK_LIMIT = 256 << 20
SMALL_MEMBER = 1 << 20


def unsafe_member_name(name: str) -> str | None:
    """Why a member name would escape an extraction directory, or None."""
    if "\x00" in name:
        return "contains a NUL byte"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "is an absolute path"
    if ".." in norm.split("/"):
        return "contains '..'"
    if ".." in norm and posixpath.normpath(norm).startswith(".."):  # (no "..", no escape)
        return "escapes the archive root"
    return None


def _member_stream(
    f: BinaryIO, start: int, csize: int, method: int, ctx: ScanContext, declared: int
) -> BinaryIO:
    raw = SectionStream(f, start, csize)
    if method == 0:
        return cast(BinaryIO, raw)
    if method == 14:
        return cast(BinaryIO, _ZipLzmaStream(raw, ctx, declared))
    kind = "deflate" if method == 8 else "bz2"
    return cast(BinaryIO, DecompressStream(cast(BinaryIO, raw), kind, ctx.limits, declared))


class _ZipLzmaStream(DecompressStream):
    """Zip's LZMA members carry a 4-byte version + 2-byte props-size + props header."""

    def __init__(self, raw: SectionStream, ctx: ScanContext, declared: int) -> None:
        header = raw.read(4)
        props_size = struct.unpack("<H", header[2:4])[0] if len(header) == 4 else 0
        props = raw.read(props_size)
        super().__init__(cast(BinaryIO, raw), "xz", ctx.limits, declared=declared)
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
        self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])


# Formats whose bytes decide what code runs (a CRC failure there is a parser differential that
# has blinded scanners); array, tensor and model-weight formats are not in the list.
_CODE_BEARING = frozenset(
    {Format.PICKLE, Format.MAYBE_PICKLE, Format.ZIP, Format.TAR, Format.GZIP, Format.BZ2,
     Format.XZ, Format.ZLIB, Format.JSON}
)  # fmt: skip


def _parsed_format(child: Source) -> bool | None:
    """Whether a loader parses this member (True), not (False), or only if the weak pickle
    scan finds a pickle in it (None: decided after scanning, so that raw tensor bytes that
    merely start with a protocol-0 opcode byte are not checksummed for nothing)."""
    try:
        head = child.head(HEAD_SIZE)
        fmt = detect(head, child.size, child.name)
    except (BombError, zlib.error, OSError, EOFError, ValueError):
        return True
    if fmt is Format.MAYBE_PICKLE:
        return None
    if fmt is Format.JSON:
        return may_be_utf8(head, len(head) < HEAD_SIZE)  # not UTF-8: no JSON parser reads it
    return fmt in _CODE_BEARING


def _member_crc(opener: Callable[[], BinaryIO]) -> int:
    with contextlib.closing(opener()) as s:
        return _crc_of(s)


def _report_crc(ctx: ScanContext, member: str) -> None:
    ctx.report(
        "GBX-ZIP-004",
        "member fails its CRC check; zipfile-based scanners stop here while PyTorch loads it",
        member=member,
    )


def _crc_of(stream: BinaryIO) -> int:
    crc = 0
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return crc
        crc = zlib.crc32(chunk, crc)


def declared_entries(f: BinaryIO) -> int | None:
    """Entry count from the end-of-central-directory record (zip64 aware), read before
    ``zipfile`` builds one object per entry: a forged count must not cost gigabytes."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(max(0, size - (1 << 16) - 22))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    count = int(struct.unpack_from("<H", tail, at + 10)[0])
    if count == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        (z64_offset,) = struct.unpack_from("<Q", tail, at - 12)
        if 0 <= z64_offset <= size - 56:
            f.seek(z64_offset)
            record = f.read(56)
            if record[:4] == b"PK\x06\x06":
                count = int(struct.unpack_from("<Q", record, 32)[0])
    return count


def zip_readers_disagree(f: BinaryIO) -> str | None:
    """Why two real zip readers would see different members in this archive, or None.

    ``zipfile`` (numpy, Keras, most scanners) finds the last end-of-central-directory record
    and, when the central directory is not where that record says, shifts every member offset by
    the difference (data prepended to the archive). PyTorch's reader (miniz) uses the offsets as
    written. A gap therefore makes the two read different bytes as ``data.pkl``; so does a second
    end record that also points at a central directory, since readers pick different ones."""
    f.seek(0, 2)
    size = f.tell()
    start = max(0, size - (1 << 16) - 22)
    f.seek(start)
    tail = f.read()
    valid: list[int] = []
    at = tail.find(b"PK\x05\x06")
    while at >= 0:
        if at + 22 <= len(tail):
            cd_size, cd_offset = struct.unpack_from("<II", tail, at + 12)
            if cd_offset != 0xFFFFFFFF and cd_offset + cd_size <= start + at:
                f.seek(cd_offset)
                if f.read(4) == b"PK\x01\x02" or cd_size == 0:
                    valid.append(at)
        at = tail.find(b"PK\x05\x06", at + 1)
    last = tail.rfind(b"PK\x05\x06")
    if last < 0 or last + 22 > len(tail):
        return None
    cd_size, cd_offset = struct.unpack_from("<II", tail, last + 12)
    record_at = start + last
    if last >= 20 and tail[last - 20 : last - 16] == b"PK\x06\x07":
        # zip64 (PyTorch writes it even for small files): zipfile reads the zip64 record just
        # before the locator and measures the gap from there.
        record_at = start + last - 20 - 56
        f.seek(max(0, record_at))
        record = f.read(56)
        if record_at < 0 or record[:4] != b"PK\x06\x06":
            return None
        cd_size, cd_offset = struct.unpack_from("<QQ", record, 40)
    gap = record_at - cd_size - cd_offset
    if gap != 0:
        return (
            f"the central directory is {gap} bytes away from where the end record puts it: "
            "zipfile shifts every member by that, PyTorch's reader does not"
        )
    if len(valid) > 1:
        return (
            f"{len(valid)} end-of-central-directory records each point at a central directory: "
            "readers that search differently open different archives"
        )
    return None


def scan_zip(ctx: ScanContext, src: Source, depth: int, recurse: Recurse) -> None:
    with src.seekable(ctx.limits) as f:
        disagreement = zip_readers_disagree(f)
        if disagreement is not None:
            ctx.report("GBX-ZIP-009", f"zip readers disagree: {disagreement}", member=src.member)
            # Also read every member the way a reader without the shift finds them: in order
            # of their local headers from the start of the file.
            _scan_local_headers(ctx, src, f, depth, recurse)
        count = declared_entries(f)
        if count is not None and count > ctx.limits.max_members:
            ctx.report(
                "GBX-ZIP-003",
                f"zip declares {count} entries (limit {ctx.limits.max_members}); not opened",
                member=src.member,
            )
            return
        try:
            zf = zipfile.ZipFile(f)
            infos = zf.infolist()
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            NotImplementedError,
            OSError,
            ValueError,
            EOFError,
            struct.error,
        ) as exc:
            ctx.report(
                "GBX-ZIP-006", f"zip central directory unreadable ({exc})", member=src.member
            )
            _scan_local_headers(ctx, src, f, depth, recurse)
            return
        _scan_zip_entries(ctx, src, f, infos, depth, recurse)


def _scan_zip_entries(
    ctx: ScanContext,
    src: Source,
    f: BinaryIO,
    infos: list[zipfile.ZipInfo],
    depth: int,
    recurse: Recurse,
) -> None:
    limits = ctx.limits
    if len(infos) > limits.max_members:
        ctx.report(
            "GBX-ZIP-003",
            f"zip has {len(infos)} entries (limit {limits.max_members})",
            member=src.member,
        )
        infos = infos[: limits.max_members]
    names: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    tags = src.tags
    if is_torchscript([i.orig_filename for i in infos]):
        tags = tags | {"torchscript"}
    f.seek(0, 2)
    archive_size = f.tell()
    for info in infos:
        name = info.orig_filename
        member = src.child(name)
        if name in names:
            ctx.report(
                "GBX-ZIP-005",
                "zip has two members with the same name; loaders disagree on which one wins",
                member=member,
                subject=name,
            )
        names.add(name)
        why = unsafe_member_name(name)
        if why:
            ctx.report("GBX-ZIP-001", f"member name {why}", member=member, subject=name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            ctx.report("GBX-ZIP-007", "zip member is a symbolic link", member=member, subject=name)
            continue
        if not name:
            ctx.report("GBX-ZIP-006", "zip member with an empty name", member=member)
            continue
        if name.endswith("/"):
            continue
        # Local header: what a streaming loader actually reads.
        f.seek(info.header_offset)
        raw = f.read(_LOCAL.size)
        if len(raw) < _LOCAL.size or raw[:4] != b"PK\x03\x04":
            ctx.report(
                "GBX-ZIP-002",
                "central directory points at no local header",
                member=member,
                subject=name,
            )
            continue
        (_, _ver, flags, method, _t, _d, _crc, _csize_l, _usize_l, nlen, xlen) = _LOCAL.unpack(raw)
        local_name_raw = f.read(nlen)
        enc = "utf-8" if flags & 0x800 else "cp437"
        local_name = local_name_raw.decode(enc, "replace")
        if local_name != name or method != info.compress_type:
            ctx.report(
                "GBX-ZIP-002",
                f"local header says {local_name!r}/{_ZIP_METHODS.get(method, method)} but "
                f"central directory says {name!r}/"
                f"{_ZIP_METHODS.get(info.compress_type, info.compress_type)}",
                member=member,
                subject=name,
            )
            if local_name != name:
                lwhy = unsafe_member_name(local_name)
                if lwhy:
                    ctx.report(
                        "GBX-ZIP-001",
                        f"local header name {lwhy}",
                        member=member,
                        subject=local_name,
                    )
        if info.flag_bits & 0x41:
            ctx.report(
                "GBX-ZIP-004",
                "zip member has the encryption flag set; PyTorch ignores it and loads the "
                "member anyway",
                member=member,
                evidence={"flags": info.flag_bits},
            )
        data_start = info.header_offset + _LOCAL.size + nlen + xlen
        end = data_start + info.compress_size
        if end > archive_size:
            ctx.report("GBX-ZIP-006", "member data runs past the end of the archive", member=member)
            continue
        spans.append((info.header_offset, end, name))
        if info.compress_type not in _ZIP_METHODS:
            ctx.report(
                "GBX-ZIP-006", f"unsupported compression method {info.compress_type}", member=member
            )
            continue
        if (
            info.compress_type != 0
            and info.file_size > limits.ratio_floor
            and info.file_size > limits.max_ratio * max(info.compress_size, 1)
        ):
            ctx.report(
                "GBX-ZIP-003",
                f"member expands {info.file_size} bytes from {info.compress_size} "
                f"(ratio above {limits.max_ratio:.0f}:1); not decompressed",
                member=member,
                evidence={"file_size": info.file_size, "compress_size": info.compress_size},
            )
            continue
        if info.compress_type == 0 and info.compress_size != info.file_size:
            ctx.report("GBX-ZIP-002", "stored member with differing sizes", member=member)

        def opener(
            f: BinaryIO = f, start: int = data_start, info: zipfile.ZipInfo = info
        ) -> BinaryIO:
            return _member_stream(
                f,
                start,
                info.compress_size,
                info.compress_type,
                ctx,
                declared=max(info.file_size, 0) or ctx.limits.max_decompressed,
            )

        child = Source(opener, info.file_size, member=member, name=name, tags=tags)
        deferred = False
        try:
            if info.file_size <= SMALL_MEMBER:
                # Small members (pickles, configs) are inflated once and scanned from memory;
                # a stored one is simply read (most members of a torch or numpy zip are).
                if info.compress_type == 0 and info.compress_size == info.file_size:
                    f.seek(data_start)
                    data = f.read(info.file_size)
                else:
                    with contextlib.closing(opener()) as s:
                        data = s.read()
                crc = zlib.crc32(data)
                child = Source.of_bytes(data, member, name=name, tags=tags)
            elif info.file_size <= CRC_CHECK_LIMIT:
                # CRCs of raw tensor storages do not matter (nothing parses them); CRCs of
                # anything a loader parses do: a failing CRC blinded zipfile-based scanners.
                parsed = _parsed_format(child)
                deferred = parsed is None
                crc = _member_crc(opener) if parsed else info.CRC
            else:
                crc = info.CRC
        except BombError as bomb:  # one name per clause (mypyc: see dispatch.scan_source)
            ctx.report("GBX-ZIP-003", f"member {bomb}", member=member)
            continue
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as err:
            ctx.report("GBX-ZIP-006", f"member cannot be decompressed ({err})", member=member)
            continue
        if crc != info.CRC:
            _report_crc(ctx, member)
        if "torchscript" in tags and is_code_member(name):
            scan_code(ctx, child)
        pickles = ctx.pickles
        recurse(ctx, child, depth + 1)
        if deferred and ctx.pickles > pickles:
            try:
                if _member_crc(opener) != info.CRC:
                    _report_crc(ctx, member)
            except (BombError, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
                pass  # the scan of the member just read it all; its errors are reported
    spans.sort()
    for (_s1, e1, n1), (s2, _e2, n2) in itertools.pairwise(spans):
        if s2 < e1:
            ctx.report(
                "GBX-ZIP-005",
                f"members {n1!r} and {n2!r} overlap (overlapping-entry zip bomb or hidden data)",
                member=src.member,
            )
            break


def _scan_local_headers(
    ctx: ScanContext, src: Source, f: BinaryIO, depth: int, recurse: Recurse
) -> None:
    """No usable central directory: walk local headers so content is still inspected."""
    f.seek(0)
    pos = 0
    count = 0
    while count < ctx.limits.max_members:
        f.seek(pos)
        raw = f.read(_LOCAL.size)
        if len(raw) < _LOCAL.size or raw[:4] != b"PK\x03\x04":
            return
        (_, _v, flags, method, _t, _d, _crc, csize, usize, nlen, xlen) = _LOCAL.unpack(raw)
        name = f.read(nlen).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        start = pos + _LOCAL.size + nlen + xlen
        if flags & 0x08 or method not in _ZIP_METHODS:
            return  # sizes live in a data descriptor; cannot walk further safely
        member = src.child(name)
        why = unsafe_member_name(name)
        if why:
            ctx.report("GBX-ZIP-001", f"member name {why}", member=member, subject=name)

        def opener(
            start: int = start, csize: int = csize, method: int = method, usize: int = usize
        ) -> BinaryIO:
            return _member_stream(
                f, start, csize, method, ctx, declared=usize or ctx.limits.max_decompressed
            )

        recurse(ctx, Source(opener, usize, member=member, name=name, tags=src.tags), depth + 1)
        pos = start + csize
        count += 1


def trailing_zip(src: Source) -> bool:
    """True when a file that does not start like a zip still parses as one from its end
    (zipfile, and so Keras/numpy, accept data in front of a zip: a polyglot)."""
    if src.size is None or src.size < 22:
        return False
    with contextlib.closing(src.open()) as f:
        if not f.seekable():
            return False
        f.seek(max(0, src.size - (1 << 16) - 22))
        if b"PK\x05\x06" not in f.read():
            return False
        f.seek(0)
        try:
            return bool(zipfile.ZipFile(f).infolist())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError,
                ValueError, EOFError, struct.error):  # fmt: skip
            return False


def zip_end_inside_tar_member(ctx: ScanContext, src: Source) -> bool:
    """True when a tar's trailing end-of-zip record lies inside one of its members' data: a
    ``.nemo`` tar whose last member is a torch zip is a tar holding a zip, not a polyglot (the
    member itself is scanned as a zip when the tar is walked)."""
    if src.size is None:
        return False
    with src.seekable(ctx.limits) as f:
        start = max(0, src.size - (1 << 16) - 22)
        f.seek(start)
        at = f.read().rfind(b"PK\x05\x06")
        if at < 0:
            return False
        end = start + at
        f.seek(0)
        try:
            with tarfile.open(fileobj=f, mode="r:") as tf:
                for count, m in enumerate(tf):
                    if count >= ctx.limits.max_members:
                        return False
                    if m.isfile() and m.offset_data <= end < m.offset_data + m.size:
                        return True
        except (tarfile.TarError, OSError, EOFError, ValueError):
            return False
    return False


_TAR_BLOCK = 512
_ZERO_BLOCK = bytes(_TAR_BLOCK)
# Numeric header fields ``tarfile.TarInfo.frombuf`` parses (mode, uid, gid, size, mtime,
# devmajor, devminor): a field it cannot parse makes it reject the header.
_TAR_NUMBERS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345))


# What tar writers put in a number field: octal digits padded with spaces, ended by a NUL
# (after which tarfile ignores everything); anything else takes the exact path below.
_OCTAL_FIELD = re.compile(rb" *([0-7]*) *(?:\0[\s\S]*)?")


def _tar_number(field: bytes) -> int | None:
    """An octal header number exactly as ``tarfile.nti`` reads it; None for base-256 numbers
    (left to tarfile) and for text tarfile would reject."""
    usual = _OCTAL_FIELD.fullmatch(field)
    if usual is not None:
        return int(usual[1] or b"0", 8)
    if field[:1] in (b"\x80", b"\xff"):
        return None
    end = field.find(b"\0")
    if end != -1:
        field = field[:end]
    try:
        return int(field.decode("ascii").strip() or "0", 8)
    except ValueError:
        return None


def _tar_text(field: bytes) -> str | None:
    end = field.find(b"\0")
    if end != -1:
        field = field[:end]
    return field.decode("ascii") if field.isascii() else None


def plain_tar_entries(
    read: Callable[[int], bytes], size: int, limit: int
) -> list[tuple[str, bool, int, int]] | None:
    """``(name, is_file, data_offset, size)`` for every entry of a tar archive made only of
    regular files and directories in plain ustar/GNU headers (octal numbers, ASCII names,
    checksums that add up) ending at a zero block or the end of the file; None for anything
    else: long names, pax headers, links, devices, damage, more than ``limit`` entries.

    ``tarfile`` builds an object per header in Python, several times the cost of scanning a
    small legacy checkpoint; what this accepts it reads exactly as ``TarInfo.frombuf`` and
    ``TarFile.next`` do (the same fields, the same name rules, the same offsets), and whatever
    it declines goes to ``tarfile``, so an archive is never read two ways."""
    entries: list[tuple[str, bool, int, int]] = []
    offset = 0
    while offset < size:
        if offset + _TAR_BLOCK > size:
            return None
        block = read(offset)
        if len(block) != _TAR_BLOCK:
            return None
        if block == _ZERO_BLOCK:
            break  # end-of-archive block
        numbers = [_tar_number(block[a:b]) for a, b in _TAR_NUMBERS]
        chksum = _tar_number(block[148:156])
        if chksum is None or None in numbers:
            return None
        if chksum != 256 + sum(block) - sum(block[148:156]):
            return None  # a bad or signed-char checksum: tarfile decides
        kind = block[156:157]
        name = _tar_text(block[0:100])
        prefix = _tar_text(block[345:500])
        if name is None or prefix is None:
            return None
        if kind == b"\0" and name.endswith("/"):
            kind = b"5"  # old V7 directory
        if kind == b"5":
            name = name.rstrip("/")
        elif kind not in (b"0", b"\0"):
            return None
        if prefix:
            name = prefix + "/" + name
        length = numbers[3] or 0  # the size field (never None here: checked above)
        if length < 0:
            return None
        data = offset + _TAR_BLOCK
        is_file = kind != b"5"
        nxt = data + (length + _TAR_BLOCK - 1) // _TAR_BLOCK * _TAR_BLOCK if is_file else data
        if nxt > size:
            return None  # data past the end: tarfile raises after this member
        entries.append((name if is_file else name.rstrip("/"), is_file, data, length))
        if len(entries) > limit:
            return None
        offset = nxt
    return entries or None


def scan_tar(ctx: ScanContext, src: Source, depth: int, recurse: Recurse) -> None:
    with src.seekable(ctx.limits) as f:
        data = src.data
        if data is not None:
            size = len(data)

            def read(at: int) -> bytes:
                return data[at : at + _TAR_BLOCK]
        else:
            size = f.seek(0, 2)

            def read(at: int) -> bytes:
                f.seek(at)
                return f.read(_TAR_BLOCK)

        plain = plain_tar_entries(read, size, ctx.limits.max_members)
        f.seek(0)
        if plain is not None:
            try:
                for name, is_file, offset, length in plain:
                    _tar_entry_name(ctx, src, name)
                    if is_file:
                        _scan_tar_file(ctx, src, f, name, offset, length, depth, recurse)
            except (OSError, EOFError, ValueError) as bad:  # mypyc: one type per name
                ctx.report("GBX-ZIP-006", f"tar unreadable ({bad})", member=src.member)
            return
        try:
            tf = tarfile.open(fileobj=f, mode="r:")  # noqa: SIM115 - closed below
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            ctx.report("GBX-ZIP-006", f"tar unreadable ({exc})", member=src.member)
            return
        with contextlib.closing(tf):
            count = 0
            try:
                for m in tf:
                    count += 1
                    if count > ctx.limits.max_members:
                        ctx.report("GBX-ZIP-003", "tar has too many entries", member=src.member)
                        break
                    _tar_entry_name(ctx, src, m.name)
                    member = src.child(m.name)
                    if m.issym() or m.islnk():
                        ctx.report(
                            "GBX-ZIP-007",
                            f"tar member is a link to {m.linkname!r}",
                            member=member,
                            subject=m.linkname,
                        )
                        continue
                    if m.isdev() or m.isfifo():
                        ctx.report("GBX-ZIP-007", "tar member is a device or fifo", member=member)
                        continue
                    if m.isfile():
                        _scan_tar_file(ctx, src, f, m.name, m.offset_data, m.size, depth, recurse)
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                ctx.report("GBX-ZIP-006", f"tar unreadable ({exc})", member=src.member)


def _tar_entry_name(ctx: ScanContext, src: Source, name: str) -> None:
    why = unsafe_member_name(name)
    if why:
        ctx.report("GBX-ZIP-001", f"member name {why}", member=src.child(name), subject=name)


def _scan_tar_file(
    ctx: ScanContext,
    src: Source,
    f: BinaryIO,
    name: str,
    offset: int,
    size: int,
    depth: int,
    recurse: Recurse,
) -> None:
    member = src.child(name)
    if src.data is not None:  # the whole archive is in memory: slice it
        body = src.data[offset : offset + size]
        child = Source.of_bytes(body, member, name=name, tags=src.tags)
    else:

        def opener() -> BinaryIO:
            return cast(BinaryIO, SectionStream(f, offset, size))

        child = Source(opener, size, member=member, name=name, tags=src.tags)
    if is_legacy_member(name):
        scan_legacy_member(ctx, child, depth + 1, recurse)
    else:
        recurse(ctx, child, depth + 1)


def _gzip_trailer_bomb(ctx: ScanContext, src: Source, member: str) -> bool:
    """gzip's trailer states the expanded size (mod 2**32): refuse a bomb before inflating it.
    A lying trailer is still caught by the streaming limits."""
    if src.local_path is None or src.size is None or src.size < 18:
        return False
    with src.local_path.open("rb") as f:
        f.seek(src.size - 4)
        (isize,) = struct.unpack("<I", f.read(4))
    limits = ctx.limits
    if isize > limits.ratio_floor and isize > limits.max_ratio * src.size:
        ctx.report(
            "GBX-ZIP-003",
            f"gzip stream declares {isize} bytes from {src.size} (ratio above "
            f"{limits.max_ratio:.0f}:1); not decompressed",
            member=member,
        )
        return True
    return False


def _small_stream(opener: Callable[[], BinaryIO], member: str, src: Source) -> Source | None:
    """A compressed stream that inflates to a small member is inflated once, into memory;
    anything larger, or failing part-way (a payload may come before the damage), is streamed."""
    try:
        with contextlib.closing(opener()) as s:
            data = read_upto(s, SMALL_MEMBER + 1)
    except (BombError, LimitError, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
        return None
    if len(data) > SMALL_MEMBER:
        return None
    return Source.of_bytes(data, member, name=src.name, tags=src.tags)


def scan_compressed(ctx: ScanContext, src: Source, depth: int, recurse: Recurse, kind: str) -> None:
    def opener() -> BinaryIO:
        return cast(BinaryIO, DecompressStream(src.open(), kind, ctx.limits))

    member = src.child(f"<{kind}>")
    if kind == "gzip" and _gzip_trailer_bomb(ctx, src, member):
        return
    try:
        child = _small_stream(opener, member, src) or Source(
            opener, None, member=member, name=src.name, tags=src.tags
        )
        recurse(ctx, child, depth + 1)
    except BombError as bomb:  # one name per clause (mypyc: see dispatch.scan_source)
        ctx.report("GBX-ZIP-003", f"{kind} stream {bomb}", member=member)
    except LimitError as limit:
        ctx.report("GBX-LIM-002", f"{kind} stream: {limit}", member=member)
    except (zlib.error, OSError, EOFError, ValueError) as err:
        ctx.report("GBX-ZIP-006", f"{kind} stream cannot be decompressed ({err})", member=member)
