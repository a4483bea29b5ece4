"""``glassbox quickstart``: build, sign, log, scan and audit the digits example end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from glassbox.cli._common import guarded


@click.command(name="quickstart")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path),
    default=Path("glassbox-quickstart"),
    show_default=True,
    help="Where to put the key, the release and the reports.",
)
@click.option(
    "--recipe",
    type=click.Path(path_type=Path),
    default=None,
    help="Recipe to build instead of examples/digits/recipe.toml.",
)
@guarded
def quickstart(workdir: Path, recipe: Path | None) -> None:
    """Build the digits example, sign it, log it, scan it, audit it; then tamper and re-audit.

    Needs no set-up: a fresh key and the embedded local log. Exit 0 when the honest release
    passes and the tampered copy is caught.
    """
    from rich.console import Console

    from glassbox.audit.quickstart import outcome_lines, run_quickstart
    from glassbox.audit.report_terminal import render

    console = Console()
    result = run_quickstart(
        workdir, recipe=recipe, say=lambda line: console.print(line, highlight=False)
    )
    console.rule("audit of the release")
    render(result.report, console)
    console.rule("audit of a tampered copy")
    render(result.tampered_report, console)
    console.rule()
    for line in outcome_lines(result):
        console.print(line, highlight=False)
    timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.steps)
    console.print(f"[dim]timings: {timings}[/dim]")
    sys.exit(0 if result.ok else 1)
