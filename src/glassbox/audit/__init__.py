"""Audit a model link by link: integrity, transparency, provenance, safety, openness.

``audit_model`` gathers the evidence the other parts produce, asks each part's public API
whether it holds, and returns one verdict per link; the reports render that for a terminal,
for machines (a versioned JSON schema in ``docs/``) and as one self-contained HTML page.
"""

from glassbox.audit.context import DEFAULT_REQUIRE, AuditOptions, parse_require
from glassbox.audit.engine import SCHEMA_ID, SCHEMA_VERSION, AuditReport, audit_model
from glassbox.audit.evidence import Evidence, EvidenceFile, classify, discover
from glassbox.audit.quickstart import QuickstartResult, run_quickstart
from glassbox.audit.report_html import render_html, write_html
from glassbox.audit.report_terminal import render as render_terminal
from glassbox.audit.verdict import LINKS, LinkResult, Verdict

__all__ = [
    "DEFAULT_REQUIRE",
    "LINKS",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "AuditOptions",
    "AuditReport",
    "Evidence",
    "EvidenceFile",
    "LinkResult",
    "QuickstartResult",
    "Verdict",
    "audit_model",
    "classify",
    "discover",
    "parse_require",
    "render_html",
    "render_terminal",
    "run_quickstart",
    "write_html",
]
