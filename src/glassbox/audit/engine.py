"""Walk the chain: discover the evidence, run each link, summarise the BOM, decide the exit code.

Links run in dependency order (integrity first, so later links reuse the verified manifest;
provenance before openness, so the grade can use what a verified build proves) and are reported
in chain order. The exit code is 0 only if every link the policy requires passes: a required
link that fails *or is unknown* gives 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from glassbox import __version__
from glassbox.audit.context import AuditContext, AuditOptions
from glassbox.audit.evidence import Evidence, discover
from glassbox.audit.links import integrity, openness, provenance, safety, transparency
from glassbox.audit.verdict import LINKS, LinkResult, Verdict, unavailable
from glassbox.errors import GlassboxError, InputError, VerificationError

SCHEMA_ID = "https://glassbox.dev/schemas/audit-report/v1"
SCHEMA_VERSION = "1.0.0"

_CHECKS: dict[str, Callable[[AuditContext], LinkResult]] = {
    "integrity": integrity.check,
    "provenance": provenance.check,
    "transparency": transparency.check,
    "safety": safety.check,
    "openness": openness.check,
}
_PARTS = {
    "integrity": "sign",
    "provenance": "build",
    "transparency": "tlog",
    "safety": "scan",
    "openness": "bom",
}
_RANK = {Verdict.PASS: 0, Verdict.UNKNOWN: 1, Verdict.FAIL: 2}


@dataclass
class AuditReport:
    """The outcome of one audit: per-link verdicts, evidence, BOM summary, policy, exit code."""

    model: Path
    links: list[LinkResult]
    required: frozenset[str]
    evidence: Evidence
    manifest: dict[str, Any] | None = None
    bom: dict[str, Any] | None = None
    generated_at: str = field(
        default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )

    def link(self, name: str) -> LinkResult:
        return next(link for link in self.links if link.link == name)

    @property
    def overall(self) -> Verdict:
        """The worst verdict among required links (pass when nothing is required)."""
        required = [link.verdict for link in self.links if link.link in self.required]
        return max(required, key=_RANK.__getitem__, default=Verdict.PASS)

    @property
    def exit_code(self) -> int:
        return 0 if self.overall is Verdict.PASS else 1

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form (docs/audit-report.schema.json)."""
        return {
            "$schema": SCHEMA_ID,
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "glassbox", "version": __version__},
            "generated_at": self.generated_at,
            "model": str(self.model),
            "verdict": self.overall.value,
            "exit_code": self.exit_code,
            "policy": {"required": [name for name in LINKS if name in self.required]},
            "links": [
                {**link.to_dict(), "required": link.link in self.required} for link in self.links
            ],
            "manifest": self.manifest,
            "bom": self.bom,
            "evidence": self.evidence.to_dict(),
        }


def audit_model(model: Path, options: AuditOptions | None = None) -> AuditReport:
    """Audit the model at ``model``; raises ``InputError`` only for bad usage (missing model,
    unreadable trusted key, wrong kind of evidence named by option)."""
    options = options or AuditOptions()
    # Absolute and normalised (``.``, ``dir/``), so names and siblings are well defined.
    model = Path(model).absolute()
    evidence = discover(model, options.evidence)
    _require_content(model)
    ctx = AuditContext(model, evidence, options)
    # Everything the user named must be usable before any link runs: a bad option is their
    # input error (exit 2), while unreadable *evidence* only makes a link unknown.
    ctx.trusted_keys()
    transparency.validate_options(options)
    safety.fail_on_severity(options)
    results: dict[str, LinkResult] = {}
    for name, check in _CHECKS.items():
        results[name] = _run(name, check, ctx)
    report = AuditReport(model, [results[n] for n in LINKS], options.require, evidence)
    report.manifest = _manifest_summary(ctx)
    report.bom = _bom_summary(ctx, results["openness"])
    if report.bom and report.bom.get("matches_model") is False:
        results["openness"].details.append(
            f"the shipped BOM {report.bom.get('source')} describes other bytes (root digest "
            f"{report.bom.get('root_digest')}), not these files"
        )
    return report


def _require_content(model: Path) -> None:
    """An empty model is bad input (as for ``glassbox digest``), not something to grade."""
    if model.is_file():
        return
    for _dirpath, _dirs, files in os.walk(model, followlinks=False):
        if files:
            return
    raise InputError(f"model {model} has no files to audit")


def _run(name: str, check: Callable[[AuditContext], LinkResult], ctx: AuditContext) -> LinkResult:
    try:
        return check(ctx)
    except VerificationError as exc:
        return LinkResult.fail(name, str(exc))
    except InputError as exc:
        return LinkResult.unknown(name, f"evidence could not be read: {exc}")
    except GlassboxError as exc:
        return LinkResult.unknown(name, f"could not be checked: {exc}")
    except ImportError as exc:
        return unavailable(name, _PARTS[name], str(exc))
    except Exception as exc:  # a bug in one part must not hide the verdicts of the others
        return LinkResult.unknown(
            name, f"{_PARTS[name]} failed unexpectedly: {type(exc).__name__}: {exc}"
        )


