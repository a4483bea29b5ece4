"""``glassbox bom MODEL``: write a CycloneDX 1.6 ML-BOM (validated against the 1.6 schema), or
with ``--format spdx3`` an SPDX 3.0.1 JSON-LD document (AI and Dataset profiles)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from glassbox.cli._common import MODEL_PATH, guarded

if TYPE_CHECKING:
    from glassbox.bom.cyclonedx import DatasetInfo


@click.command(name="bom")
@click.argument("model", type=MODEL_PATH)
@click.option("--out", "out", type=click.Path(path_type=Path), default=None, help="Write here.")
@click.option(
    "--provenance",
    type=click.Path(path_type=Path),
    default=None,
    help="Build provenance (default: found beside the model).",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Trusted key to verify the provenance with; without one it is recorded as unverified.",
)
@click.option("--mof", type=click.Path(path_type=Path), default=None, help="MOF YAML file.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["cyclonedx", "spdx3"]),
    default="cyclonedx",
    show_default=True,
    help="CycloneDX 1.6 ML-BOM, or SPDX 3.0.1 JSON-LD with the AI and Dataset profiles.",
)
@guarded
def bom(
    model: Path,
    out: Path | None,
    provenance: Path | None,
    keys: tuple[Path, ...],
    mof: Path | None,
    fmt: str,
) -> None:
    """Write the ML-BOM of MODEL: files and hashes, datasets, environment, model card, openness.

    A model built by a pipeline also lists its data lineage: every upstream dataset and step
    output, with the producing step's provenance and verdict (checked with --key).

    Prints the BOM (JSON) on stdout unless --out names a file.
    """
    from glassbox.audit.evidence import as_bundle, discover, statement_of
    from glassbox.bom.cyclonedx import bom_for_model
    from glassbox.errors import InputError, VerificationError
    from glassbox.files import check_output_file
    from glassbox.sign import load_public_key, verify_bundle

    if out is not None:
        check_output_file(out, "BOM")  # before hashing the model

    model = model.absolute()
    named = {"provenance": [provenance]} if provenance else {}
    if mof:
        named["mof"] = [mof]
    evidence = discover(model, named)
    statement = None
    verified = False
    found = sorted(evidence.of("provenance"), key=lambda f: not f.signed)
    if found:
        item = found[0]
        statement = statement_of(item)
        if keys:
            if not item.signed:
                raise VerificationError(f"{item.path}: provenance is not signed")
            for key_path in keys:
                try:
                    statement = verify_bundle(as_bundle(item), load_public_key(key_path))
                    verified = True
                    break
                except VerificationError:
                    continue
            if not verified:
                raise VerificationError(f"{item.path}: no --key verifies the provenance")
    ancestors = _chain(model, evidence, keys, statement) if verified and statement else None
    mof_file = evidence.first("mof")
    inside = [f.path for f in evidence.files if model.is_dir() and f.path.parent == model]
    lineage = _pipeline_lineage(found[0].path, keys) if found else ()
    make = bom_for_model
    if fmt == "spdx3":
        from glassbox.bom.spdx3 import spdx3_for_model as make

        try:
            import spdx_python_model  # noqa: F401
        except ImportError:
            raise InputError(
                "--format spdx3 needs spdx-python-model: pip install 'glassbox[bom]'"
            ) from None
    document = make(
        model,
        provenance=statement,
        provenance_verified=verified,
        mof_yaml=mof_file.path if mof_file else None,
        ignore_paths=inside,
        ancestors=ancestors,
        lineage=lineage,
    )
    text = json.dumps(document, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{out}: cannot write the BOM: {exc.strerror or exc}") from exc
    what = (
        "SPDX 3.0.1 JSON-LD (AI and Dataset profiles)"
        if fmt == "spdx3"
        else "CycloneDX 1.6 ML-BOM (schema-valid)"
    )
    click.echo(f"wrote {what} to {out}", err=True)


def _chain(
    model: Path, evidence: Any, keys: tuple[Path, ...], statement: dict[str, Any]
) -> tuple[tuple[str, str], ...] | None:
    """With verified provenance that names a base: walk the fine-tune chain as ``audit`` does
    (each base's digest, signature, lineage and own provenance), so the BOM lists every
    ancestor to the root; a broken chain is a verification failure, not a quiet BOM."""
    from glassbox.audit.chain import declared_base, walk_chain
    from glassbox.audit.context import AuditContext, AuditOptions
    from glassbox.errors import VerificationError

    if declared_base(statement)[0] is None:
        return None
    chain = walk_chain(AuditContext(model, evidence, AuditOptions(keys=keys)), statement)
    broken = chain.broken
    if broken is not None and broken.verdict == "fail":
        raise VerificationError(
            f"{model}: fine-tune chain, level {broken.level} (base {broken.path}): {broken.reason}"
        )
    return chain.ancestors()


def _pipeline_lineage(provenance: Path, keys: tuple[Path, ...]) -> tuple[DatasetInfo, ...]:
    """A model built by a pipeline step: its data lineage, walked back to the upstream
    commitments (the same walk as ``audit``), as BOM data components."""
    from glassbox.bom.cyclonedx import lineage_datasets
    from glassbox.pipeline.lineage import find_lock, verify_lineage
    from glassbox.sign import load_public_key

    lock = find_lock(provenance)
    if lock is None:
        return ()
    report = verify_lineage(
        lock, [load_public_key(k) for k in keys], model_step=provenance.parent.name
    )
    click.echo(
        f"data lineage: {len(report.datasets())} datasets from {len(report.steps)} pipeline "
        f"step(s), verdict {report.verdict}"
        + ("" if keys else " (no --key: the steps' provenance is not verified)"),
        err=True,
    )
    return lineage_datasets(report.datasets())
