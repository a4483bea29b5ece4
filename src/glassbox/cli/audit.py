"""``glassbox audit MODEL``: walk the whole chain and report, link by link, what holds."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from glassbox.audit.context import DEFAULT_REQUIRE, require_choices
from glassbox.audit.verdict import LINKS
from glassbox.cli._common import MODEL_PATH, emit_json, guarded, progress
from glassbox.errors import InputError

_EVIDENCE_OPTIONS = (
    ("signature", "signature"),
    ("provenance", "provenance"),
    ("proof", "log-proof"),
    ("scan_attestation", "scan"),
    ("probe_attestation", "probe"),
    ("bom_file", "bom"),
    ("recipe", "recipe"),
    ("mof", "mof"),
)


@click.command(name="audit")
@click.argument("model", type=MODEL_PATH)
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
    "--probe-attestation",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Behaviour probe attestation (glassbox probe --key).",
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
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Trust policy (TOML): integrity names the publisher it matched (or says the key is "
    "unknown); its publishers, logs, witnesses and fail-on level are trusted and used.",
)
@click.option(
    "--name",
    "model_name",
    default=None,
    metavar="NAME",
    help="With --policy: the model name its publisher patterns match (default: the Hugging "
    "Face repository id of a cache snapshot, else the directory name).",
)
@click.option(
    "--require",
    "require",
    default=",".join(n for n in LINKS if n in DEFAULT_REQUIRE),
    show_default=True,
    help=f"Links that must pass for exit 0, comma-separated: {require_choices()}.",
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
    "--max-chain-depth",
    "chain_depth",
    type=click.IntRange(min=1, max=64),
    default=8,
    show_default=True,
    help="Base models a fine-tune chain may name, walked to its root, before it fails.",
)
@click.option(
    "--labeller",
    "labellers",
    multiple=True,
    metavar="NAME=KEY",
    help="A labeller you trust, with their public key (pipeline lineage); repeatable. Labels "
    "signed by anyone else are findings.",
)
@click.option(
    "--fail-on",
    default=None,
    help="Scan severity that fails (default: the policy's fail-on, else high).",
)
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
    policy_path: Path | None,
    model_name: str | None,
    require: str,
    rebuild: bool,
    spot_check: int | None,
    chain_depth: int,
    labellers: tuple[str, ...],
    fail_on: str | None,
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
    from glassbox.audit.report_html import check_html_target, write_html
    from glassbox.audit.report_terminal import render

    if html is not None:
        check_html_target(html)  # before hashing: a bad path must not cost the whole audit
    evidence = {kind: list(named[opt]) for opt, kind in _EVIDENCE_OPTIONS if named.get(opt)}
    policy = None
    if policy_path is not None:
        from glassbox.trust.policy import load_policy

        policy = load_policy(policy_path)
    elif model_name is not None:
        raise InputError("--name needs --policy")
    if fail_on is None:
        fail_on = str(policy.fail_on) if policy is not None else "high"
    options = AuditOptions(
        policy=policy,
        model_name=model_name,
        keys=keys,
        evidence=evidence,
        log=log,
        log_keys=log_keys,
        witness_policy=witness_policy,
        require=parse_require(require),
        rebuild=rebuild,
        spot_check=spot_check,
        chain_depth=chain_depth,
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
