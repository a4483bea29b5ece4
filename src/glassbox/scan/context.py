"""What every format scanner shares: the byte source it reads, the limits, and the sink for
findings. Sources are re-openable so a scanner can sniff a head and then stream from the start;
members of archives are streamed straight out of the archive, never extracted to disk by name."""

from __future__ import annotations

import bz2
import contextlib
import io
import lzma
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from glassbox.scan.findings import Finding, Severity
from glassbox.scan.rules import RULES

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-file bounds. Defaults fit real multi-GB checkpoints and refuse bombs."""

    max_depth: int = 8
    max_members: int = 20_000
    max_ratio: float = 200.0  # declared or observed expansion of a compressed member
    ratio_floor: int = 16 * MiB  # small members may compress well without being bombs
    max_decompressed: int = 16 * GiB  # per member stream
    max_materialize: int = 4 * GiB  # copies made to seek inside a nested archive
    max_json: int = 64 * MiB
    max_safetensors_header: int = 100 * MiB
    max_onnx: int = 2 * GiB
    seconds_per_file: float = 300.0
    # The user's reviewed allowlist extension (``glassbox.scan.allowlist``): qualified names
    # ("pkg.mod.Class") or module wildcards ("pkg.mod.*"). It travels with the limits to the
    # scan workers. It can allow what the scanner does not know, never what it knows is
    # dangerous.
    allow: frozenset[str] = frozenset()

    def allows(self, module: str, name: str) -> bool:
        if not self.allow:
            return False
        if f"{module}.{name}" in self.allow:
            return True
        parts = module.split(".")
        return any(".".join(parts[:i]) + ".*" in self.allow for i in range(1, len(parts) + 1))

    def __reduce__(self) -> tuple[type[Limits], tuple[Any, ...]]:
        """Pickled as its field values (the process pool sends limits to its workers): the
        default restore assigns attributes, which a frozen dataclass compiled with mypyc
        (hatch_build.py) refuses."""
        return (Limits, astuple(self))


class BombError(Exception):
    """A compressed stream expanded past its limits."""


class LimitError(Exception):
    """A structure exceeded a scan limit (depth, size)."""


class SectionStream(io.RawIOBase):
    """A window ``[start, start+length)`` of a seekable file; seeks before every read so several
    windows of one archive can be read in turn."""

    def __init__(self, f: BinaryIO, start: int, length: int) -> None:
        self._f = f
        self._start = start
        self._length = max(0, length)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        remaining = self._length - self._pos
        if n is None or n < 0 or n > remaining:
            n = remaining
        if n <= 0:
            return b""
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes a third-party decompressor reads (for the ratio check)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        data = self._raw.read(-1 if n is None else n)
        self.count += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


# Compressions whose loaders read concatenated streams as one (gzip.open, bz2.open, lzma.open,
# joblib's zlib reader): a payload split over two streams must be followed into the second.
_MULTI_STREAM = frozenset({"gzip", "zlib", "zfile", "bz2", "xz", "lzma"})
# After the first stream, bz2.open and lzma.open ignore trailing data that is not another stream.
_TRAILING_IGNORED = frozenset({"bz2", "xz", "lzma"})
ZFILE_HEADER = 21  # joblib's legacy "ZF" container: b"ZF" + hex length padded to 19


class DecompressStream(io.RawIOBase):
    """Streaming decompression with a hard output cap and an expansion-ratio check. Follows
    concatenated streams the way the loaders do; lz4 and zstd frames go through their own
    packages' bounded readers."""

    def __init__(self, raw: BinaryIO, kind: str, limits: Limits, declared: int | None = None):
        self._raw = raw
        self._kind = kind
        self._limits = limits
        self._declared = declared
        self._in = 0
        self._out = 0
        self._eof = False
        self._pending = b""
        self._streams = 1
        self._d: Any = None
        self._reader: Any = None
        self._counter: _CountingReader | None = None
        self._is_zlib = kind in ("deflate", "gzip", "zlib", "zfile")
        if kind in ("lz4", "zstd"):
            self._counter = _CountingReader(raw)
            self._reader = _frame_reader(kind, self._counter)
            return
        if kind == "zfile":
            header = read_upto(raw, ZFILE_HEADER + 1)
            self._in += len(header)
            # joblib <= 0.8.4 wrote one more space; zlib data never starts with one.
            extra = header[ZFILE_HEADER:]
            self._pending = b"" if extra == b" " else extra
        self._d = self._new_decompressor()

    def _new_decompressor(self) -> Any:
        kind = self._kind
        if kind == "deflate":
            return zlib.decompressobj(-15)
        if kind in ("gzip", "zlib", "zfile"):
            return zlib.decompressobj(47 if kind == "gzip" else 15)
        if kind == "bz2":
            return bz2.BZ2Decompressor()
        if kind in ("xz", "lzma"):
            return lzma.LZMADecompressor()
        raise ValueError(f"unknown compression {kind}")

    def readable(self) -> bool:
        return True

    def _check(self) -> None:
        cap = self._limits.max_decompressed
        if self._declared is not None:
            cap = min(cap, self._declared)
        if self._out > cap:
            raise BombError(f"expanded past {cap} bytes")
        consumed = self._in if self._counter is None else self._counter.count
        if self._out > self._limits.ratio_floor and self._out > self._limits.max_ratio * max(
            consumed, 1
        ):
            raise BombError(f"expansion ratio above {self._limits.max_ratio:.0f}:1")

    def _input(self) -> bytes:
        if self._pending:
            data = self._pending
            self._pending = b""
            return data
        data = self._raw.read(1 << 16)
        self._in += len(data)
        return data

    def _next_stream(self, rest: bytes) -> bool:
        """After the end of one stream: start the next one if more data follows."""
        if self._kind not in _MULTI_STREAM:
            return False
        if not rest:
            rest = self._raw.read(1 << 16)
            self._in += len(rest)
        if self._kind == "gzip":
            rest = rest.lstrip(b"\x00")  # gzip.open skips zero padding between members
            while not rest:
                more = self._raw.read(1 << 16)
                self._in += len(more)
                if not more:
                    return False
                rest = more.lstrip(b"\x00")
        if not rest:
            return False
        self._pending = rest
        self._d = self._new_decompressor()
        self._streams += 1
        return True

    def _more(self, want: int) -> bytes:
        if self._reader is not None:
            out = bytes(self._reader.read(want))
            if not out:
                self._eof = True
            return out
        while True:
            d = self._d
            try:
                if self._is_zlib:
                    data = d.unconsumed_tail or self._input()
                    if not data:
                        self._eof = True
                        return bytes(d.flush())
                    out = bytes(d.decompress(data, want))
                    if d.eof and not d.unconsumed_tail and not self._next_stream(d.unused_data):
                        self._eof = True
                else:
                    if d.eof:
                        if not self._next_stream(d.unused_data):
                            self._eof = True
                            return b""
                        continue
                    if d.needs_input:
                        data = self._input()
                        if not data:
                            self._eof = True
                            return b""
                    else:
                        data = b""
                    out = bytes(d.decompress(data, want))
            except (OSError, EOFError, ValueError, lzma.LZMAError) as bad:
                if self._streams > 1 and self._kind in _TRAILING_IGNORED:
                    self._eof = True  # what bz2.open / lzma.open do with trailing junk
                    return b""
                raise bad
            if out or self._eof:
                return out

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while not self._eof:
                chunk = self.read(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        if self._eof or n == 0:
            return b""
        out = self._more(min(n, 1 << 20))
        self._out += len(out)
        self._check()
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _frame_reader(kind: str, raw: _CountingReader) -> Any:
    """A bounded reader over lz4 or zstd frames (concatenated frames read as one stream, as
    joblib and ``zstandard`` readers do). The packages are imported only when such a file is
    met; without them the stream cannot be analysed, which the caller reports."""
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameFile(raw, mode="rb")
    import zstandard

    reader: Any = raw  # a readable object is all stream_reader needs
    return zstandard.ZstdDecompressor().stream_reader(reader, read_across_frames=True)


@dataclass
class Source:
    """Bytes to scan: a file on disk or a member (possibly nested) of a container."""

    opener: Callable[[], BinaryIO]
    size: int | None
    member: str | None = None  # "inner.zip!weights/data.pkl" below the top-level file
    local_path: Path | None = None  # set for files on disk (ONNX needs the directory)
    name: str = ""
    tags: frozenset[str] = frozenset()  # what the enclosing container is ("torchscript")
    # The first bytes, kept once read: detection, the CRC policy and the format scanners all
    # sniff the same head, and re-reading it (through a decompressor) cost more than scanning.
    _head: tuple[int, bytes] | None = field(default=None, repr=False, compare=False)
    data: bytes | None = field(default=None, repr=False, compare=False)  # whole, when in memory

    def open(self) -> BinaryIO:
        return self.opener()

    @classmethod
    def of_bytes(
        cls,
        data: bytes,
        member: str | None,
        *,
        local_path: Path | None = None,
        name: str = "",
        tags: frozenset[str] = frozenset(),
    ) -> Source:
        """A source already in memory: its head is a slice and pickles are read in place."""
        src = cls(lambda: io.BytesIO(data), len(data), member, local_path, name, tags)
        src.data = data
        return src

    def head(self, n: int) -> bytes:
        if self.data is not None:
            return self.data[:n]
        cached = self._head
        if cached is not None and cached[0] >= n:
            return cached[1][:n]
        with contextlib.closing(self.open()) as f:
            data = read_upto(f, n)
        self._head = (n, data)
        return data

    def child(self, name: str) -> str:
        return f"{self.member}!{name}" if self.member else name

    @contextlib.contextmanager
    def seekable(self, limits: Limits) -> Iterator[BinaryIO]:
        """A seekable view: the bytes in memory, the file itself, or a bounded spooled copy of
        a member."""
        if self.data is not None:
            yield io.BytesIO(self.data)
            return
        if self.local_path is not None:
            with self.local_path.open("rb") as f:
                yield f
            return
        if self.size is not None and self.size > limits.max_materialize:
            raise LimitError(f"member of {self.size} bytes is too large to inspect")
        with (
            tempfile.SpooledTemporaryFile(max_size=64 * MiB) as tmp,
            contextlib.closing(self.open()) as src,
        ):
            copied = 0
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                copied += len(chunk)
                if copied > limits.max_materialize:
                    raise LimitError("member is too large to inspect")
                tmp.write(chunk)
            tmp.seek(0)
            yield tmp  # type: ignore[misc]


class MemoryStream(io.RawIOBase):
    """A seekable reader over bytes already in memory (a mapping, a ``memoryview``) that copies
    only what is read: ``io.BytesIO`` would copy the whole buffer first."""

    def __init__(self, data: memoryview) -> None:
        self._data = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        chunk = self._data[self._pos : self._pos + len(out)]
        out[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def read_upto(f: BinaryIO, n: int) -> bytes:
    parts = []
    got = 0
    while got < n:
        chunk = f.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def may_be_utf8(head: bytes, whole: bool) -> bool:
    """False when ``head`` proves the stream is not UTF-8 text (so not JSON, RFC 8259); a
    multi-byte character cut by the end of a partial head is not proof."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not whole and exc.end == len(head) and exc.reason == "unexpected end of data"
    return True


def bytes_source(data: bytes, member: str) -> Source:
    return Source.of_bytes(data, member)


@dataclass
class ScanContext:
    """Per top-level file: where findings go, the limits, and the deadline."""

    path: str
    limits: Limits = field(default_factory=Limits)
    findings: list[Finding] = field(default_factory=list)
    formats: set[str] = field(default_factory=set)
    deadline: float = 0.0
    pickles: int = 0  # pickle streams found so far (containers ask whether a member held one)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.limits.seconds_per_file

    def report(
        self,
        rule_id: str,
        message: str,
        *,
        member: str | None = None,
        subject: str | None = None,
        evidence: dict[str, Any] | None = None,
        severity: Severity | None = None,
    ) -> None:
        rule = RULES[rule_id]
        self.findings.append(
            Finding(
                rule_id=rule_id,
                severity=rule.severity if severity is None else severity,
                path=self.path,
                message=message,
                member=member,
                subject=subject,
                evidence=evidence or {},
            )
        )

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline


__all__ = [
    "BombError",
    "DecompressStream",
    "LimitError",
    "Limits",
    "ScanContext",
    "SectionStream",
    "Source",
    "bytes_source",
    "may_be_utf8",
    "read_upto",
]
