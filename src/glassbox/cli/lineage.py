"""``glassbox lineage CANDIDATE --base BASE`` (or ``--among DIR``): does the candidate's weights
derive from the base? Exit 0 derived; 1 not derived or inconclusive (the claim is not
established); 2 bad usage or unreadable input. With ``--among``, exit 0 when the best-ranked
model is a base the candidate derives from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from glassbox.cli._common import emit_json, guarded
from glassbox.cli.keys import passphrase_from_env

if TYPE_CHECKING:
    from glassbox.lm import LineageResult


def _render(result: LineageResult) -> str:
    lines = [
        f"candidate: {result.candidate}",
        f"base:      {result.base}",
        f"verdict:   {result.verdict.upper()}  (score {result.score:.3f}; derived at >= "
        f"{result.thresholds['derived']}, unrelated below {result.thresholds['unrelated']})",
        f"           {result.reason}",
    ]
    res = result.residual
    if res.get("solved"):
        lines.append(
            f"residual:  aligned from {res['from']} (score {res['score']:.3f}, "
            f"{res['coordinatesMoved']}/{res['width']} coordinates permuted)"
        )
    else:
        lines.append(f"residual:  not aligned: {res.get('note', '')}")
    lines.append("layers:")
    for layer in result.layers():
        name = "embeddings/head" if layer["layer"] is None else f"layer {layer['layer']}"
        detail = " ".join(f"{k}={v:.2f}" for k, v in sorted(layer["tensors"].items()))
        lines.append(f"  {name:16} {layer['score']:.3f}  {detail}")
    rep = result.representation
    if rep is not None:
        if rep.get("available"):
            lines.append(
                f"behaviour: mean CKA {rep['meanCka']:.3f}, next-token agreement "
                f"{rep.get('outputAgreement', 0.0):.3f}, top-1 agreement "
                f"{rep.get('top1Agreement', 0.0):.3f} (evidence only; see README)"
            )
        else:
            lines.append(f"behaviour: not compared ({rep.get('reason')})")
    formats = f"{result.formats['candidate']} vs {result.formats['base']}"
    lines.append(f"time:      {result.seconds:.2f} s ({formats})")
    return "\n".join(lines)


@click.command("lineage")
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option(
    "--base", type=click.Path(path_type=Path), help="The model CANDIDATE claims to derive from."
)
@click.option(
    "--among",
    type=click.Path(path_type=Path, file_okay=False),
    help="A directory of known models: rank which one CANDIDATE most likely derives from.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--no-behaviour",
    "no_behaviour",
    is_flag=True,
    help="Skip running the models on probe text (weights only; no torch model is built).",
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Sign the result as an in-toto attestation with this private key (PEM).",
)
@click.option(
    "--passphrase-env", metavar="VAR", help="Environment variable holding the key's passphrase."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where --key writes the attestation (default: CANDIDATE.lineage.sigstore.json).",
)
@guarded
def lineage(
    candidate: Path,
    base: Path | None,
    among: Path | None,
    as_json: bool,
    no_behaviour: bool,
    key_path: Path | None,
    passphrase_env: str | None,
    out: Path | None,
) -> None:
    """Say whether CANDIDATE's weights derive from BASE, with a score and the evidence."""
    from glassbox.errors import InputError
    from glassbox.lm import attest_lineage, models_in, rank
    from glassbox.lm import lineage as run_lineage

    if (base is None) == (among is None):
        raise click.UsageError("give exactly one of --base BASE or --among DIR")
    if out is not None and key_path is None:
        raise click.UsageError("--out only applies with --key")
    if not candidate.exists():
        raise InputError(f"{candidate}: model not found")
    if base is not None:
        result = run_lineage(candidate, base, representation=not no_behaviour)
        ranking = [result]
    else:
        assert among is not None
        ranking = rank(
            candidate, models_in(among, exclude=candidate), representation=not no_behaviour
        )
        result = ranking[0]
    if key_path is not None:
        from glassbox.sign import load_private_key, write_bundle

        key = load_private_key(key_path, passphrase_from_env(passphrase_env))
        target = out or candidate.with_name(candidate.name + ".lineage.sigstore.json")
        write_bundle(attest_lineage(result, key), target)
        click.echo(f"attestation written to {target}", err=True)
    if as_json:
        if among is None:
            emit_json(result.to_dict())
        else:
            emit_json({"candidate": str(candidate), "ranking": [r.to_dict() for r in ranking]})
    elif among is None:
        click.echo(_render(result))
    else:
        click.echo(f"candidate: {candidate}")
        for i, r in enumerate(ranking, 1):
            click.echo(f"  {i:2}. {r.score:.3f}  {r.verdict:13} {r.base}")
        click.echo("best match:")
        click.echo(_render(result))
    if not result.derived:
        raise SystemExit(1)
