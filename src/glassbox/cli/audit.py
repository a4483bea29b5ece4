"""``glassbox audit MODEL``: walk the whole chain and report, link by link, what holds."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from glassbox.cli._common import emit_json, guarded, progress

_EVIDENCE_OPTIONS = (
    ("signature", "signature"),
    ("provenance", "provenance"),
    ("proof", "log-proof"),
    ("scan_attestation", "scan"),
    ("bom_file", "bom"),
    ("recipe", "recipe"),
    ("mof", "mof"),
)


@click.command(name="audit")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Trusted producer public key (PEM); repeat for several.",
)
@click.option(
    "--signature", multiple=True, type=click.Path(path_type=Path), help="OMS signature bundle."
)
@click.option(
    "--provenance", multiple=True, type=click.Path(path_type=Path), help="SLSA provenance."
)
@click.option("--proof", multiple=True, type=click.Path(path_type=Path), help="Log proof bundle.")
@click.option(
    "--scan-attestation", multiple=True, type=click.Path(path_type=Path), help="Scan attestation."
)
@click.option(
    "--bom", "bom_file", multiple=True, type=click.Path(path_type=Path), help="CycloneDX BOM."
)
@click.option(
    "--recipe", multiple=True, type=click.Path(path_type=Path), help="Recipe (for --rebuild)."
)
@click.option("--mof", multiple=True, type=click.Path(path_type=Path), help="MOF YAML file.")
@click.option(
    "--log", "log", default=None, help="Search a log: 'embedded' (this machine's) or a URL."
)
@click.option(
    "--log-key",
    "log_keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Trusted log verifier key (vkey file); this machine's embedded log is always trusted.",
)
@click.option(
    "--witness-policy",
    type=click.Path(path_type=Path),
    default=None,
    help='JSON {"k": N, "witnesses": [vkey, ...]}: cosignatures a checkpoint needs.',
)
@click.option(
    "--require",
    "require",
    default="integrity,transparency,provenance,safety",
    show_default=True,
    help="Links that must pass for exit 0 (signature, log, provenance, scan, openness, all).",
)
@click.option("--rebuild", is_flag=True, help="Rebuild from the provenance and compare bytes.")
@click.option(
    "--spot-check",
    "spot_check",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Replay K random segments of the training trail.",
)
@click.option(
    "--labeller",
    "labellers",
    multiple=True,
    metavar="NAME=KEY",
    help="A labeller you trust, with their public key (pipeline lineage); repeatable. Labels "
    "signed by anyone else are findings.",
)
@click.option("--fail-on", default="high", show_default=True, help="Scan severity that fails.")
@click.option("--no-scan", is_flag=True, help="Do not run the scanner when no attestation.")
@click.option("--behavior", is_flag=True, help="Also run the behavioural (backdoor) scan.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (versioned).")
@click.option(
    "--html",
    "html",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a self-contained HTML report to this file.",
)
@guarded
def audit(
    model: Path,
    keys: tuple[Path, ...],
    log: str | None,
    log_keys: tuple[Path, ...],
    witness_policy: Path | None,
    require: str,
    rebuild: bool,
    spot_check: int | None,
    labellers: tuple[str, ...],
    fail_on: str,
    no_scan: bool,
    behavior: bool,
    as_json: bool,
    html: Path | None,
    **named: tuple[Path, ...],
) -> None:
    """Audit MODEL: integrity, transparency, provenance, safety and openness, with evidence.

    Exit 0 when every required link passes; 1 when one fails or is unknown; 2 on bad usage.
    """
    from glassbox.audit import AuditOptions, audit_model, parse_require
    from glassbox.audit.report_html import write_html
    from glassbox.audit.report_terminal import render

    evidence = {kind: list(named[opt]) for opt, kind in _EVIDENCE_OPTIONS if named.get(opt)}
    options = AuditOptions(
        keys=keys,
        evidence=evidence,
        log=log,
        log_keys=log_keys,
        witness_policy=witness_policy,
        require=parse_require(require),
        rebuild=rebuild,
        spot_check=spot_check,
        fail_on=fail_on,
        scan_now=not no_scan,
        behavior=behavior,
        labellers=_labellers(labellers),
    )
    with progress("verifying", _size_of(model), enabled=not as_json) as bar:
        options.progress = bar.advance
        report = audit_model(model, options)
    if html is not None:
        write_html(report, html)
    if as_json:
        emit_json(report.to_dict())
    else:
        render(report)
        if html is not None:
            click.echo(f"HTML report: {html}")
    sys.exit(report.exit_code)


def _labellers(values: tuple[str, ...]) -> dict[str, Path]:
    out = {}
    for value in values:
        name, sep, key = value.partition("=")
        if not sep or not name or not key:
            raise click.UsageError(f"--labeller {value!r}: write NAME=PUBLIC_KEY_FILE")
        out[name] = Path(key)
    return out


def _size_of(model: Path) -> int | None:
    """Bytes the audit will hash, for the progress bar (a best effort; never follows links)."""
    if model.is_file():
        return model.stat().st_size
    if not model.is_dir():
        return None
    total = 0
    for dirpath, _dirs, files in os.walk(model, followlinks=False):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).lstat().st_size
    return total