def _manifest_summary(ctx: AuditContext) -> dict[str, Any] | None:
    try:
        manifest = ctx.manifest()
    except GlassboxError:
        return None
    from glassbox.trust.locations import display_name

    return {
        "model_name": display_name(ctx.model),
        "root_digest": "sha256:" + manifest.root_digest.hex(),
        "hash_method": manifest.method.name,
        "files": len(manifest.file_digests()),
        "total_size": manifest.total_size,
        "verified": ctx.verified_manifest is not None,
    }


def _bom_summary(ctx: AuditContext, openness_result: LinkResult) -> dict[str, Any] | None:
    """What the model's ML-BOM says: the shipped one if present (checked against the files),
    else one generated now from the same evidence."""
    from dataclasses import replace

    from glassbox.bom.cyclonedx import build_bom, evaluation_metrics
    from glassbox.bom.provenance import bom_inputs_from_provenance

    try:
        manifest = ctx.manifest()
    except GlassboxError:
        return None
    root = "sha256:" + manifest.root_digest.hex()
    shipped = ctx.evidence.first("bom")
    if shipped is not None:
        doc = shipped.document
        summary = summarise_bom(doc)
        summary["source"] = str(shipped.path)
        summary["matches_model"] = summary.get("root_digest") == root
        return summary
    weights_licence = _weights_licence(openness_result)
    inputs = bom_inputs_from_provenance(ctx.provenance_statement, licence=weights_licence)
    inputs = replace(inputs, metrics=(*inputs.metrics, *evaluation_metrics(ctx.model)))
    inputs = replace(inputs, lineage=_lineage_datasets(ctx))
    from glassbox.trust.locations import display_name

    try:
        # A cache snapshot's directory is a bare commit: the BOM names it org/name@commit.
        doc = build_bom(replace(manifest, model_name=display_name(ctx.model)), inputs)
    except GlassboxError as exc:
        return {"source": "generated", "error": str(exc)}
    summary = summarise_bom(doc)
    summary["source"] = "generated by this audit (glassbox bom writes it to a file)"
    summary["matches_model"] = True
    return summary


def _lineage_datasets(ctx: AuditContext) -> tuple[Any, ...]:
    """The pipeline datasets the provenance link walked (``glassbox.pipeline.lineage``)."""
    from glassbox.bom.cyclonedx import lineage_datasets

    lineage = ctx.lineage
    if not lineage:
        return ()
    return lineage_datasets(lineage.get("datasets", []))


def _weights_licence(result: LinkResult) -> str | None:
    for component in result.evidence.get("mof", {}).get("components", []):
        if component.get("name") == "Model parameters (Final)":
            licence = component.get("license")
            return licence if isinstance(licence, str) else None
    return None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def summarise_bom(doc: Any) -> dict[str, Any]:
    """Counts and key facts of a CycloneDX document, for the report (any JSON is tolerated:
    a shipped BOM is untrusted input)."""
    if not isinstance(doc, dict):
        return {"error": "not a JSON object"}
    components = _dicts(doc.get("components"))
    by_type: dict[str, int] = {}
    for component in components:
        kind = str(component.get("type"))
        by_type[kind] = by_type.get(kind, 0) + 1
    model = next((c for c in components if c.get("type") == "machine-learning-model"), {})
    props = {str(p.get("name")): p.get("value") for p in _dicts(model.get("properties"))}
    licences = []
    for entry in _dicts(model.get("licenses")):
        licence = entry.get("license")
        licence = licence if isinstance(licence, dict) else {}
        value = licence.get("id") or licence.get("name") or entry.get("expression")
        if isinstance(value, str):
            licences.append(value)
    root = props.get("glassbox:oms:root-digest")
    return {
        "spec_version": _text(doc.get("specVersion")),
        "serial_number": _text(doc.get("serialNumber")),
        "model": _text(model.get("name")),
        "root_digest": _text(root),
        "licences": licences,
        "files": len(_dicts(model.get("components"))) or (1 if model.get("hashes") else 0),
        "components_by_type": dict(sorted(by_type.items())),
        "datasets": [str(c.get("name")) for c in components if c.get("type") == "data"],
        "model_card_section": "modelCard" in model,
        "metrics": _metrics(model.get("modelCard")),
    }


def _metrics(card: Any) -> dict[str, str]:
    analysis = card.get("quantitativeAnalysis") if isinstance(card, dict) else None
    found = _dicts(analysis.get("performanceMetrics")) if isinstance(analysis, dict) else []
    return {str(m.get("type")): str(m.get("value")) for m in found}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
