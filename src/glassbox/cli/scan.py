"""``glassbox scan PATH``: static scan of model files, optionally a behavioural (backdoor) scan,
optionally a signed attestation of the result. Exit 0 when no finding reaches ``--fail-on``,
1 when one does, 2 on bad usage or unreadable input."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from glassbox.cli._common import MODEL_PATH, emit_json, guarded, progress
from glassbox.cli.keys import passphrase_from_env
from glassbox.errors import InputError

_SEVERITIES = ["critical", "high", "medium", "low", "info"]


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(directory) / name).lstat().st_size
            except OSError:
                continue
    return total


def _behavior_findings(
    path: Path,
    data: str | None,
    arch: str | None,
    reference: Path | None,
    trigger_dir: Path | None,
    data_keys: str | None = None,
    clean: str | None = None,
    input_shape: str | None = None,
    base: Path | None = None,
    modality: str | None = None,
) -> list[Any]:
    from glassbox.lm.trigger import is_causal_lm

    if arch is None and is_causal_lm(path):
        return _lm_findings(path, data, reference, trigger_dir, data_keys, clean, input_shape, base)
    if base is not None:
        raise click.UsageError("--base: only for a causal LM (a classifier takes --reference)")
    try:
        module = importlib.import_module("glassbox.scan.behavior")
    except ModuleNotFoundError as exc:
        raise InputError(
            f"--behavior is not available: {exc.name or 'glassbox.scan.behavior'} is not "
            "installed (the behavioural scanner needs the 'ml' extra)"
        ) from exc
    shape: tuple[int, ...] | None = None
    if input_shape is not None:
        try:
            shape = tuple(int(v) for v in input_shape.split(","))
        except ValueError:
            raise InputError(f"--input-shape {input_shape!r}: expected sizes like 1,8,8") from None
        if not shape or min(shape) < 1:
            raise InputError(f"--input-shape {input_shape!r}: sizes must be positive")
    # The newer options are passed only when given, so the call stays the one older scanners take.
    extra = {"data_keys": data_keys, "clean": clean, "input_shape": shape, "modality": modality}
    findings: list[Any] = module.scan_behavior(
        path,
        data=data,
        arch=arch,
        reference=reference,
        trigger_dir=trigger_dir,
        **{k: v for k, v in extra.items() if v is not None},
    )
    return findings


def _lm_findings(
    path: Path,
    data: str | None,
    reference: Path | None,
    trigger_dir: Path | None,
    data_keys: str | None,
    clean: str | None,
    input_shape: str | None,
    base: Path | None = None,
) -> list[Any]:
    """A causal LM: the hidden-trigger search, over the ``--clean`` prompts when given, with
    a differential analysis against ``--base`` or, without it, against the base model its
    provenance declares when that base is here with the declared digest."""
    unused = {
        "--data": data,
        "--data-keys": data_keys,
        "--input-shape": input_shape,
        "--reference": reference,
        "--trigger-dir": trigger_dir,
    }
    given = [name for name, value in unused.items() if value is not None]
    if given:
        raise click.UsageError(
            f"{', '.join(given)}: not used on a causal LM (its --behavior scan takes --clean "
            "PROMPTS: a probe suite, JSON lines with 'prompt', or one prompt per line)"
        )
    try:
        from glassbox.lm import scan_lm_behavior
    except ModuleNotFoundError as exc:
        raise InputError(
            f"--behavior on a language model needs {exc.name} (the 'lm' extra)"
        ) from None
    note = "given with --base"
    if base is None:
        from glassbox.audit.chain import declared_base_model

        base, note = declared_base_model(path)
        if base is not None:
            click.echo(f"differential analysis against the base {note}: {base}", err=True)
    with progress("trigger search", None, enabled=sys.stderr.isatty()) as bar:
        findings: list[Any] = scan_lm_behavior(
            path, prompts=clean, base=base, base_note=note, progress=bar.advance
        )
    return findings


def _print_rules(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--rules``: the stable rule catalogue (ids are a contract; see scan/rules.py)."""
    if not value or ctx.resilient_parsing:
        return
    from glassbox.scan import RULES

    for rule in RULES.values():
        click.echo(f"{rule.id:14} {rule.severity!s:8} {rule.title}")
    ctx.exit(0)


