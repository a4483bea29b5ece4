"""``glassbox probe MODEL --suite FILE`` runs a behaviour probe suite (and, with ``--key``,
signs the results as an in-toto attestation); ``glassbox probe diff OLD NEW --suite FILE``
reports behaviour drift between two versions (models or probe attestations).

Exit codes: ``probe``: 0 done (1 when ``--repeat`` found nondeterministic probes);
``probe diff``: 0 no drift, 1 drift reported or an attestation does not verify; 2 bad usage
or unreadable input."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from glassbox.cli._common import emit_json, guarded, progress
from glassbox.cli.keys import passphrase_from_env

if TYPE_CHECKING:
    from glassbox.lm.suite import Suite


class _DefaultRun(click.Group):
    """``glassbox probe MODEL ...`` means ``glassbox probe run MODEL ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("probe", cls=_DefaultRun)
def probe() -> None:
    """Run behaviour probes on a causal LM (probe MODEL --suite FILE) or compare two
    versions (probe diff OLD NEW --suite FILE)."""


def _short(text: str, width: int = 48) -> str:
    text = repr(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _render_result(r: dict[str, Any]) -> str:
    head = f"  {r['id']:28} {r['check']:8}"
    if r["check"] == "logprob":
        parts = ", ".join(f"{_short(c, 24)}: {v:.3f}" for c, v in r["logprobs"].items())
        return f"{head} {parts}"
    if r.get("mode") == "sample":
        line = f"{head} {r['matches']}/{r['samples']} matched (seed {r['seed']})"
    else:
        line = f"{head} {'MATCH' if r['matched'] else 'no   '} {_short(r['answer'])}"
    if r.get("nondeterministic"):
        line += "  [nondeterministic]"
    return line


def _run_models(path: Path, suite: Suite, repeat: int, show: bool) -> dict[str, Any]:
    from glassbox.lm import run_suite

    total = len(suite.probes) * repeat
    with progress(f"probing {path.name}", total, enabled=show) as bar:
        run = run_suite(path, suite, repeat=repeat, progress=bar.advance)
    from glassbox.lm.probe_attest import model_root_digest, probe_predicate

    root, _ = model_root_digest(path)
    return probe_predicate(run, root)


@probe.command("run")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--suite",
    "suite_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The probe suite (TOML, schema 1).",
)
@click.option(
    "--repeat",
    default=1,
    show_default=True,
    type=click.IntRange(1, 10),
    help="Run the suite this many times and name the probes whose results differ.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Sign the results as an in-toto attestation with this private key (PEM).",
)
@click.option(
    "--passphrase-env", metavar="VAR", help="Environment variable holding the key's passphrase."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where --key writes the attestation (default: MODEL.probe.sigstore.json).",
)
@guarded
def run(
    model: Path,
    suite_path: Path,
    repeat: int,
    as_json: bool,
    key_path: Path | None,
    passphrase_env: str | None,
    out: Path | None,
) -> None:
    """Run the probe suite FILE on MODEL (greedy; sampled probes with their declared seed)."""
    from glassbox.errors import InputError
    from glassbox.lm import attest_probes, load_suite, run_suite

    if out is not None and key_path is None:
        raise click.UsageError("--out only applies with --key")
    if not model.exists():
        raise InputError(f"{model}: model not found")
    suite = load_suite(suite_path)
    key = None
    if key_path is not None:
        from glassbox.sign import load_private_key

        key = load_private_key(key_path, passphrase_from_env(passphrase_env))
    with progress(f"probing {model.name}", len(suite.probes) * repeat, enabled=not as_json) as bar:
        result = run_suite(model, suite, repeat=repeat, progress=bar.advance)
    if key is not None:
        from glassbox.sign import write_bundle

        target = out or model.with_name(model.name.rstrip("/") + ".probe.sigstore.json")
        write_bundle(attest_probes(result, key), target)
        click.echo(f"attestation written to {target}", err=True)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(f"model: {model}")
        click.echo(f"suite: {suite.name} (sha256:{suite.digest[:16]}…, {len(suite.probes)} probes)")
        for r in result.results:
            click.echo(_render_result(r))
        if repeat > 1:
            bad = result.nondeterministic
            click.echo(
                f"determinism: {repeat} runs, "
                + (f"nondeterministic: {', '.join(bad)}" if bad else "all results identical")
            )
    if result.nondeterministic:
        raise SystemExit(1)


def _side(path: Path, suite: Suite, pub_path: Path | None, show: bool) -> dict[str, Any]:
    """A probe predicate for one side of a diff: an attestation file or a model run now."""
    from glassbox.errors import InputError

    if not path.exists():
        raise InputError(f"{path}: not found")
    if path.is_file() and path.name.endswith(".json"):
        from glassbox.lm.probe_attest import read_probe_attestation, verify_probe_attestation

        if pub_path is not None:
            from glassbox.sign import load_public_key

            predicate = verify_probe_attestation(path, load_public_key(pub_path))
        else:
            predicate = read_probe_attestation(path)
        digest = predicate.get("suite", {}).get("digest", {}).get("sha256")
        if digest != suite.digest:
            raise InputError(
                f"{path}: attestation was made with another suite (sha256 {str(digest)[:16]}…, "
                f"{suite.source} is {suite.digest[:16]}…)"
            )
        return predicate
    return _run_models(path, suite, 1, show)


@probe.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--suite",
    "suite_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The probe suite both sides are (or were) run with.",
)
@click.option(
    "--pub",
    "pub_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Verify attestations given as OLD/NEW with this public key (PEM).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the drift report as JSON.")
@guarded
def diff(old: Path, new: Path, suite_path: Path, pub_path: Path | None, as_json: bool) -> None:
    """Report behaviour drift from OLD to NEW (model directories or probe attestations)."""
    from glassbox.lm import diff_runs, load_suite

    suite = load_suite(suite_path)
    a = _side(old, suite, pub_path, not as_json)
    b = _side(new, suite, pub_path, not as_json)
    report = diff_runs(a, b, logprob_tolerance=suite.logprob_tolerance, alpha=suite.alpha)
    report["old"], report["new"] = str(old), str(new)
    if as_json:
        emit_json(report)
    else:
        click.echo(f"old:   {old}\nnew:   {new}\nsuite: {suite.name}")
        if not report["changes"]:
            click.echo("no drift: every probe gives the same result")
        for c in report["changes"]:
            p = f", p={c['pValue']}" if "pValue" in c else ""
            where = f"{c['topic']} ({c['probe']})"
            click.echo(f"  {c['kind']:20} {where:28} size {c['size']:+.3f}{p}  {c['detail']}")
        for kind, names in report["summary"].items():
            click.echo(f"{kind}: {', '.join(names)}")
    if report["changes"]:
        raise SystemExit(1)
