"""Static model-file scanner: finds malicious payloads without executing anything.

Formats are detected by content and containers are walked recursively; pickles are run through
a symbolic opcode interpreter and every callable is checked against a reviewed allowlist.
Behavioural (backdoor/poisoning) detectors live in ``glassbox.scan.behavior``.
"""

from glassbox.scan.allowlist import AllowEntry, load_allowlist, parse_allowlist
from glassbox.scan.attest import SCAN_PREDICATE_TYPE, attest_scan, scan_statement
from glassbox.scan.callables import Verdict, classify
from glassbox.scan.context import Limits
from glassbox.scan.findings import Finding, Severity
from glassbox.scan.report import ScanReport, render_text, to_sarif
from glassbox.scan.rules import RULES, Rule
from glassbox.scan.scanner import scan_path

__all__ = [
    "RULES",
    "SCAN_PREDICATE_TYPE",
    "AllowEntry",
    "Finding",
    "Limits",
    "Rule",
    "ScanReport",
    "Severity",
    "Verdict",
    "attest_scan",
    "classify",
    "load_allowlist",
    "parse_allowlist",
    "render_text",
    "scan_path",
    "scan_statement",
    "to_sarif",
]
