"""``scan_path``: walk a model directory (or one file) and scan every file by content.

Symlinks are never followed out of the tree (a link to ``/etc`` is a finding, a link inside the
tree is skipped because its target is scanned anyway); ``.git`` directories are skipped. Files
are scanned in parallel processes because the pickle interpreter is CPU-bound Python; one file's
scan is bounded in time and memory by :class:`Limits`, and any failure becomes a finding for
that file, never a lost result.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from glassbox.digest.walk import hf_snapshot_repo, storage_link_stat
from glassbox.errors import InputError
from glassbox.scan.allowlist import AllowEntry
from glassbox.scan.claims import check_claim
from glassbox.scan.context import Limits, MemoryStream, ScanContext, Source
from glassbox.scan.dispatch import scan_source
from glassbox.scan.findings import Finding
from glassbox.scan.report import ScanReport

# Below this many files, process start-up costs more than it saves.
PARALLEL_MIN_FILES = 8


# Files up to this size are read once and scanned from memory (most configs and small pickles).
SMALL_FILE = 1 << 20
_DEFAULT_LIMITS = Limits()  # frozen: one shared instance instead of one per file
# Computed once: ``getattr`` with a default raises and catches AttributeError where the flag
# does not exist (everywhere but Windows), a cost paid per file otherwise.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)


def read_small(path: Path, size: int, limit: int = SMALL_FILE) -> bytes | None:
    """The whole file, read with as few system calls as its known ``size`` allows, or None
    when it holds more than ``limit`` bytes after all (it grew since it was listed).

    Most files in a model directory are small, and ``Path.read_bytes`` (a buffered reader
    sized for the unknown) cost more than scanning them. Asking for one byte more than the
    expected size sees the end of the file in the same call."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        parts = []
        got = 0
        while got <= limit:
            # os.read allocates what it is asked for: ask for what is left (plus the byte that
            # shows the end), and in modest steps only past the expected size.
            chunk = os.read(fd, size + 1 - got if got <= size else 1 << 16)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
    finally:
        os.close(fd)
    if got > limit:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def scan_file(
    path: Path, display: str, limits: Limits | None = None, size: int | None = None
) -> ScanContext:
    """Scan one regular file; never raises for problems with the file's content."""
    ctx = ScanContext(display, limits or _DEFAULT_LIMITS)
    try:
        if size is None:
            size = path.stat().st_size
        data = read_small(path, size, SMALL_FILE) if size <= SMALL_FILE else None
        if data is not None:
            src = Source.of_bytes(data, None, local_path=path, name=path.name)
        else:
            if size <= SMALL_FILE:  # it grew past SMALL_FILE since it was listed
                size = path.stat().st_size
            src = Source(
                lambda: path.open("rb"), size, member=None, local_path=path, name=path.name
            )
    except OSError as exc:
        ctx.report("GBX-FS-002", f"cannot read file ({exc.strerror or exc})")
        return ctx
    try:
        scan_source(ctx, src, 0)
    except Exception as exc:
        ctx.report("GBX-LIM-002", f"scanner failed on this file ({type(exc).__name__}: {exc})")
        return ctx
    check_claim(ctx, path)
    return ctx


def scan_buffer(
    data: memoryview, display: str, path: Path, limits: Limits | None = None
) -> ScanContext:
    """Scan bytes already in memory (a loader's verified buffer) as the file ``path`` would
    be scanned; ``path`` supplies only the name (its format claim), nothing is read from it.
    Never raises for problems with the content."""
    ctx = ScanContext(display, limits or _DEFAULT_LIMITS)
    src = Source(lambda: MemoryStream(data), len(data), member=None, name=path.name)  # type: ignore[arg-type,return-value]
    try:
        scan_source(ctx, src, 0)
    except Exception as exc:
        ctx.report("GBX-LIM-002", f"scanner failed on this file ({type(exc).__name__}: {exc})")
        return ctx
    check_claim(ctx, path)
    return ctx


def _worker(
    path: str, display: str, limits: Limits, size: int
) -> tuple[list[dict[str, Any]], list[str]]:
    ctx = scan_file(Path(path), display, limits, size)
    return [f.to_dict() for f in ctx.findings], sorted(ctx.formats)


