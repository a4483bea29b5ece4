"""``glassbox dataset``: prove that a record is (or, sorted, is not) in a committed dataset.

The commitment itself comes from ``glassbox digest --dataset``; these commands make and check
proofs about single records, so a producer can answer "was this in your training data?" without
publishing the data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from glassbox.cli._common import emit_json, guarded
from glassbox.errors import InputError, VerificationError
from glassbox.files import read_json_file

FORMATS = ("csv", "jsonl", "parquet", "files")
MAX_JSON_BYTES = 64 << 20  # a commitment or a record proof is a few KiB


@click.group()
def dataset() -> None:
    """Prove or verify that a record is in a committed dataset; diff two datasets."""


@dataset.command()
@click.argument("upstream", type=click.Path(path_type=Path))
@click.argument("derived", type=click.Path(path_type=Path))
@click.option(
    "--key",
    help="Field (JSONL/Parquet) or CSV column that identifies a record. Default: match records "
    "by position.",
)
@click.option(
    "--label",
    default="label",
    show_default=True,
    help="Field holding the label: a record differing only there is 'relabelled'. "
    "Pass '' for none.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), help="Format of both (default: guess)."
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    help="List (and prove) at most this many changes; all are counted.",
)
@click.option("--no-proofs", is_flag=True, help="Skip the inclusion proofs (one pass less).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@guarded
def diff(
    upstream: Path,
    derived: Path,
    key: str | None,
    label: str,
    fmt: str | None,
    limit: int,
    no_proofs: bool,
    as_json: bool,
) -> None:
    """Name the records DERIVED added, removed, modified or relabelled against UPSTREAM.

    Exit 0 when the datasets hold the same records, 1 when they differ, 2 on unreadable input.
    """
    from glassbox.cli._common import progress
    from glassbox.digest.diff import CHANGE_KINDS, diff_datasets

    with progress("diffing records", None, enabled=not as_json) as bar:
        result = diff_datasets(
            upstream,
            derived,
            key=key or None,
            label=label or None,
            upstream_format=fmt,
            derived_format=fmt,
            limit=limit,
            proofs=not no_proofs,
            progress=bar.advance,
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        for name, side in (("upstream", result.upstream), ("derived ", result.derived)):
            click.echo(f"{name} {side.name}: {side.size} records, root {side.root.hex()}")
        summary = ", ".join(f"{result.counts[k]} {k}" for k in CHANGE_KINDS)
        click.echo(f"{summary}, {result.unchanged} unchanged (key: {key or 'record index'})")
        for name, kinds in result.by_label.items():
            text = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            click.echo(f"  label {_printable(name)}: {text}")
        for change in result.changes:
            where = ""
            if change.kind == "relabelled":
                where = f" {_printable(str(change.upstream_label))} -> "
                where += _printable(str(change.derived_label))
            proved = " (proved)" if change.upstream_proof or change.derived_proof else ""
            click.echo(f"{change.kind:<10} {_printable(change.key)}{where}{proved}")
        if result.omitted:
            click.echo(f"... {result.omitted} more changes not listed (--limit)")
    if result.changed:
        raise SystemExit(1)


def _printable(text: str) -> str:
    """Record content is untrusted: escape what could drive the terminal."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


@dataset.command()
@click.argument("dataset_path", metavar="DATASET", type=click.Path(path_type=Path))
@click.option("--record", "index", type=int, help="Index of the record to prove (from 0).")
@click.option(
    "--absent",
    "absent",
    help="Prove that this record is NOT in the dataset. Give its canonical bytes as text: a "
    'JSONL line as written, a CSV row as a JSON array of strings (["1","alice"]), a Parquet row '
    "as canonical JSON. Implies --sorted.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Record format (default: guess).")
@click.option("--sorted", "sorted_records", is_flag=True, help="The commitment is sorted.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the proof here instead of stdout.",
)
@guarded
def prove(
    dataset_path: Path,
    index: int | None,
    absent: str | None,
    fmt: str | None,
    sorted_records: bool,
    out: Path | None,
) -> None:
    """Write a JSON proof that record N is in DATASET (or, with --absent, that one is not)."""
    from glassbox.digest.dataset import prove_absence, prove_record

    if (index is None) == (absent is None):
        raise click.UsageError("give exactly one of --record N or --absent RECORD")
    if absent is not None:
        proof: dict[str, Any] = prove_absence(
            dataset_path, absent.encode("utf-8"), fmt=fmt
        ).to_dict()
    else:
        assert index is not None
        proof = prove_record(dataset_path, index, fmt=fmt, sorted_records=sorted_records).to_dict()
    if out is None:
        emit_json(proof)
        return
    try:
        out.write_text(json.dumps(proof, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {out}", err=True)


@dataset.command("verify-record")
@click.argument("proof_path", metavar="PROOF", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--root", help="The committed root (hex) to check against.")
@click.option(
    "--commitment",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A commitment JSON (from `glassbox digest --dataset --json`): root and record count.",
)
@click.option(
    "--size",
    type=click.IntRange(min=0),
    help="The committed record count; needed to check a record's index and absence proofs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verified record as JSON.")
@guarded
def verify_record(
    proof_path: Path,
    root: str | None,
    commitment: Path | None,
    size: int | None,
    as_json: bool,
) -> None:
    """Check PROOF against a trusted root; exit 0 if it holds, 1 if it does not."""
    import base64

    from glassbox.digest.dataset import (
        AbsenceProof,
        DatasetCommitment,
        load_proof,
        verify_absence,
    )
    from glassbox.digest.dataset import verify_record as check_inclusion

    if (root is None) == (commitment is None):
        raise click.UsageError("give exactly one of --root HEX or --commitment FILE")
    trusted: DatasetCommitment | str
    trusted = DatasetCommitment.from_dict(_read_json(commitment)) if commitment else str(root)
    proof = load_proof(_read_json(proof_path))
    try:
        if isinstance(proof, AbsenceProof):
            verify_absence(proof, trusted, size=size)
            verdict, index = "absent", None
        else:
            check_inclusion(proof, trusted, size=size)
            verdict, index = "present", proof.index
    except VerificationError as exc:
        if as_json:  # exit 1 either way; a script also gets the verdict on stdout
            emit_json({"verified": False, "error": str(exc)})
        raise
    index_checked = index is not None and (size is not None or commitment is not None)
    if as_json:
        emit_json(
            {
                "verified": True,
                "result": verdict,
                "index": index,
                "index_checked": index_checked,
                "record": base64.b64encode(proof.record).decode("ascii"),
            }
        )
        return
    # The record comes from the proof file: escape control characters so that it cannot
    # drive the terminal (ANSI sequences, carriage returns rewriting the verdict line).
    record = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in proof.record.decode("utf-8", errors="backslashreplace")
    )
    if verdict == "absent":
        click.echo(f"verified: record is NOT in the dataset: {record}")
    elif index_checked:
        click.echo(f"verified: record {index} is in the dataset: {record}")
    else:
        click.echo(f"verified: record is in the dataset: {record}")
        click.echo("note: its index was not checked; pass --size or --commitment", err=True)


def _read_json(path: Path) -> Any:
    return read_json_file(path, MAX_JSON_BYTES, "JSON")
