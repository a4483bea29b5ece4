"""The gate: every check a trust policy demands before a model may be used.

Links, in order (each one a ``Reason`` when it fails, so one run names everything to fix):

* ``publisher``: the OMS signature verifies with a key (or an X.509 chain to an anchor) of a
  publisher the policy trusts *for this model name*. A signature by a publisher trusted only
  for other names, or by a key the policy does not know, is refused and said so.
* ``files``: the files are exactly what was signed (every changed, added or removed file named).
  ``verify`` hashes the files on disk; a loader instead checks the private copy it will load
  (``glassbox.trust.copy``), so the bytes checked are the bytes loaded.
* ``log``: an offline proof bundle shows the signature's entry in a log the policy trusts,
  cosigned by k of its witnesses, consistent with the checkpoints this machine saw.
* ``provenance`` (when required): signed SLSA v1 provenance, by the same publisher, whose
  subjects are these files.
* ``scan`` and ``pickle``: no scanner finding at or above ``fail-on``; no pickle-based file
  unless the policy allows pickles; a file the scanner could not finish is not a safe one.

The model name that selects publishers is the caller's: ``name=``, else the Hugging Face
repository id of a cache snapshot, else the directory (or file) name. It is never read from the
signature, which the signer chose.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import GlassboxError, InputError, VerificationError
from glassbox.trust.errors import Reason, TrustRefused, refusal
from glassbox.trust.locations import ModelLocation, resolve_model
from glassbox.trust.logproof import (
    LogCheck,
    check_log_proofs,
    read_proofs,
    relate_with_embedded_log,
    subject_sha256,
)
from glassbox.trust.policy import Publisher, TrustPolicy

if TYPE_CHECKING:
    from glassbox.digest import Manifest
    from glassbox.scan import ScanReport

SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
# Formats the scanner reports for files that are (or contain) a pickle.
PICKLE_FORMATS = frozenset({"pickle", "maybe-pickle"})


@dataclass(frozen=True)
class Authenticated:
    """A signature the policy accepts: by whom, with which key, over which manifest."""

    publisher: Publisher
    key_id: str
    signer: str  # "key 1a2b..." or "certificate CN=..., chained to CN=..."
    statement: dict[str, Any]
    expected: Manifest
    signature_path: Path


@dataclass
class GateResult:
    """What the gate found; ``reasons`` is empty exactly when the model may be used."""

    model: str
    model_name: str
    publisher: str | None = None
    key_id: str | None = None
    signer: str | None = None
    root_digest: str | None = None
    manifest: Manifest | None = None
    log: LogCheck | None = None
    scan: dict[str, Any] | None = None
    reasons: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The scanner's full report behind ``scan`` (to attest it: ``glassbox.scan.attest_scan``).
    scan_report: ScanReport | None = field(default=None, repr=False)
    #: Seconds per link as a loader ran them (policy, signature, files, log, scan).
    timings: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def refusal(self) -> TrustRefused:
        return refusal(self.model, self.reasons)

    def raise_if_refused(self) -> None:
        if self.reasons:
            raise self.refusal()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_name": self.model_name,
            "verified": self.ok,
            "publisher": self.publisher,
            "key_id": self.key_id,
            "signer": self.signer,
            "root_digest": self.root_digest,
            "files": None if self.manifest is None else len(self.manifest.file_digests()),
            "log": None
            if self.log is None
            else {
                "status": self.log.status,
                "summary": self.log.summary,
                "evidence": self.log.evidence,
                "failures": self.log.failures,
            },
            "scan": self.scan,
            "reasons": [{"link": r.link, "message": r.message} for r in self.reasons],
            "notes": list(self.notes),
        }


def model_identity(model: str | os.PathLike[str], name: str | None = None) -> ModelLocation:
    """Resolve ``model`` (a path or ``hf:org/name@REV``); refuse one that does not exist."""
    location = resolve_model(model)
    if not location.path.exists():
        raise InputError(f"model path {location.path} does not exist")
    return location


def model_name(location: ModelLocation, name: str | None = None) -> str:
    if name:
        return name
    if location.repo_id:
        return location.repo_id
    path = location.path.absolute()
    return path.name or path.resolve().name


def default_proofs(location: ModelLocation) -> list[Path]:
    """Where an offline proof bundle is looked for: ``MODEL.proof.json`` beside the model."""
    path = location.path.absolute()
    candidate = path.with_name(path.name + ".proof.json")
    return [candidate] if candidate.is_file() else []


def default_provenance(location: ModelLocation) -> list[Path]:
    path = location.path.absolute()
    names = (path.name + ".provenance.json", "provenance.sigstore.json")
    return [path.with_name(n) for n in names if path.with_name(n).is_file()]


def authenticate(
    signature_path: Path, policy: TrustPolicy, name: str
) -> tuple[Authenticated | None, Reason | None]:
    """Which trusted publisher signed this, or the reason none did (``publisher`` link).

    Structure errors in the signature are ``InputError`` for the caller (exit 2).
    """
    from glassbox.sign import bundle_certificates, manifest_from_statement, read_bundle

    if not signature_path.is_file():
        return None, Reason(
            "publisher", f"no signature: {signature_path} not found (sign it, or pass one)"
        )
    where = str(signature_path)
    bundle = read_bundle(signature_path)
    certified = bool(bundle_certificates(bundle, where=where))
    candidates = policy.publishers_for(name)
    others = [p for p in policy.publishers if p not in candidates]
    for publisher in candidates:
        found = _try_publisher(bundle, publisher, certified, where)
        if found is not None:
            statement, key_id, signer = found
            expected = manifest_from_statement(statement, where=where)
            return Authenticated(
                publisher, key_id, signer, statement, expected, signature_path
            ), None
    for publisher in others:
        if _try_publisher(bundle, publisher, certified, where) is not None:
            patterns = ", ".join(publisher.models)
            return None, Reason(
                "publisher",
                f"signed by publisher {publisher.name!r}, whom your policy trusts only for "
                f"models named {patterns}, not {name!r}",
            )
    who = _describe_signer(bundle, certified, where)
    trusted = ", ".join(repr(p.name) for p in candidates) or "nobody"
    return None, Reason(
        "publisher",
        f"signed by a key your policy does not know ({who}); trusted for {name!r}: {trusted}",
    )


def _try_publisher(
    bundle: dict[str, Any], publisher: Publisher, certified: bool, where: str
) -> tuple[dict[str, Any], str, str] | None:
    from glassbox.sign import verify_bundle, verify_bundle_certificates

    if certified:
        if not publisher.certificates:
            return None
        try:
            statement, signer = verify_bundle_certificates(
                bundle, publisher.certificates, where=where
            )
        except VerificationError:
            return None
        anchor = signer.anchor.subject.rfc4514_string()
        return statement, signer.key_id, f"certificate {signer.subject}, chained to {anchor}"
    hint = _hint(bundle)
    for key in sorted(publisher.keys, key=lambda k: _key_hint(k.key) != hint):
        try:
            statement = verify_bundle(bundle, key.key, where=where)
        except VerificationError:
            continue
        return statement, key.key_id, f"key {key.key_id[:16]}"
    return None


def _hint(bundle: dict[str, Any]) -> str | None:
    material = bundle.get("verificationMaterial")
    public = material.get("publicKey") if isinstance(material, dict) else None
    hint = public.get("hint") if isinstance(public, dict) else None
    return hint if isinstance(hint, str) else None


def _key_hint(key: Any) -> str:
    from glassbox.sign import key_hint

    return key_hint(key)


def _describe_signer(bundle: dict[str, Any], certified: bool, where: str) -> str:
    if certified:
        from glassbox.sign import bundle_certificates

        leaf = bundle_certificates(bundle, where=where)[0]
        return f"certificate {leaf.subject.rfc4514_string()}"
    hint = _hint(bundle)
    return f"key hint {hint[:16]}" if hint else "no key hint"


def check_log(
    policy: TrustPolicy, root_hex: str, signer_key_id: str | None, proofs: list[Path]
) -> tuple[LogCheck, Reason | None]:
    """The ``log`` link: a reason if a proof is forged or the log forked (always), or if no
    proof holds and the policy requires one."""
    candidates, unreadable = read_proofs(proofs)
    check = check_log_proofs(
        candidates,
        root_hex,
        policy.log.trusted_vkeys(),
        policy.log.witnesses,
        {signer_key_id} if signer_key_id else set(),
        relate=relate_with_embedded_log,
    )
    check.notes.extend(unreadable)
    if check.status == "fail":
        return check, Reason("log", check.summary)
    if check.status != "pass" and policy.log.require:
        message = check.summary
        if check.status == "missing":
            detail = f" ({check.notes[0]})" if check.notes else ""
            message = (
                "no log proof holds: the policy requires a transparency-log inclusion proof "
                f"(MODEL.proof.json from `glassbox log prove`){detail}"
            )
        return check, Reason("log", message)
    return check, None


def check_provenance(
    auth: Authenticated, sha256_files: dict[str, str], paths: list[Path]
) -> Reason | None:
    """Signed SLSA v1 provenance by the same publisher key whose subjects are these files."""
    from glassbox.sign import read_bundle, verify_bundle, verify_bundle_certificates

    if not paths:
        return Reason("provenance", "the policy requires signed provenance and none was found")
    problems: list[str] = []
    for path in paths:
        try:
            bundle = read_bundle(path)
            statement: dict[str, Any] | None = None
            if auth.publisher.certificates and "publicKey" not in bundle["verificationMaterial"]:
                statement, _ = verify_bundle_certificates(
                    bundle, auth.publisher.certificates, where=str(path)
                )
            else:
                for key in auth.publisher.keys:
                    try:
                        statement = verify_bundle(bundle, key.key, where=str(path))
                        break
                    except VerificationError:
                        continue
            if statement is None:
                raise VerificationError(f"{path}: not signed by {auth.publisher.name!r}")
            if statement.get("predicateType") != SLSA_PROVENANCE:
                raise VerificationError(f"{path}: not SLSA v1 provenance")
            subjects = {
                str(s.get("name")): subject_sha256(s)
                for s in statement.get("subject", [])
                if isinstance(s, dict)
            }
            missing = sorted(n for n, d in sha256_files.items() if subjects.get(n) != d)
            if missing:
                raise VerificationError(
                    f"{path}: does not cover these files as signed: {', '.join(missing[:5])}"
                )
            return None
        except GlassboxError as exc:
            problems.append(str(exc))
    return Reason("provenance", problems[0])


REMOTE_CODE_RULE = "GBX-CODE-001"


def reviewed_code(policy: TrustPolicy, finding: Any, signed: dict[str, str] | None) -> str | None:
    """The policy's reason when ``finding`` is the scanner's remote-code finding about a file
    the policy lists and the signature covers (at the listed SHA-256, if one is given)."""
    if finding.rule_id != REMOTE_CODE_RULE or not signed or not finding.subject:
        return None
    digest = signed.get(finding.subject)
    for code in policy.code:
        if code.path == finding.subject and digest and code.sha256 in (None, digest):
            return code.reason
    return None


def check_scan(
    policy: TrustPolicy, report: ScanReport, signed: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[Reason]]:
    """The ``scan`` and ``pickle`` links for a scan of the files that will be (or were) used.

    ``signed`` maps each signed file to its SHA-256: code the policy lists (``[[code]]``) and
    the signature covers is not a finding that refuses the model; anything else still is.
    """
    reasons: list[Reason] = []
    reviewed = {
        f.subject: why for f in report.findings if (why := reviewed_code(policy, f, signed))
    }
    blocking = [
        f
        for f in report.findings
        if f.severity >= policy.fail_on
        and not (f.rule_id == REMOTE_CODE_RULE and f.subject in reviewed)
    ]
    for finding in blocking[:20]:
        reasons.append(
            Reason(
                "scan",
                f"{finding.rule_id} ({finding.severity}) in {finding.location}: {finding.message}",
            )
        )
    if len(blocking) > 20:
        reasons.append(Reason("scan", f"and {len(blocking) - 20} more finding(s)"))
    pickles = sorted(
        name for name, formats in report.file_formats.items() if PICKLE_FORMATS & set(formats)
    )
    if pickles and not policy.allow_pickle:
        reasons.append(
            Reason(
                "pickle",
                f"pickle-based file(s) {', '.join(pickles[:5])}: the policy does not allow "
                "pickles (set [pickle] allow = true to load them through the restricted "
                "unpickler)",
            )
        )
    for error in report.errors:
        reasons.append(Reason("scan", f"not scanned: {error}"))
    summary = {
        "fail_on": str(policy.fail_on),
        "files_scanned": report.files_scanned,
        "counts": report.counts(),
        "finding_ids": sorted({f.rule_id for f in report.findings}),
        "pickle_files": pickles,
        "reviewed_code": reviewed,
        # The policy's [[scan.allow]] entries this scan honoured, as `scan --allow` records them.
        "allowlist": list(report.allowlist),
    }
    return summary, reasons


def sha256_of(manifest: Manifest) -> dict[str, str] | None:
    """File -> SHA-256 hex when the manifest was made with plain SHA-256 files."""
    if manifest.method.algorithm != "sha256" or manifest.method.shard_size is not None:
        return None
    return {path: digests[0].hex() for path, digests in manifest.file_digests().items()}


def verify_model_with_policy(
    model: str | os.PathLike[str],
    policy: TrustPolicy,
    *,
    name: str | None = None,
    signature: str | os.PathLike[str] | None = None,
    proofs: list[Path] | None = None,
    provenance: list[Path] | None = None,
    use_cache: bool = False,
    scan: bool = True,
    progress: Callable[[int], None] | None = None,
) -> GateResult:
    """Run the whole gate on the files on disk (``glassbox verify --policy``).

    Never raises for a failed link (they are ``reasons``); raises ``InputError`` for bad input
    (a missing model, a malformed signature).
    """
    from glassbox.sign import ModelVerificationError, check_files, default_signature_path

    location = model_identity(model)
    result = GateResult(str(model), model_name(location, name))
    sig_path = Path(signature) if signature is not None else default_signature_path(location.path)
    auth, reason = authenticate(sig_path, policy, result.model_name)
    if reason is not None:
        result.reasons.append(reason)
    if auth is not None:
        result.publisher = auth.publisher.name
        result.key_id = auth.key_id
        result.signer = auth.signer
        result.root_digest = "sha256:" + auth.expected.root_digest.hex()
        try:
            result.manifest = check_files(
                location.path,
                auth.expected,
                sig_path,
                use_cache=use_cache,
                progress=progress,
                link_root=location.repo_root,
            )
        except ModelVerificationError as exc:
            result.reasons.append(Reason("files", _files_message(exc)))
        check_log_and_provenance(result, policy, auth, location, proofs, provenance)
    if scan:
        from glassbox.scan import scan_path

        signed = sha256_of(result.manifest) if result.manifest is not None else None
        result.scan_report = scan_path(location.path, allow=policy.scan_allow)
        summary, reasons = check_scan(policy, result.scan_report, signed)
        result.scan = summary
        result.reasons.extend(reasons)
    return result


def check_log_and_provenance(
    result: GateResult,
    policy: TrustPolicy,
    auth: Any,
    location: ModelLocation,
    proofs: list[Path] | None,
    provenance: list[Path] | None,
) -> None:
    """The ``log`` and ``provenance`` links, once the signer is known: shared by the gate and
    the loaders, which differ only in how they check and scan the files."""
    log, reason = check_log(
        policy,
        auth.expected.root_digest.hex(),
        auth.key_id,
        proofs if proofs is not None else default_proofs(location),
    )
    result.log = log
    result.notes.extend(log.notes)
    if reason is not None:
        result.reasons.append(reason)
    if not policy.require_provenance:
        return
    files = sha256_of(auth.expected)
    if files is None:
        result.reasons.append(
            Reason("provenance", "provenance subjects need a sha256 (files) signature")
        )
        return
    paths = provenance if provenance is not None else default_provenance(location)
    reason = check_provenance(auth, files, paths)
    if reason is not None:
        result.reasons.append(reason)


def _files_message(exc: Any) -> str:
    diff = exc.diff
    parts = []
    for label, names in (
        ("changed", diff.modified),
        ("added", diff.added),
        ("removed", diff.removed),
    ):
        if names:
            more = f" (+{len(names) - 10} more)" if len(names) > 10 else ""
            parts.append(f"{label}: {', '.join(names[:10])}{more}")
    return "files differ from what the publisher signed: " + "; ".join(parts)
