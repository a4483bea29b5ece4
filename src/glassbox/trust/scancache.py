"""Scan results remembered by content, so a warm load does not re-scan unchanged files.

A loader scans the private copy it verified; each file's SHA-256 is then known (it matched the
signature). The scanner is deterministic in a file's bytes, its name and the scanner's own code,
so a result is stored under (name, SHA-256, scanner fingerprint), the fingerprint being a hash
of the ``glassbox.scan`` package's files: editing a rule or the allowlist starts afresh.

The trust rule is the digest cache's: the database lives in the user's cache directory, and
whoever can write there can plant a clean result for a malicious digest. ``use_cache=False``
scans everything. Files whose digest is not known as SHA-256 (BLAKE3 or sharded signatures) are
always scanned.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glassbox.scan import ScanReport
    from glassbox.scan.allowlist import AllowEntry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    scanner TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (name, sha256, scanner)
) WITHOUT ROWID
"""


@functools.cache
def scanner_fingerprint() -> str:
    """SHA-256 over the scanner package's own files (source and compiled modules)."""
    import glassbox.scan

    root = Path(glassbox.scan.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".so", ".pyd") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _fingerprint(allow: Sequence[AllowEntry]) -> str:
    """The scanner's fingerprint, extended by the allowlist entries a result depends on."""
    if not allow:
        return scanner_fingerprint()
    names = "\0".join(sorted({e.callable for e in allow}))
    return hashlib.sha256(f"{scanner_fingerprint()}\0{names}".encode()).hexdigest()


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(_SCHEMA)


def _connect() -> sqlite3.Connection | None:
    """This process's pooled connection (``glassbox.sqlitepool``): a warm load makes one
    query per file, far less than opening and closing the database costs."""
    from glassbox import paths
    from glassbox.sqlitepool import pooled

    try:
        return pooled(paths.cache_dir() / "scans.sqlite3", _setup)
    except (sqlite3.Error, OSError):
        return None  # no cache directory: scan everything


def scan_files(
    root: Path,
    files: Mapping[str, Path] | Iterable[tuple[str, Path]],
    sha256: dict[str, str] | None,
    *,
    use_cache: bool,
    buffers: Mapping[str, memoryview] | None = None,
    allow: Sequence[AllowEntry] = (),
) -> ScanReport:
    """Scan ``files`` (manifest name -> path under ``root``), reusing remembered results.

    ``files`` may also be a stream of (name, path) pairs, scanned as they come (the loaders
    scan each file as soon as it is verified, while larger ones are still being hashed); the
    report lists them sorted either way.

    ``buffers`` (manifest name -> verified bytes in memory) are scanned from memory, under
    the path ``files`` gives them (which need not exist). ``allow``: reviewed allowlist
    entries (the policy's ``[[scan.allow]]``), applied as ``scan_path(allow=...)`` applies them
    and part of the key a result is remembered under. A single-file model (name ``.``) is
    reported under its file name, as ``scan_path`` does.
    """
    import time

    from glassbox.scan import ScanReport
    from glassbox.scan.context import Limits
    from glassbox.scan.findings import Finding
    from glassbox.scan.scanner import scan_buffer, scan_file

    started = time.monotonic()
    report = ScanReport(root=str(root), allowlist=[e.to_dict() for e in allow])
    limits = Limits(allow=frozenset(e.callable for e in allow)) if allow else None
    db = _connect() if use_cache and sha256 is not None else None
    fingerprint = _fingerprint(allow) if db is not None else ""
    fresh: list[tuple[str, str, str]] = []
    findings: list[Finding] = []
    pairs = sorted(files.items()) if isinstance(files, Mapping) else files
    count = 0
    for name, path in pairs:
        count += 1
        display = path.name if name == "." else name
        digest = (sha256 or {}).get(name)
        result: dict[str, Any] | None = None
        if db is not None and digest is not None:
            row = db.execute(
                "SELECT result FROM scans WHERE name = ? AND sha256 = ? AND scanner = ?",
                (display, digest, fingerprint),
            ).fetchone()
            if row is not None:
                with contextlib.suppress(ValueError, TypeError):
                    result = json.loads(row[0])
        if result is None:
            in_memory = (buffers or {}).get(name)
            if in_memory is not None:
                ctx = scan_buffer(in_memory, display, path, limits)
            else:
                ctx = scan_file(path, display, limits)
            result = {
                "findings": [f.to_dict() for f in ctx.findings],
                "formats": sorted(ctx.formats),
            }
            if db is not None and digest is not None:
                fresh.append((display, digest, json.dumps(result)))
        findings.extend(Finding.from_dict(d) for d in result["findings"])
        report.files.append(display)
        report.file_formats[display] = list(result["formats"])
        for fmt in result["formats"]:
            report.formats[fmt] = report.formats.get(fmt, 0) + 1
    if db is not None and fresh:
        with contextlib.suppress(sqlite3.Error):
            db.execute("BEGIN IMMEDIATE")  # one transaction (one sync), not one per file
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO scans VALUES (?, ?, ?, ?)",
                    [(n, d, fingerprint, r) for n, d, r in fresh],
                )
            finally:
                db.execute("COMMIT")
    report.files_scanned = count
    order = sorted(range(len(report.files)), key=report.files.__getitem__)
    report.files = [report.files[i] for i in order]
    report.merge(findings)
    report.duration_s = time.monotonic() - started
    return report
