"""``glassbox pipeline run`` / ``rebuild`` and ``glassbox label sign``: thin commands over
``glassbox.pipeline``'s pipelines and labelling attestations."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from glassbox.cli._common import emit_json, guarded
from glassbox.cli.build import _key

_MARKS = {"start": "…", "reused": "=", "built": "✔", "failed": "✘", "skipped": "-"}


def _listener(enabled: bool) -> object:
    started: dict[str, float] = {}

    def listen(step: str, event: str, message: str) -> None:
        if not enabled:
            return
        if event == "start":
            started[step] = time.perf_counter()
            click.echo(f"  … {step:<14} {message}", err=True)
            return
        took = time.perf_counter() - started.get(step, time.perf_counter())
        line = f"  {_MARKS.get(event, '?')} {step:<14} {event} in {took:.1f} s"
        if message and event != "built":
            line += f": {message}"
        click.echo(line, err=True)

    return listen


@click.group()
def pipeline() -> None:
    """Run a pipeline of hermetic, provenance-bearing steps (data to model)."""


@pipeline.command("run")
@click.argument("pipeline_file", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output directory.")
@click.option("--key", type=click.Path(path_type=Path), help="Sign each step's provenance.")
@click.option("--passphrase-env", metavar="VAR", help="Environment variable with the passphrase.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--until", help="Run only this step and the steps it needs.")
@click.option("--force", is_flag=True, help="Run every step, even those up to date.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@guarded
def run(
    pipeline_file: Path,
    out: Path,
    key: Path | None,
    passphrase_env: str | None,
    jobs: int,
    until: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Run the steps of FILE that are out of date; reuse the others (and say so).

    Exit 0 when every step is built or reused, 1 when a step fails its checks.
    """
    from glassbox.pipeline.dag import run_pipeline

    result = run_pipeline(
        pipeline_file,
        out,
        key=_key(key, passphrase_env),
        jobs=jobs,
        force=force,
        until=until,
        listener=_listener(not as_json),  # type: ignore[arg-type]
    )
    if as_json:
        emit_json(result.to_dict())
    else:
        built = sum(r.status == "built" for r in result.results.values())
        reused = sum(r.status == "reused" for r in result.results.values())
        click.echo(
            f"{built} built, {reused} reused, {len(result.failed)} failed, "
            f"{len(result.skipped)} skipped in {result.seconds:.1f} s; lock: "
            f"{result.out_dir / 'pipeline.lock.json'}"
        )
        for name, error in result.failed.items():
            click.echo(f"error: step {name}: {error}", err=True)
    if not result.ok:
        sys.exit(1)


@pipeline.command("rebuild")
@click.argument("pipeline_file", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The recorded run.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@guarded
def rebuild(pipeline_file: Path, out: Path, jobs: int, as_json: bool) -> None:
    """Re-run every step of FILE from scratch and compare with the run in --out, bit for bit.

    Exit 0 when every step's outputs are identical, 1 naming the first step that differs.
    """
    from glassbox.pipeline.dag import rebuild_pipeline

    report = rebuild_pipeline(pipeline_file, out, jobs=jobs, listener=_listener(not as_json))  # type: ignore[arg-type]
    if as_json:
        emit_json(report.to_dict())
    else:
        for row in report.steps:
            extra = f" ({', '.join(row['files'])})" if row.get("files") else ""
            click.echo(f"  {row['step']:<14} {row['verdict']}{extra}")
        if report.identical:
            click.echo("every step rebuilt bit for bit")
        else:
            first = report.first_difference or {}
            click.echo(f"first difference: step {first.get('step')} ({first.get('verdict')})")
    if not report.identical:
        sys.exit(1)


@click.group()
def label() -> None:
    """Sign label decisions (one attestation per labeller per batch)."""


@label.command("sign")
@click.argument("decisions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--labeller", required=True, help="Your name, as in the pipeline's [labellers].")
@click.option("--key", required=True, type=click.Path(path_type=Path), help="Your private key.")
@click.option("--passphrase-env", metavar="VAR", help="Environment variable with the passphrase.")
@click.option(
    "--dataset",
    required=True,
    type=click.Path(path_type=Path),
    help="The dataset you labelled (its commitment is what you sign about).",
)
@click.option("--batch", help="Batch name (default: the decisions file's name).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@guarded
def sign(
    decisions: Path,
    labeller: str,
    key: Path,
    passphrase_env: str | None,
    dataset: Path,
    batch: str | None,
    out: Path,
) -> None:
    """Sign LABELLER's decisions in DECISIONS (CSV/JSONL of id, label, labeller)."""
    from glassbox.digest import commit_dataset
    from glassbox.pipeline.labels import sign_labels
    from glassbox.sign import write_bundle

    root = commit_dataset(dataset).root.hex()
    bundle = sign_labels(
        decisions, labeller, _key(key, passphrase_env), dataset_root=root, batch=batch
    )
    write_bundle(bundle, out)
    click.echo(f"signed {labeller}'s decisions about dataset {root[:16]}…: {out}")
