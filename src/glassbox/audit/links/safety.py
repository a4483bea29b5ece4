"""Safety: the scanner's findings for these exact files, from a signed scan attestation or now.

A scan attestation counts only when a trusted key signed it and its subjects cover every model
file at its current digest (a file changed or added since the scan voids it); otherwise the
static scanner runs now. The link fails when any finding reaches ``--fail-on`` (default: high),
passes when every file was scanned and nothing that severe was found, and is unknown when no
scan could be made, the scanner could not finish some file, or it recognised none of the files
(nothing was analysed): an unscanned file is not a safe one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from glassbox.audit.context import AuditContext, AuditOptions
from glassbox.audit.evidence import EvidenceFile, as_bundle, subject_sha256
from glassbox.audit.verdict import LinkResult, Verdict, unavailable
from glassbox.errors import GlassboxError, InputError
from glassbox.scan.findings import Finding, Severity

LINK = "safety"


def check(ctx: AuditContext) -> LinkResult:
    result = _check(ctx)
    _add_probes(ctx, result)
    return result


def _check(ctx: AuditContext) -> LinkResult:
    threshold = fail_on_severity(ctx.options)
    notes: list[str] = []
    findings: list[Finding] | None = None
    source: dict[str, Any] = {}
    for attestation in ctx.evidence.of("scan"):
        try:
            findings, source = _from_attestation(ctx, attestation)
            break
        except GlassboxError as exc:
            notes.append(f"scan attestation {attestation.path} not used: {exc}")
    if findings is None:
        if not ctx.options.scan_now:
            result = LinkResult.unknown(LINK, "no trusted scan attestation, and --no-scan given")
            result.details.extend(notes)
            return result
        try:
            from glassbox.scan import scan_path
        except ImportError as exc:
            result = unavailable(LINK, "scan", str(exc))
            result.details.extend(notes)
            return result
        try:
            report = scan_path(ctx.model)
        except InputError as exc:  # nothing to scan (an empty directory) is not a pass
            result = LinkResult.unknown(LINK, f"nothing was analysed: {exc}")
            result.details.extend(notes)
            return result
        findings = list(report.findings)
        source = {
            "source": "scanned now",
            "scanner": f"glassbox.scan {report.scanner_version}",
            "files_scanned": report.files_scanned,
            "files_recognised": report.files_scanned - len(report.unrecognised),
            "formats": dict(sorted(report.formats.items())),
            "scan_errors": list(report.errors),
        }
    if ctx.options.behavior:
        notes.extend(_behaviour(ctx, findings))
    result = _verdict(findings, threshold, source)
    result.details.extend(notes)
    return result


def _add_probes(ctx: AuditContext, result: LinkResult) -> None:
    """Probe attestations given as evidence, shown beside the findings (no verdict change)."""
    if not ctx.evidence.of("probe"):
        return
    try:
        from glassbox.audit.probes import describe, probe_evidence
    except ImportError as exc:  # pragma: no cover - glassbox.lm imports nothing heavy
        result.details.append(f"probe attestations not read: {exc}")
        return
    entries = probe_evidence(ctx)
    result.evidence["probes"] = entries
    result.details.extend(describe(e) for e in entries)


def fail_on_severity(options: AuditOptions) -> Severity:
    """The ``--fail-on`` severity; a bad name is the user's input error."""
    try:
        return Severity.parse(options.fail_on)
    except ValueError as exc:
        raise InputError(f"--fail-on: {exc}") from exc


def _verdict(findings: list[Finding], threshold: Severity, source: dict[str, Any]) -> LinkResult:
    counts = Counter(str(f.severity) for f in findings)
    blocking = [f for f in findings if f.severity >= threshold]
    evidence = {
        **source,
        "fail_on": str(threshold),
        "counts": dict(sorted(counts.items())),
        "finding_ids": sorted({f.rule_id for f in findings}),
    }
    errors = source.get("scan_errors") or []
    if blocking:
        worst = max(f.severity for f in blocking)
        summary = (
            f"{len(blocking)} finding(s) at or above {threshold} (worst: {worst}): "
            + ", ".join(sorted({f"{f.rule_id} in {f.location}" for f in blocking})[:3])
        )
        verdict = Verdict.FAIL
    elif source.get("files_scanned") == 0:
        summary = "the scanner found no files to scan"
        verdict = Verdict.UNKNOWN
    elif source.get("files_recognised") == 0 or source.get("formats") == {}:
        summary = "nothing was analysed: the scanner recognised none of the files"
        verdict = Verdict.UNKNOWN
    elif errors:
        summary = f"the scanner could not finish {len(errors)} file(s): {errors[0]}"
        verdict = Verdict.UNKNOWN
    else:
        summary = f"no findings at or above {threshold}" + (
            f" ({len(findings)} lower-severity finding(s))" if findings else ""
        )
        summary += f"; {source['source']}"
        verdict = Verdict.PASS
    result = LinkResult(LINK, verdict, summary, evidence)
    result.findings = [f.to_dict() for f in sorted(findings, key=lambda f: -f.severity)]
    return result


