"""Differential fuzzing of the scanner against the REAL loaders (issue 18).

Valid seed files (payloads that run ``touch MARKER`` and benign values) are mutated in ways a
loader may still accept: opcode re-encodings (strings as SHORT_BINUNICODE, BINUNICODE, UNICODE
or STRING; small ints as INT literals in hex, octal or with ``_``; MEMOIZE as PUT; GLOBAL as
STACK_GLOBAL), no-op insertions (``N0``, ``(1``), a dropped PROTO or FRAME, trailing bytes,
truncation and byte flips, and container changes (zip stored or deflated, torch archive names,
numpy object-dtype spellings, every joblib compressor, concatenated compressed streams, and
zip layouts that two zip readers may see differently: duplicate names, local headers that differ
from the central directory, data descriptors, prepended and appended data, a zip in the
comment or in a member, mixed compression, Zip64 records, member order). Each
mutant is loaded by its real loader in a throw-away subprocess (``sandbox.run_loader``) that
records every ``pickle.find_class``; the scanner scans the same bytes. A **differential** is a
mutant whose loader reached a callable off the allowlist (or ran the payload) while the scanner
did not fail the default gate (``--fail-on high``).

``fuzz(fmt, seconds, seed)`` runs one format for a bounded time; ``tests/scan/test_difffuzz.py``
runs every format for a few seconds in CI and replays ``tests/scan/regressions/difffuzz/``, the
mutants that once were differentials; ``bench/bench_scan.py --fuzz`` reports the counts.
"""

from __future__ import annotations

import bz2
import concurrent.futures
import gzip
import importlib.util
import io
import lzma
import pickle
import pickletools
import random
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from glassbox.scan import Severity, scan_path
from glassbox.scan.callables import Verdict, classify
from tests.scan import sandbox

Mutator = Callable[[random.Random, bytes], bytes]


