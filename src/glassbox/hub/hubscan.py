"""The hub's own scan of a release, as a signed attestation in the hub's transparency log.

When a release's files are uploaded, the trust gate scans them; the hub signs that report
with its attestation key in the scan part's format (``glassbox.scan.attest_scan``, predicate
``SCAN_PREDICATE_TYPE``) and appends it to its log, so "the hub scanned these bytes and found
this" is a public, signed and logged statement the hub cannot later deny or change. ``pull``
receives it with an offline proof bundle (whose entry body *is* the attestation) and checks
it before moving anything into place: included under a checkpoint of a log the user's policy
trusts (with the witnesses the policy asks for, consistent with the checkpoints this machine
saw), signed by the hub's attestation key (pinned by the user when given), a scan statement,
and about exactly the files that were pulled.

The hub's key is not a publisher key: it vouches for the scan, never for the model.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError, VerificationError

if TYPE_CHECKING:
    from glassbox.sign import PrivateKey
    from glassbox.trust.policy import TrustPolicy

HUB_SCAN_KIND = "hub-scan"
HUB_SCAN_SUFFIX = ".hub-scan.proof.json"
HUB_RESCAN_SUFFIX = ".hub-rescan.proof.json"  # the most recent re-scan (``hub rescan``)


def attest_key_path(log_key: str | os.PathLike[str]) -> Path:
    """Where a hub keeps its attestation key by default: beside its log key."""
    path = Path(log_key)
    return path.with_name(path.stem + ".attest.key")


def load_or_create_attester(path: str | os.PathLike[str]) -> PrivateKey:
    """The hub's attestation key (PKCS#8 PEM, ``NAME.key`` with ``NAME.pub`` beside it),
    created on first use. Several hub processes may start at once: the key is created with
    ``O_EXCL`` by one of them, and the others wait for it to be complete."""
    from glassbox.sign import generate_private_key, load_private_key, write_keypair

    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(InputError):  # another process created it first
            write_keypair(generate_private_key(), path.with_suffix(""))
    deadline = time.monotonic() + 10
    while True:
        try:
            return load_private_key(path)
        except InputError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # being written by the process that created it


def attest_hub_scan(report: Any, key: PrivateKey, files: dict[str, str]) -> dict[str, Any]:
    """The scan part's signed attestation of ``report``. Subjects are ``files`` (name to the
    SHA-256 the gate verified on the hub's private staging copy, the bytes just scanned), so
    the release is not hashed a second time."""
    from glassbox.scan import attest_scan

    return attest_scan(report, key, known=files)


def verify_hub_scan(
    carried: Any,
    policy: TrustPolicy,
    files: dict[str, str],
    *,
    pinned_key_id: str | None = None,
) -> dict[str, Any]:
    """Check the hub's scan attestation a pull received (see the module docstring).

    ``files`` maps each pulled file to its SHA-256 (already checked against the publisher's
    signature by the gate). Returns what the attestation says; ``VerificationError`` (one
    line) when it does not hold.
    """
    from glassbox.scan import SCAN_PREDICATE_TYPE
    from glassbox.tlog import ProofBundle, SeenCheckpoints, verify_proof_bundle
    from glassbox.trust.logproof import subject_sha256

    if not isinstance(carried, dict) or not isinstance(carried.get("proof"), dict):
        raise VerificationError("hub scan: the hub sent no scan attestation with a log proof")
    try:
        bundle = ProofBundle.from_dict(carried["proof"])
    except InputError as exc:
        raise VerificationError(f"hub scan: {exc}") from None
    trusted = policy.log.trusted_vkeys()
    if bundle.log_vkey not in trusted:
        raise VerificationError(
            f"hub scan: logged in {bundle.log_vkey.split('+')[0]}, not a log the policy trusts"
        )
    seen = SeenCheckpoints()
    try:
        verified, status = verify_proof_bundle(bundle, bundle.log_vkey, policy.log.witnesses, seen)
    except InputError as exc:
        raise VerificationError(f"hub scan: {exc}") from None
    except VerificationError as exc:
        raise VerificationError(f"hub scan: {exc}") from None
    finally:
        seen.close()
    entry = verified.entry
    if entry is None:
        raise VerificationError("hub scan: the proof carries no entry body (no attestation)")
    if entry.statement.get("predicateType") != SCAN_PREDICATE_TYPE:
        raise VerificationError(
            f"hub scan: entry {verified.index} is not a scan attestation "
            f"({entry.statement.get('predicateType')!r})"
        )
    if pinned_key_id is not None and entry.key_id != pinned_key_id:
        raise VerificationError(
            f"hub scan: signed by key {entry.key_id[:16]}, not the pinned hub key "
            f"{pinned_key_id[:16]}"
        )
    subjects: dict[str, str | None] = {
        str(s.get("name")): subject_sha256(s) for s in entry.subjects() if isinstance(s, dict)
    }
    if subjects != files:
        differ = sorted(n for n in set(subjects) | set(files) if subjects.get(n) != files.get(n))
        raise VerificationError(
            f"hub scan: the attestation is about other files ({', '.join(differ[:5])})"
        )
    predicate = entry.statement.get("predicate") or {}
    return {
        "log_index": verified.index,
        "key_id": entry.key_id,
        "checkpoint": status,
        "max_severity": predicate.get("maxSeverity"),
        "findings": len(predicate.get("findings") or []),
        "scanner": predicate.get("scanner"),
    }
