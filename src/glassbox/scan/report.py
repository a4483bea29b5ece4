"""A scan's result and its three renderings: text (grouped by file), JSON, SARIF 2.1.0."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox import __version__
from glassbox.errors import InputError
from glassbox.scan.findings import Finding, Severity
from glassbox.scan.rules import RULES

REPORT_SCHEMA = "https://glassbox.dev/scan/report/v1"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning reads ``security-severity`` (0-10) to rank security results.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


@dataclass
class ScanReport:
    root: str
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # Files no format scanner recognised (READMEs, licences, unknown binaries): listed in every
    # rendering, so "0 findings" never hides that nothing was analysed.
    unrecognised: list[str] = field(default_factory=list)
    # The user's reviewed allowlist entries this scan honoured ({"callable", "reason"}).
    allowlist: list[dict[str, str]] = field(default_factory=list)
    # The formats found in each file (nested ones included: a torch zip is zip and pickle), so
    # a policy can refuse pickle-based files whatever their name.
    file_formats: dict[str, list[str]] = field(default_factory=dict)
    scanner_version: str = __version__
    duration_s: float = 0.0

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def fails(self, threshold: Severity) -> bool:
        worst = self.max_severity
        return worst is not None and worst >= threshold

    def counts(self) -> dict[str, int]:
        c = Counter(str(f.severity) for f in self.findings)
        return {str(s): c.get(str(s), 0) for s in sorted(Severity, reverse=True)}

    def merge(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)
        self.findings.sort(key=_order)

    def to_dict(self) -> dict[str, Any]:
        worst = self.max_severity
        return {
            "schema": REPORT_SCHEMA,
            "root": self.root,
            "scanner": {"name": "glassbox", "version": self.scanner_version},
            "files_scanned": self.files_scanned,
            "files": list(self.files),
            "files_recognised": self.files_scanned - len(self.unrecognised),
            "unrecognised": list(self.unrecognised),
            "allowlist": [dict(e) for e in self.allowlist],
            "formats": dict(sorted(self.formats.items())),
            "errors": list(self.errors),
            "max_severity": None if worst is None else str(worst),
            "counts": self.counts(),
            "duration_s": round(self.duration_s, 3),
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanReport:
        try:
            if data.get("schema") != REPORT_SCHEMA:
                raise ValueError(f"schema {data.get('schema')!r}")
            return cls(
                root=str(data["root"]),
                findings=[Finding.from_dict(f) for f in data.get("findings", [])],
                files_scanned=int(data.get("files_scanned", 0)),
                formats={str(k): int(v) for k, v in dict(data.get("formats", {})).items()},
                errors=[str(e) for e in data.get("errors", [])],
                files=[str(p) for p in data.get("files", [])],
                unrecognised=[str(p) for p in data.get("unrecognised", [])],
                allowlist=[
                    {str(k): str(v) for k, v in dict(e).items()} for e in data.get("allowlist", [])
                ],
                scanner_version=str(data.get("scanner", {}).get("version", "")),
                duration_s=float(data.get("duration_s", 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"scan report is not valid: {exc}") from exc


def _order(f: Finding) -> tuple[str, str, int, str]:
    return (f.path, f.member or "", -int(f.severity), f.rule_id)


def render_text(report: ScanReport) -> str:
    lines: list[str] = []
    current: str | None = None
    for f in sorted(report.findings, key=_order):
        if f.path != current:
            current = f.path
            lines.append(f.path)
        where = f" [{f.member}]" if f.member else ""
        lines.append(f"  {str(f.severity).upper():8} {f.rule_id}{where} {f.message}")
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    formats = ", ".join(sorted(report.formats)) or "none recognised"
    lines.append(
        f"{report.files_scanned} file(s) scanned ({formats}); "
        f"{len(report.unrecognised)} file(s) not recognised; "
        f"{len(report.findings)} finding(s){': ' + counts if counts else ''}"
    )
    if report.unrecognised:
        shown = ", ".join(report.unrecognised[:5])
        more = f" and {len(report.unrecognised) - 5} more" if len(report.unrecognised) > 5 else ""
        lines.append(f"not recognised (not analysed): {shown}{more}")
    for err in report.errors:
        lines.append(f"error: {err}")
    return "\n".join(lines)


def _fingerprint(f: Finding) -> str:
    key = "\x00".join([f.rule_id, f.path, f.member or "", f.subject or ""])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _unrecognised_notifications(report: ScanReport) -> list[dict[str, Any]]:
    if not report.unrecognised:
        return []
    text = f"{len(report.unrecognised)} file(s) not recognised (not analysed)"
    return [
        {
            "level": "warning",
            "message": {"text": text},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": p, "uriBaseId": "SRCROOT"}}}
                for p in report.unrecognised
            ],
        }
    ]


def to_sarif(report: ScanReport) -> dict[str, Any]:
    """SARIF 2.1.0 log: one run, every rule described, one result per finding."""
    rule_ids = sorted(RULES)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    rules = [
        {
            "id": rid,
            "name": RULES[rid].title.replace(" ", ""),
            "shortDescription": {"text": RULES[rid].title},
            "defaultConfiguration": {"level": _SARIF_LEVEL[RULES[rid].severity]},
            "properties": {
                "security-severity": _SECURITY_SEVERITY[RULES[rid].severity],
                "tags": ["security", "ml-model"],
            },
        }
        for rid in rule_ids
    ]
    results = []
    for f in report.findings:
        location: dict[str, Any] = {
            "physicalLocation": {"artifactLocation": {"uri": f.path, "uriBaseId": "SRCROOT"}}
        }
        if f.member:
            location["logicalLocations"] = [{"fullyQualifiedName": f.member, "kind": "member"}]
        result: dict[str, Any] = {
            "ruleId": f.rule_id,
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [location],
            "partialFingerprints": {"glassboxFinding/v1": _fingerprint(f)},
            "properties": {
                "severity": str(f.severity),
                "security-severity": _SECURITY_SEVERITY[f.severity],
                "member": f.member,
                "subject": f.subject,
                "evidence": f.evidence,
            },
        }
        if f.rule_id in index:
            result["ruleIndex"] = index[f.rule_id]
        results.append(result)
    root = Path(report.root)
    base = root if root.is_dir() else root.parent
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "glassbox",
                        "version": report.scanner_version,
                        "informationUri": "https://glassbox.dev/scan",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": base.resolve().as_uri() + "/"}},
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": not report.errors,
                        "toolExecutionNotifications": [
                            {"level": "error", "message": {"text": e}} for e in report.errors
                        ]
                        + _unrecognised_notifications(report),
                    }
                ],
                "properties": {
                    "filesScanned": report.files_scanned,
                    "filesNotRecognised": len(report.unrecognised),
                },
            }
        ],
    }
