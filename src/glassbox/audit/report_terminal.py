"""The terminal report: one compact, coloured row per link, then what did not hold and why.

Unknown is drawn in red like a failure (DESIGN: missing evidence is never silently skipped),
but labelled differently, because "we could not tell" and "this is wrong" call for different
actions.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from glassbox.audit.engine import AuditReport
from glassbox.audit.verdict import LINK_TITLES, Verdict

STYLE = {Verdict.PASS: "bold green", Verdict.FAIL: "bold red", Verdict.UNKNOWN: "bold red3"}
MARK = {Verdict.PASS: "✔ PASS", Verdict.FAIL: "✘ FAIL", Verdict.UNKNOWN: "? UNKNOWN"}


def render(report: AuditReport, console: Console | None = None) -> None:
    """Print the report to ``console`` (stdout by default)."""
    console = console or Console()
    console.print(Text.assemble(("Glassbox audit ", "bold"), (str(report.model), "cyan")))
    if report.manifest:
        m = report.manifest
        console.print(
            f"  {m['files']} files, {m['total_size']} bytes, root {m['root_digest'][:23]}…"
            f" ({m['hash_method']})"
        )
    table = Table(show_header=True, header_style="bold", expand=False, pad_edge=False)
    table.add_column("link")
    table.add_column("verdict", no_wrap=True)
    table.add_column("req", justify="center")
    table.add_column("evidence")
    for link in report.links:
        table.add_row(
            LINK_TITLES[link.link],
            Text(MARK[link.verdict], style=STYLE[link.verdict]),
            "●" if link.link in report.required else "○",
            link.summary,
        )
    console.print(table)
    for link in report.links:
        if link.verdict is Verdict.PASS or not link.details:
            continue
        console.print(Text(f"{LINK_TITLES[link.link]}:", style=STYLE[link.verdict]))
        for line in link.details[:8]:
            console.print(f"  - {line}", highlight=False)
    overall = report.overall
    required = ", ".join(n for n in LINK_TITLES if n in report.required) or "nothing"
    console.print(
        Text.assemble(
            ("Verdict: ", "bold"),
            (MARK[overall], STYLE[overall]),
            (f"  (required: {required}; exit {report.exit_code})", "dim"),
        )
    )
