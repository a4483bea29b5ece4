"""A signed in-toto attestation of a scan: "these files, by digest, were scanned with this
result", for the transparency log and for ``audit`` to check later without re-scanning."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError
from glassbox.scan.report import ScanReport

if TYPE_CHECKING:
    from glassbox.sign import PrivateKey

# Signing (cryptography, digests) is imported when an attestation is made, not whenever the
# scanner is: a plain ``glassbox scan`` starts 35 ms sooner.

SCAN_PREDICATE_TYPE = "https://glassbox.dev/scan/v1"


def scan_statement(report: ScanReport, known: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The unsigned Statement. Subjects are re-hashed now, so the attestation binds the result
    to the bytes on disk at signing time (a file changed since the scan fails later checks).

    ``known`` maps a scanned file's name to the SHA-256 its caller already verified on bytes
    nobody else can change (the hub's private staging copy, checked against the publisher's
    signature); those files are not hashed again."""
    from glassbox.digest import hash_file
    from glassbox.sign import make_statement, subject

    root = Path(report.root)
    base = root if root.is_dir() else root.parent
    subjects = []
    for rel in sorted(report.files):
        p = base / rel
        digest = (known or {}).get(rel)
        subjects.append(subject(rel, digest if digest is not None else hash_file(p, "sha256")))
    if not subjects:
        raise InputError(f"{root}: nothing was scanned, so there is nothing to attest")
    worst = report.max_severity
    predicate = {
        "scanner": {"name": "glassbox", "version": report.scanner_version},
        "maxSeverity": None if worst is None else str(worst),
        "counts": report.counts(),
        "formats": dict(sorted(report.formats.items())),
        "filesScanned": report.files_scanned,
        "unrecognised": list(report.unrecognised),
        "allowlist": [dict(e) for e in report.allowlist],
        "errors": list(report.errors),
        "findings": [f.to_dict() for f in report.findings],
    }
    return make_statement(subjects, SCAN_PREDICATE_TYPE, predicate)


def attest_scan(
    report: ScanReport, key: PrivateKey, known: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Sign the scan statement (``known``: see ``scan_statement``); returns a Sigstore bundle
    (write it with ``write_bundle``)."""
    from glassbox.sign import sign_statement

    return sign_statement(scan_statement(report, known), key)