def _collect(root: Path) -> tuple[list[tuple[Path, str, int]], list[Finding]]:
    """Regular files under ``root`` (not following links) and findings for escaping links."""
    files: list[tuple[Path, str, int]] = []
    findings: list[Finding] = []
    real_root = root.resolve()
    # A Hugging Face cache snapshot stores each file as a link into its repository's blobs:
    # those links are scanned as the files they stand for, under digest's storage-link rule.
    repo = hf_snapshot_repo(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        # VCS internals are never loaded as a model (and a clone holds a second copy of
        # every LFS file): skip them, as hashing does.
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            p = base / name
            rel = p.relative_to(root).as_posix()
            try:
                st = p.lstat()
            except OSError as exc:
                findings.append(_fs_finding("GBX-FS-002", rel, f"cannot stat ({exc.strerror})"))
                continue
            if stat.S_ISLNK(st.st_mode) and repo is not None:
                try:
                    files.append((p, rel, storage_link_stat(str(p), str(repo)).st_size))
                except InputError as exc:
                    findings.append(_fs_finding("GBX-FS-001", rel, str(exc)))
                continue
            if stat.S_ISLNK(st.st_mode):
                target = p.resolve()
                try:
                    target.relative_to(real_root)
                except ValueError:
                    findings.append(
                        _fs_finding(
                            "GBX-FS-001",
                            rel,
                            f"symlink to {str(p.readlink())!r} leaves the scanned tree",
                        )
                    )
                continue
            if stat.S_ISREG(st.st_mode):
                files.append((p, rel, st.st_size))
    return files, findings


def _fs_finding(rule_id: str, path: str, message: str) -> Finding:
    from glassbox.scan.rules import RULES

    return Finding(rule_id, RULES[rule_id].severity, path, message)


def _scan_one_file(
    path: Path,
    size: int,
    limits: Limits,
    allow: Sequence[AllowEntry],
    progress: Callable[[int], None] | None,
    started: float,
) -> ScanReport:
    """``scan_path`` on a single file: the same report, without the bookkeeping a directory
    needs (a gate scanning one file at a time paid more for that than for a small file's
    scan)."""
    display = path.name
    ctx = scan_file(path, display, limits, size)
    fmts = sorted(ctx.formats)
    report = ScanReport(root=str(path), allowlist=[e.to_dict() for e in allow] if allow else [])
    report.files = [display]
    report.file_formats = {display: fmts}
    if not fmts:
        report.unrecognised.append(display)
    report.formats = dict.fromkeys(fmts, 1)
    report.files_scanned = 1
    report.merge(ctx.findings)
    if progress is not None:
        progress(size)
    report.duration_s = time.monotonic() - started
    return report


def scan_path(
    path: str | os.PathLike[str],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    limits: Limits | None = None,
    allow: Sequence[AllowEntry] = (),
) -> ScanReport:
    """Scan a model directory or a single file. ``progress`` is called with bytes scanned;
    ``allow`` holds the user's reviewed allowlist entries (``glassbox.scan.allowlist``)."""
    root = path if isinstance(path, Path) else Path(path)
    limits = limits or _DEFAULT_LIMITS
    if allow:
        limits = dataclasses.replace(
            limits, allow=limits.allow | frozenset(e.callable for e in allow)
        )
    started = time.monotonic()
    try:
        st = root.stat()
    except OSError as exc:
        raise InputError(f"cannot scan {root}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        files, findings = _collect(root)
    elif stat.S_ISREG(st.st_mode):
        return _scan_one_file(root, st.st_size, limits, allow, progress, started)
    else:
        raise InputError(f"cannot scan {root}: not a regular file or directory")
    if not files and not findings:
        # Nothing to analyse is not "nothing found": a gate must not pass on an empty target.
        raise InputError(f"cannot scan {root}: the directory holds no files to scan")
    report = ScanReport(root=str(root), allowlist=[e.to_dict() for e in allow])
    formats: dict[str, int] = {}  # files per format (a plain dict: cheaper per file)
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 8)

    def done(display: str, found: list[Finding], fmts: list[str], size: int) -> None:
        findings.extend(found)
        for fmt in fmts:
            formats[fmt] = formats.get(fmt, 0) + 1
        if not fmts:
            report.unrecognised.append(display)
        report.files.append(display)
        report.file_formats[display] = fmts
        if progress is not None:
            progress(size)

    if n_workers > 1 and len(files) >= PARALLEL_MIN_FILES:
        with concurrent.futures.ProcessPoolExecutor(max_workers=n_workers) as pool:
            futures = {
                pool.submit(_worker, str(p), display, limits, size): (p, display, size)
                for p, display, size in files
            }
            for fut in concurrent.futures.as_completed(futures):
                p, display, size = futures[fut]
                try:
                    raw, fmts = fut.result()
                except concurrent.futures.process.BrokenProcessPool:
                    # A worker died (a native parser crashed): never rescan in this process,
                    # and never let the file pass silently.
                    report.errors.append(f"{display}: scan worker died")
                    crashed = _fs_finding(
                        "GBX-LIM-002", display, "scan worker died while scanning; not scanned"
                    )
                    done(display, [crashed], [], size)
                    continue
                except Exception as exc:  # a failed worker must not lose the file's result
                    report.errors.append(f"{display}: worker failed ({type(exc).__name__})")
                    fallback = scan_file(p, display, limits, size)
                    done(display, fallback.findings, sorted(fallback.formats), size)
                    continue
                done(display, [Finding.from_dict(d) for d in raw], fmts, size)
    else:
        for p, display, size in files:
            ctx = scan_file(p, display, limits, size)
            done(display, ctx.findings, sorted(ctx.formats), size)
    report.files.sort()
    report.unrecognised.sort()
    report.files_scanned = len(files)
    report.formats = formats
    report.merge(findings)
    report.duration_s = time.monotonic() - started
    return report