def _from_attestation(
    ctx: AuditContext, attestation: EvidenceFile
) -> tuple[list[Finding], dict[str, Any]]:
    from glassbox.errors import VerificationError
    from glassbox.sign import verify_bundle

    if not attestation.signed or not isinstance(attestation.document, dict):
        raise VerificationError("it is not signed")
    keys = ctx.trusted_keys()
    if not keys:
        raise VerificationError("no trusted key given (--key) to check its signature")
    statement: dict[str, Any] | None = None
    key_id = ""
    for key in keys:
        try:
            statement = verify_bundle(as_bundle(attestation), key.key, where=str(attestation.path))
            key_id = key.key_id
            break
        except VerificationError:
            continue
    if statement is None:
        raise VerificationError("no trusted key verifies its signature")
    _check_covers_model(ctx, statement)
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise VerificationError("its predicate is not an object")
    raw = predicate.get("findings")
    if not isinstance(raw, list):
        raise VerificationError("its predicate has no findings list")
    try:
        findings = [Finding.from_dict(item) for item in raw]
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"malformed finding: {exc}") from exc
    errors = predicate.get("errors")
    formats = predicate.get("formats")
    analysed: dict[str, Any] = {}
    if isinstance(formats, dict):
        analysed["formats"] = formats
    unrecognised = predicate.get("unrecognised")
    scanned = predicate.get("filesScanned")
    if isinstance(unrecognised, list) and isinstance(scanned, int):
        analysed["files_recognised"] = scanned - len(unrecognised)
    return findings, {
        **analysed,
        "source": "signed scan attestation",
        "scan_errors": [str(e) for e in errors] if isinstance(errors, list) else [],
        "attestation": str(attestation.path),
        "predicate_type": attestation.predicate_type,
        "key_id": key_id,
    }


def _check_covers_model(ctx: AuditContext, statement: dict[str, Any]) -> None:
    """The attestation must name every model file with its current digest (or the root)."""
    from glassbox.errors import VerificationError

    subjects = [s for s in statement.get("subject", []) if isinstance(s, dict)]
    root = ctx.manifest().root_digest.hex()
    if any(subject_sha256(s) == root for s in subjects):
        return
    scanned = {str(s.get("name")): subject_sha256(s) for s in subjects}
    files = ctx.sha256_files()
    changed = sorted(p for p, d in files.items() if p in scanned and scanned[p] != d)
    unscanned = sorted(p for p in files if p not in scanned)
    if changed:
        raise VerificationError(f"files changed since the scan: {', '.join(changed[:5])}")
    if unscanned:
        raise VerificationError(f"files it does not cover: {', '.join(unscanned[:5])}")


def _behaviour(ctx: AuditContext, findings: list[Finding]) -> list[str]:
    """Add behavioural (backdoor) findings when asked and the part is present: a causal LM's
    hidden-trigger search (``glassbox.lm``), else the classifier detectors."""
    from glassbox.lm.trigger import is_causal_lm

    if is_causal_lm(ctx.model):
        try:
            from glassbox.audit.chain import declared_base_model
            from glassbox.lm import scan_lm_behavior

            base, note = declared_base_model(ctx.model, ctx.provenance_statement)
            lm_found = scan_lm_behavior(ctx.model, base=base, base_note=note)
        except ImportError as exc:
            return [f"behaviour scan not available: {exc}"]
        findings.extend(lm_found)
        against = f"against the base {note}" if base is not None else f"no base ({note})"
        return [f"LM trigger search ran ({against}): {len(lm_found)} finding(s)"]
    try:
        from glassbox.scan.behavior import scan_behavior
    except ImportError as exc:  # torch is an optional extra
        return [f"behaviour scan not available: {exc}"]
    found = scan_behavior(ctx.model)
    findings.extend(found)
    return [f"behaviour scan ran: {len(found)} finding(s)"]
