"""``glassbox build``, ``rebuild`` and ``spot-check``: thin commands over ``glassbox.pipeline``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from glassbox.cli._common import emit_json, guarded
from glassbox.pipeline.recipe import CPU_CAPABILITIES


def _key(path: Path | None, passphrase_env: str | None) -> Any:
    if path is None:
        return None
    from glassbox.cli.keys import passphrase_from_env
    from glassbox.sign import load_private_key

    return load_private_key(path, passphrase_from_env(passphrase_env))


@click.command("build")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output directory (new or empty).",
)
@click.option(
    "--key",
    type=click.Path(path_type=Path),
    help="Sign the provenance with this private key (PEM).",
)
@click.option(
    "--passphrase-env",
    metavar="VAR",
    help="Read the private key's passphrase from environment variable VAR.",
)
@click.option(
    "--strict", is_flag=True, help="Fail if the training reads or writes undeclared files."
)
@click.option(
    "--keep-checkpoints", is_flag=True, help="Keep trail checkpoints (needed for spot-check)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@guarded
def build(
    recipe: Path,
    out: Path,
    key: Path | None,
    passphrase_env: str | None,
    strict: bool,
    keep_checkpoints: bool,
    as_json: bool,
) -> None:
    """Train the model RECIPE declares, hermetically, and write it with SLSA provenance."""
    from glassbox.pipeline import build as run_build

    result = run_build(
        recipe, out, key=_key(key, passphrase_env), strict=strict, keep_checkpoints=keep_checkpoints
    )
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(
        f"built {result.model_dir} in {result.seconds:.1f} s ({result.trail.total_steps} steps)"
    )
    for item in result.outputs.items:
        click.echo(f"  {item.digest.hex()}  {item.name}")
    click.echo(f"provenance: {result.statement_path}")
    if result.bundle_path:
        click.echo(f"signed:     {result.bundle_path}")
    herm = result.hermeticity
    if herm.hermetic:
        click.echo("hermetic: yes (no undeclared file access; network refused)")
    else:
        click.echo("hermetic: NO, undeclared file access:")
        for path in [*herm.undeclared_reads, *herm.undeclared_writes]:
            click.echo(f"  {path}")
    click.echo(
        f"pinned: threads={result.environment.get('threads')} "
        f"kernel={result.environment.get('cpu_capability')} torch={result.environment.get('torch')}"
    )


@click.command("rebuild")
@click.argument("provenance", type=click.Path(path_type=Path))
@click.option(
    "--recipe-dir",
    type=click.Path(path_type=Path),
    help="Where the recipe's code and data are (default: as recorded).",
)
@click.option(
    "--pub",
    "pub",
    type=click.Path(path_type=Path),
    help="Verify the provenance signature with this public key.",
)
@click.option(
    "--threads",
    type=int,
    help="Override the recorded thread count (comparison becomes tolerance-based).",
)
@click.option(
    "--cpu-capability",
    type=click.Choice(CPU_CAPABILITIES),
    help="Override the recorded ATEN_CPU_CAPABILITY (tolerance-based).",
)
@click.option(
    "--atol",
    type=float,
    default=1e-5,
    show_default=True,
    help="Absolute tolerance when the environment differs.",
)
@click.option(
    "--rtol",
    type=float,
    default=1e-4,
    show_default=True,
    help="Relative tolerance when the environment differs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@guarded
def rebuild(
    provenance: Path,
    recipe_dir: Path | None,
    pub: Path | None,
    threads: int | None,
    cpu_capability: str | None,
    atol: float,
    rtol: float,
    as_json: bool,
) -> None:
    """Rebuild the model PROVENANCE describes and compare it bit for bit.

    This runs the recipe's training code (from --recipe-dir, or the recorded directory) in the
    same pinned, network-refused child process a build uses. Exit 0: bit-identical, or within
    tolerance when the environment could not be matched (reported as weaker); 1 otherwise.
    """
    from glassbox.pipeline import rebuild as run_rebuild

    report = run_rebuild(
        provenance,
        recipe_dir=recipe_dir,
        public_key=pub,
        threads=threads,
        cpu_capability=cpu_capability,
        atol=atol,
        rtol=rtol,
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        strength = "" if report.exact else " (tolerance comparison: WEAKER than bit-identical)"
        click.echo(f"rebuild: {report.verdict}{strength}")
        click.echo(f"signature: {report.signature}")
        click.echo(f"pinned: threads={report.threads} kernel={report.cpu_capability}")
        for change in report.input_changes:
            click.echo(f"  input changed: {change}")
        for diff in report.environment_differences:
            click.echo(f"  environment differs: {diff}")
        div = report.first_divergence
        if div:
            click.echo(f"  first diverging checkpoint: step {div['step']} ({div.get('reason')})")
            if "divergence" in div:
                size = div["divergence"]
                click.echo(
                    f"    max |Δw| = {size['max_abs_diff']:.3g}, "
                    f"relative L2 = {size['relative_l2']:.3g}"
                )
        for name, status in report.outputs.items():
            click.echo(f"  output {name}: {status}")
        if report.tolerance:
            click.echo(
                f"  tolerance: atol={report.tolerance['atol']} rtol={report.tolerance['rtol']}"
            )
        for note in report.notes:
            click.echo(f"  note: {note}")
    if not report.ok:
        raise SystemExit(1)


@click.command("spot-check")
@click.argument("provenance", type=click.Path(path_type=Path))
@click.option(
    "--segments", "-k", type=int, required=True, help="How many trail segments to replay."
)
@click.option(
    "--seed", type=int, help="Verifier's seed for choosing segments (default: random, reported)."
)
@click.option(
    "--checkpoints", type=click.Path(path_type=Path), help="Directory of stored checkpoints."
)
@click.option(
    "--recipe-dir", type=click.Path(path_type=Path), help="Where the recipe's code and data are."
)
@click.option(
    "--pub",
    "pub",
    type=click.Path(path_type=Path),
    help="Verify the provenance signature with this public key.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@guarded
def spot_check(
    provenance: Path,
    segments: int,
    seed: int | None,
    checkpoints: Path | None,
    recipe_dir: Path | None,
    pub: Path | None,
    as_json: bool,
) -> None:
    """Replay random segments of PROVENANCE's checkpoint trail and check their end states."""
    from glassbox.pipeline import spot_check as run_spot_check

    report = run_spot_check(
        provenance,
        segments=segments,
        seed=seed,
        checkpoints_dir=checkpoints,
        recipe_dir=recipe_dir,
        public_key=pub,
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        verdict = "passed" if report.passed else "FAILED"
        click.echo(
            f"spot-check {verdict}: {len(report.checks)} of {report.segments_total} segments "
            f"(seed {report.seed}), {report.compute_fraction:.1%} of training steps replayed"
        )
        if report.initial_state_checked:
            click.echo("  ok   step 0: initial state re-derived from the recipe matches the trail")
        for check in report.checks:
            mark = "ok  " if check.passed else "FAIL"
            click.echo(f"  {mark} steps {check.start}-{check.stop}: {check.reason}")
        for problem in report.problems:
            click.echo(f"  problem: {problem}")
        for diff in report.environment_differences:
            click.echo(f"  environment differs: {diff}")
    if not report.passed:
        raise SystemExit(1)