@click.command("scan")
@click.argument("path", type=MODEL_PATH)
@click.option(
    "--rules",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_rules,
    help="List the rule ids and their severities, then exit.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--fail-on",
    type=click.Choice(_SEVERITIES),
    default="high",
    show_default=True,
    help="Exit 1 when a finding is at least this severe.",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Parallel processes.")
@click.option(
    "--allow",
    "allow_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Reviewed allowlist entries (TOML: [[allow]] callable, reason). Admits callables the "
    "scanner does not know; never ones it knows are dangerous.",
)
@click.option("--attest", is_flag=True, help="Write a signed in-toto attestation of the result.")
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Private key (PEM) for --attest.",
)
@click.option(
    "--passphrase-env", metavar="VAR", help="Environment variable holding the key's passphrase."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where --attest writes the bundle (default: PATH.scan.sigstore.json beside PATH).",
)
@click.option(
    "--behavior",
    is_flag=True,
    help="Also probe the model for backdoors (needs torch): a classifier's trigger and "
    "poisoning detectors, or a causal LM's hidden-trigger search.",
)
@click.option(
    "--data",
    "data",
    metavar="DATASET",
    help="Training data for --behavior: JSONL/CSV/Parquet (committed), a directory of class "
    "folders of PNG/JPEG images (committed), .npy/.npz, or a PyTorch tensor file (read with "
    "weights_only=True).",
)
@click.option(
    "--data-keys",
    metavar="INPUTS,LABELS",
    help="Array names in an .npz or tensor file (default: x/y, inputs/labels, images/targets...).",
)
@click.option(
    "--clean",
    metavar="SAMPLE",
    help="Clean inputs for --behavior when there is no training data (labels optional); for "
    "a causal LM, clean prompts (a probe suite, JSON lines with 'prompt', or text lines).",
)
@click.option(
    "--input-shape",
    metavar="C,H,W",
    help="Input shape for --behavior without data, for a network that does not declare it.",
)
@click.option("--arch", metavar="MODULE:FUNCTION", help="Model architecture for --behavior.")
@click.option(
    "--modality",
    type=click.Choice(["auto", "image", "tabular"]),
    default=None,
    help="For --behavior: probe the data as images or as a table of features (per-feature "
    "scale); auto guesses from the data.",
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path, exists=True),
    metavar="MODEL",
    help="Clean reference model for --behavior (e.g. a rebuild from the declared sources); "
    "scores are calibrated against it.",
)
@click.option(
    "--trigger-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Write --behavior's reconstructed triggers here as PNG files.",
)
@click.option(
    "--base",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    metavar="MODEL",
    help="For --behavior on a causal LM: the model it was fine-tuned from, for a differential "
    "analysis (default: the base its provenance declares, when present with that digest).",
)
@guarded
def scan(
    path: Path,
    fmt: str,
    as_json: bool,
    fail_on: str,
    workers: int | None,
    allow_files: tuple[Path, ...],
    attest: bool,
    key_path: Path | None,
    passphrase_env: str | None,
    out: Path | None,
    behavior: bool,
    data: str | None,
    data_keys: str | None,
    clean: str | None,
    input_shape: str | None,
    arch: str | None,
    modality: str | None,
    reference: Path | None,
    trigger_dir: Path | None,
    base: Path | None,
) -> None:
    """Find malicious payloads in model files without executing them."""
    from glassbox.scan import (
        Severity,
        attest_scan,
        load_allowlist,
        render_text,
        scan_path,
        to_sarif,
    )

    if as_json:
        fmt = "json"
    if attest and key_path is None:
        raise click.UsageError("--attest needs --key KEY")
    if (out or key_path) and not attest:
        raise click.UsageError("--key and --out only apply with --attest")
    if (
        data
        or data_keys
        or clean
        or input_shape
        or arch
        or reference
        or trigger_dir
        or base
        or modality
    ) and not behavior:
        raise click.UsageError(
            "--data, --data-keys, --clean, --input-shape, --arch, --modality, --reference, "
            "--trigger-dir and --base only apply with --behavior"
        )
    if not path.exists() and not path.is_symlink():
        raise InputError(f"{path}: no such file or directory")
    if attest and out is None:
        from glassbox.digest.walk import hf_snapshot_repo

        if hf_snapshot_repo(path) is not None:
            # Beside a snapshot is the cache's snapshots/ folder: a file there corrupts it.
            raise click.UsageError(f"{path} is in a Hugging Face cache; give --out FILE")
    total = _tree_size(path) if fmt == "text" and sys.stderr.isatty() else None
    with progress("scanning", total, enabled=fmt == "text") as bar:
        allow = [entry for f in allow_files for entry in load_allowlist(f)]
        report = scan_path(path, workers=workers, progress=bar.advance, allow=allow)
    if behavior:
        report.merge(
            _behavior_findings(
                path,
                data,
                arch,
                reference,
                trigger_dir,
                data_keys,
                clean,
                input_shape,
                base,
                modality,
            )
        )
    if attest:
        from glassbox.sign import load_private_key, write_bundle

        assert key_path is not None
        key = load_private_key(key_path, passphrase_from_env(passphrase_env))
        bundle = attest_scan(report, key)
        target = out or path.with_name(path.name + ".scan.sigstore.json")
        write_bundle(bundle, target)
        click.echo(f"attestation written to {target}", err=True)
    if fmt == "json":
        emit_json(report.to_dict())
    elif fmt == "sarif":
        click.echo(json.dumps(to_sarif(report), indent=2, sort_keys=True))
    else:
        click.echo(render_text(report))
    if report.fails(Severity.parse(fail_on)):
        raise SystemExit(1)
