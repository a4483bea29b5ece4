"""The terminal report: one compact, coloured row per link, then what did not hold and why.

Unknown is drawn in red like a failure (DESIGN: missing evidence is never silently skipped),
but labelled differently, because "we could not tell" and "this is wrong" call for different
actions. A link the policy does not require and that did not pass is *advisory*: its own word in
a neutral colour, because it cannot fail the audit and must not look as if it had.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from glassbox.audit.engine import AuditReport
from glassbox.audit.verdict import LINK_TITLES, LinkResult, Verdict, is_advisory

STYLE = {Verdict.PASS: "bold green", Verdict.FAIL: "bold red", Verdict.UNKNOWN: "bold red3"}
MARK = {Verdict.PASS: "✔ PASS", Verdict.FAIL: "✘ FAIL", Verdict.UNKNOWN: "? UNKNOWN"}
ADVISORY_STYLE = "bold blue"
ADVISORY_MARK = "ℹ ADVISORY"


def _mark(link: LinkResult, required: frozenset[str]) -> Text:
    if is_advisory(link, required):
        # An advisory unknown still says unknown (missing evidence is never hidden), but in
        # the neutral colour: it cannot fail the audit either.
        mark = ADVISORY_MARK if link.verdict is Verdict.FAIL else MARK[link.verdict]
        return Text(mark, style=ADVISORY_STYLE)
    return Text(MARK[link.verdict], style=STYLE[link.verdict])


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
            _mark(link, report.required),
            "●" if link.link in report.required else "○",
            link.summary,
        )
    console.print(table)
    _print_chain(report, console)
    probes = report.link("safety").evidence.get("probes") or []
    if probes:
        from glassbox.audit.probes import describe

        console.print(Text("Behaviour probes:", style="bold"))
        for entry in probes:
            style = "green" if entry.get("used") else "red3"
            console.print(Text(f"  - {describe(entry)}", style=style))
    for link in report.links:
        if link.verdict is Verdict.PASS or not link.details:
            continue
        advisory = is_advisory(link, report.required)
        # The check's own verdict stays visible (an unknown is never hidden), in neutral colour.
        note = f" (advisory, {link.verdict.value})" if advisory else ""
        heading = f"{LINK_TITLES[link.link]}{note}:"
        console.print(Text(heading, style=ADVISORY_STYLE if advisory else STYLE[link.verdict]))
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


def _print_chain(report: AuditReport, console: Console) -> None:
    """The fine-tune chain the provenance link walked, one line per base model."""
    chain = next((lk.evidence.get("chain") for lk in report.links if lk.link == "provenance"), None)
    if not isinstance(chain, dict) or not isinstance(chain.get("levels"), list):
        return
    levels = [lv for lv in chain["levels"] if isinstance(lv, dict)]
    end = "to a pretrained root" if chain.get("reachesRoot") else "root not reached"
    console.print(Text(f"Fine-tune chain ({len(levels)} levels, {end}):", style="bold"))
    for level in levels:
        verdict = str(level.get("verdict"))
        style = {"pass": "green", "fail": "bold red"}.get(verdict, "red3")
        name = f"level {level.get('level')}" + (" (root)" if level.get("root") else "")
        lineage = level.get("lineage") if isinstance(level.get("lineage"), dict) else {}
        assert isinstance(lineage, dict)
        facts = [f"sha256:{str(level.get('declaredDigest'))[:16]}…"]
        signature = level.get("signature") if isinstance(level.get("signature"), dict) else {}
        assert isinstance(signature, dict)
        if signature.get("verified"):
            facts.append(f"signed by {str(signature.get('keyId'))[:16]}")
        if lineage.get("checked"):
            facts.append(f"lineage {lineage.get('verdict')} ({float(lineage['score']):.2f})")
        prov = level.get("provenance") if isinstance(level.get("provenance"), dict) else {}
        assert isinstance(prov, dict)
        if prov.get("keyId"):
            facts.append("provenance verified")
        line = Text(f"  {name}: ", style=style)
        line.append(f"{level.get('path')}  " + ", ".join(facts), style="default")
        if verdict != "pass":
            line.append(f"  {verdict}: {level.get('reason')}", style=style)
        console.print(line, highlight=False)