def _u(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def seed_pickles(marker: Path) -> list[bytes]:
    cmd = f"touch {marker}"
    evil0 = f"cos\nsystem\n(S{cmd!r}\ntR.".encode()
    evil2 = b"\x80\x02cposix\nsystem\nq\x00X" + struct.pack("<I", len(cmd)) + cmd.encode()
    evil2 += b"\x85q\x01Rq\x02."
    evil4 = b"\x80\x04\x95" + struct.pack("<Q", 0)  # empty frame header, fixed below
    body = _u("os") + b"\x94" + _u("system") + b"\x94\x93\x94" + _u(cmd) + b"\x94\x85\x94R\x94."
    evil4 = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body
    dotted = b"\x80\x04" + _u("logging") + _u("os.system") + b"\x93" + _u(cmd) + b"\x85R."
    benign = pickle.dumps({"w": [1.0, 2.0], "n": 3, "name": "layer"}, protocol=4)
    benign0 = pickle.dumps({"w": [1, 2]}, protocol=0)
    return [evil0, evil2, evil4, dotted, benign, benign0]


# -- pickle re-encodings ------------------------------------------------------------------------
def _ops(data: bytes) -> list[tuple[str, object, int, int]]:
    """(opcode name, argument, start, end) for every opcode up to STOP."""
    out: list[tuple[str, object, int, int]] = []
    items = list(pickletools.genops(data))
    for i, (op, arg, pos) in enumerate(items):
        assert pos is not None
        end = items[i + 1][2] if i + 1 < len(items) else pos + 1
        assert end is not None
        out.append((op.name, arg, pos, end))
    return out


def _string(rng: random.Random, s: str) -> bytes:
    enc = s.encode()
    choice = rng.randrange(4)
    if choice == 0:
        return b"X" + struct.pack("<I", len(enc)) + enc
    if choice == 1 and len(enc) < 256:
        return b"\x8c" + bytes([len(enc)]) + enc
    if choice == 2 and "\n" not in s and "\\" not in s:
        return b"V" + s.encode("raw-unicode-escape") + b"\n"
    return b"X" + struct.pack("<I", len(enc)) + enc


def _int(rng: random.Random, n: int) -> bytes:
    forms = [f"{n:#x}", f"0{n:o}" if n else "0", f" {n}", f"{n:_}", f"+{n}"]
    if n in (0, 1):
        forms = [f"{n:#x}", f" {n}"]  # "00"/"01" mean False/True
    return b"I" + rng.choice(forms).encode() + b"\n"


def reencode_pickle(rng: random.Random, data: bytes) -> bytes:
    """Rewrite some opcodes into equivalent encodings CPython also accepts."""
    try:
        ops = _ops(data)
    except Exception:
        return data
    out = bytearray()
    memo_count = 0
    for name, arg, start, end in ops:
        raw = data[start:end]
        roll = rng.random()
        if name in ("FRAME",) or (name == "PROTO" and roll < 0.3):
            continue  # frames are optional; CPython needs no PROTO
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE") and roll < 0.5:
            out += _string(rng, str(arg))
        elif name in ("BININT1", "BININT2", "BININT") and isinstance(arg, int) and roll < 0.5:
            out += _int(rng, arg)
        elif name == "MEMOIZE":
            out += b"p%d\n" % memo_count if roll < 0.5 else raw
            memo_count += 1
            continue
        elif name == "GLOBAL" and roll < 0.5 and isinstance(arg, str):
            module, _, gname = arg.partition(" ")
            out += _u(module) + _u(gname) + b"\x93"
        else:
            out += raw
        if name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo_count = max(memo_count, int(str(arg)) + 1)
        if name != "STOP" and rng.random() < 0.1:
            out += rng.choice([b"N0", b"(1", b"\x880"])  # no-ops between opcodes
    return bytes(out)


def byte_noise(rng: random.Random, data: bytes) -> bytes:
    """Damage that may or may not keep the stream loadable."""
    if not data:
        return data
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 1:
        return bytes(b[: rng.randrange(1, len(b) + 1)])
    elif kind == 2:
        return bytes(b) + rng.randbytes(rng.randrange(1, 16))
    else:
        i = rng.randrange(len(b))
        b[i:i] = rng.randbytes(1)
    return bytes(b)


def mutate_pickle(rng: random.Random, data: bytes) -> bytes:
    out = reencode_pickle(rng, data)
    return byte_noise(rng, out) if rng.random() < 0.2 else out


# -- containers ----------------------------------------------------------------------------------
def torch_zip(rng: random.Random, pkl: bytes) -> bytes:
    buf = io.BytesIO()
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    top = rng.choice(["archive", "model", "x"])
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        z.writestr(f"{top}/data.pkl", pkl)
        z.writestr(f"{top}/version", "3\n")
        z.writestr(f"{top}/byteorder", "little")
    return buf.getvalue()


# -- zip layouts -----------------------------------------------------------------------------
# torch.load reads zips with its own reader (miniz in C++), the scanner with its own and with
# ``zipfile``: every way two readers can see different members is a chance for a payload to be
# loaded from bytes the scanner read differently.
ZIP_LAYOUTS = (
    "duplicate-name",
    "local-name-differs",
    "data-descriptor",
    "prepended",
    "appended",
    "comment-holds-a-zip",
    "nested-zip",
    "mixed-compression",
    "zip64",
    "member-order",
)


class _Unseekable(io.RawIOBase):
    """A write-only stream that cannot seek: ``zipfile`` then writes data descriptors."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)


def _torch_members(top: str, pkl: bytes) -> list[tuple[str, bytes]]:
    return [(f"{top}/data.pkl", pkl), (f"{top}/version", b"3\n"), (f"{top}/byteorder", b"little")]


def _write_zip(
    members: list[tuple[str, bytes]],
    *,
    methods: list[int] | None = None,
    stream: io.RawIOBase | io.BytesIO | None = None,
    force_zip64: bool = False,
    comment: bytes = b"",
) -> bytes:
    import warnings

    out = stream if stream is not None else io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of one layout
        with zipfile.ZipFile(out, "w") as z:  # type: ignore[arg-type]
            for i, (name, data) in enumerate(members):
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = methods[i] if methods else zipfile.ZIP_STORED
                with z.open(info, "w", force_zip64=force_zip64) as w:
                    w.write(data)
            z.comment = comment
    if isinstance(out, _Unseekable):
        return bytes(out.buf)
    assert isinstance(out, io.BytesIO)
    return out.getvalue()


def zip_layout(rng: random.Random, pkl: bytes, layout: str | None = None) -> bytes:
    """A torch zip holding ``pkl`` as ``data.pkl``, laid out in one of ``ZIP_LAYOUTS``."""
    layout = layout or rng.choice(ZIP_LAYOUTS)
    top = rng.choice(["archive", "model"])
    benign = pickle.dumps({"w": [1.0]}, protocol=2)
    members = _torch_members(top, pkl)
    if layout == "duplicate-name":
        twin = (f"{top}/data.pkl", benign)
        members = [twin, *members] if rng.random() < 0.5 else [*members, twin]
        return _write_zip(members)
    if layout == "local-name-differs":
        # The same bytes under another name in the local header, or the payload's entry
        # renamed in the central directory only.
        data = bytearray(_write_zip([*_torch_members(top, pkl), (f"{top}/data.pkX", benign)]))
        old, new = (b"data.pkl", b"data.pkY") if rng.random() < 0.5 else (b"data.pkX", b"data.pkl")
        where = data.find(old) if rng.random() < 0.5 else data.rfind(old)
        data[where : where + len(old)] = new
        return bytes(data)
    if layout == "data-descriptor":
        return _write_zip(members, stream=_Unseekable())
    if layout == "prepended":
        junk = rng.choice([rng.randbytes(rng.randrange(1, 600)), benign, b"#!/bin/sh\n" * 8])
        return junk + _write_zip(members)
    if layout == "appended":
        tail = rng.choice(
            [rng.randbytes(rng.randrange(1, 64)), _write_zip(_torch_members(top, benign))]
        )
        return _write_zip(members) + tail
    if layout == "comment-holds-a-zip":
        # One reader may find the inner end-of-central-directory record, the other the outer.
        inner = _write_zip(_torch_members(top, pkl))
        outer = _write_zip(_torch_members(top, benign), comment=inner[-min(len(inner), 65535) :])
        return (
            outer if rng.random() < 0.5 else _write_zip(members, comment=b"PK\x05\x06" + bytes(18))
        )
    if layout == "nested-zip":
        inner = _write_zip(members)
        return _write_zip([*_torch_members(top, benign)[1:], (f"{top}/data.pkl", inner)])
    if layout == "mixed-compression":
        methods = [rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]) for _ in members]
        return _write_zip(members, methods=methods)
    if layout == "zip64":
        # Zip64 extra fields in every local header, and Zip64 end records (zipfile writes them
        # past its member-count limit, lowered here for this one archive).
        saved = zipfile.ZIP_FILECOUNT_LIMIT
        zipfile.ZIP_FILECOUNT_LIMIT = 1 if rng.random() < 0.5 else saved
        try:
            return _write_zip(members, force_zip64=True)
        finally:
            zipfile.ZIP_FILECOUNT_LIMIT = saved
    if layout == "member-order":
        rng.shuffle(members)
        return _write_zip(members)
    raise ValueError(f"unknown zip layout {layout}")


def npy_object(rng: random.Random, pkl: bytes) -> bytes:
    descr = rng.choice(["|O", "O", "|O8", "object", "i4,O", "(1,)O"])
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}"
    header = header.ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pkl


def _split_streams(rng: random.Random, data: bytes, comp: Callable[[bytes], bytes]) -> bytes:
    if len(data) < 4 or rng.random() < 0.5:
        return comp(data)
    cut = rng.randrange(1, len(data))
    return comp(data[:cut]) + comp(data[cut:])


def compressed(rng: random.Random, pkl: bytes) -> bytes:
    import lz4.frame

    kind = rng.choice(["zlib", "gzip", "bz2", "xz", "lzma", "lz4"])
    comps: dict[str, Callable[[bytes], bytes]] = {
        "zlib": zlib.compress,
        "gzip": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
        "lz4": lz4.frame.compress,
    }
    # One stream only: joblib 1.x spins forever on concatenated streams (not a loadable case;
    # the gzip target covers concatenation with gzip.open).
    return comps[kind](pkl)


@dataclass(frozen=True)
class Target:
    loader: str
    suffix: str
    wrap: Callable[[random.Random, bytes], bytes]


TARGETS: dict[str, Target] = {
    "pickle": Target("pickle", ".pkl", lambda rng, d: d),
    "torch": Target("torch", ".pt", torch_zip),
    "torch-zip-layout": Target("torch", ".pt", zip_layout),
    "numpy": Target("numpy", ".npy", npy_object),
    "joblib": Target("joblib", ".joblib", compressed),
    "gzip": Target("gzip-pickle", ".pkl.gz", lambda rng, d: _split_streams(rng, d, gzip.compress)),
}


@dataclass
class Differential:
    fmt: str
    data: bytes
    reached: list[str]
    executed: bool
    findings: list[str]


@dataclass
class FuzzStats:
    fmt: str
    tried: int = 0
    loaded: int = 0  # the real loader accepted the mutant
    reached_risky: int = 0  # and reached an off-allowlist callable or ran the payload
    differentials: list[Differential] = field(default_factory=list)


def _importable(module: str) -> bool:
    """The loader's ``__import__`` of ``module`` can succeed (its top-level package exists):
    a ``find_class`` on a module that cannot be imported fails before anything runs (the
    fuzzer's truncated lines reach ``find_class('po', '')`` and ``find_class('', '')``)."""
    top = module.split(".")[0]
    if not top.isidentifier():
        return False
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _risky(globals_reached: list[str]) -> list[str]:
    out = []
    for g in globals_reached:
        module, _, name = g.rpartition(".")
        if not _importable(module):
            continue
        # find_class reports (module, qualified name); judge it as the scanner would.
        verdict = classify(module, name).verdict
        if verdict in (Verdict.DANGEROUS, Verdict.UNKNOWN):
            out.append(g)
    return out


def check_one(
    fmt: str,
    data: bytes,
    work: Path,
    marker: Path,
    load: Callable[[Path, Path], sandbox.LoadResult] | None = None,
    stats: FuzzStats | None = None,
) -> tuple[bool, Differential | None]:
    """Load ``data`` with the format's real loader and scan it; returns (loader reached a risky
    callable or ran the payload, the differential if the scanner let it pass). ``marker`` is
    relative to the loader's working directory (see ``sandbox.run_loader``); ``load`` is a
    ``sandbox.ForkLoader`` for the format's loader (a fresh interpreter per file without)."""
    target = TARGETS[fmt]
    path = work / f"mutant{target.suffix}"
    path.write_bytes(data)
    if load is not None:
        result = load(path, marker)
    else:
        result = sandbox.run_loader(target.loader, path, marker, timeout=30)
    if stats is not None:
        stats.loaded += result.status == "loaded"
    risky = _risky(result.globals)
    if not risky and not result.executed:
        return False, None
    report = scan_path(path, workers=1)
    if report.fails(Severity.HIGH):
        return True, None
    return True, Differential(
        fmt, data, result.globals, result.executed, [f.rule_id for f in report.findings]
    )


def fuzz(fmt: str, seconds: float, seed: int = 0, max_cases: int = 10_000) -> FuzzStats:
    """Mutate and load for ``seconds``: one loader server per run (``sandbox.ForkLoader``:
    the loader's library is imported once, each mutant loads in its own forked child)."""
    rng = random.Random(seed)
    stats = FuzzStats(fmt)
    target = TARGETS[fmt]
    with (
        tempfile.TemporaryDirectory(prefix="gbx-fuzz-") as tmp,
        sandbox.ForkLoader(target.loader) as load,
    ):
        work = Path(tmp)
        # Relative: the payload runs in the loader's throw-away working directory, so a
        # mutated command ("touch MAR ER") can only create files there.
        marker = Path("MARKER")
        seeds = seed_pickles(marker)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and stats.tried < max_cases:
            base = rng.choice(seeds)
            data = target.wrap(rng, mutate_pickle(rng, base))
            if fmt != "pickle" and rng.random() < 0.1:
                data = byte_noise(rng, data)
            stats.tried += 1
            risky, diff = check_one(fmt, data, work, marker, load, stats)
            stats.reached_risky += risky
            if diff is not None:
                stats.differentials.append(diff)
    return stats


def fuzz_all(
    seconds: float, seed: int = 0, workers: int = 2, formats: list[str] | None = None
) -> list[FuzzStats]:
    """``fuzz`` every format (or ``formats``), ``workers`` formats at a time in a process
    pool; each format gets ``seconds`` of its own."""
    names = sorted(formats or TARGETS)
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        runs = [pool.submit(fuzz, fmt, seconds, seed) for fmt in names]
        return [run.result() for run in runs]
