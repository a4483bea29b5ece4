"""Openness: the release's MOF v1.0 class and OSAID 1.0 conformance, from ``glassbox.bom``.

Pass means at least MOF Class III (every Class III component released under an open licence).
Fail means the evidence shows it is not open (open weights alone, or a restrictive licence).
Unknown means the licence of the weights could not be found at all.
"""

from __future__ import annotations

from glassbox.audit.context import AuditContext
from glassbox.audit.verdict import LinkResult, Verdict
from glassbox.bom import Release, assess_openness
from glassbox.bom.provenance import release_from_provenance

LINK = "openness"


def check(ctx: AuditContext) -> LinkResult:
    mof = ctx.evidence.first("mof")
    extra: Release | None = None
    if ctx.provenance_statement is not None:
        extra = release_from_provenance(ctx.provenance_statement)
    report = assess_openness(ctx.model, mof_yaml=mof.path if mof else None, extra=extra)
    verdict = Verdict(report.verdict)
    result = LinkResult(LINK, verdict, report.headline, report.to_dict())
    if report.missing:
        result.details.append("missing for the next class: " + "; ".join(report.missing))
    result.details.extend(report.release.notes)
    return result
