"""``glassbox digest``: the OMS root digest of a model, or a Merkle commitment to a dataset.

Kept import-light (no rich unless stderr is a terminal, no model_signing), because start-up time
counts in the hashing benchmark.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from glassbox.cli._common import MODEL_PATH, emit_json, guarded, progress
from glassbox.digest import DEFAULT_SIGNATURE_NAME, HashMethod, hash_model

DATASET_FORMATS = ("csv", "jsonl", "parquet", "files")


@click.command()
@click.argument("path", type=MODEL_PATH)
@click.option(
    "--method",
    default="sha256",
    show_default=True,
    help="sha256, blake3, or sha256-sharded-BYTES (one digest per BYTES of each file).",
)
@click.option("--no-cache", is_flag=True, help="Re-read every byte instead of trusting the cache.")
@click.option("--allow-symlinks", is_flag=True, help="Hash symlinks that stay inside the model.")
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    help="Path (relative to the model) to leave out; repeatable. .git* and "
    f"{DEFAULT_SIGNATURE_NAME} are always left out.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest (or commitment) as JSON.")
@click.option("--dataset", is_flag=True, help="Commit to PATH as a dataset of records.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(DATASET_FORMATS),
    help="Dataset record format (default: from the file extension, .gz allowed; a directory "
    "is 'files').",
)
@click.option(
    "--sorted",
    "sorted_records",
    is_flag=True,
    help="Sort dataset records so that absence can be proven too.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes for a large JSON Lines dataset (64 MiB or more); the root is the same.",
)
@guarded
def digest(
    path: Path,
    method: str,
    no_cache: bool,
    allow_symlinks: bool,
    ignore: tuple[str, ...],
    as_json: bool,
    dataset: bool,
    fmt: str | None,
    sorted_records: bool,
    workers: int,
) -> None:
    """Print the root digest of the model (directory or file) at PATH.

    The root is computed exactly as OpenSSF model signing computes it, so it equals the
    subject digest of an OMS signature over the same files.

    Unchanged files (same device, inode, size, mtime and ctime) are not re-read: their digests
    come from a local cache. Anyone who can change the files can usually change that cache
    too, which is why `glassbox verify` re-reads everything unless given --cache.
    """
    if dataset:
        _digest_dataset(path, fmt, sorted_records, as_json, workers)
        return
    if fmt is not None or sorted_records or workers != 1:
        raise click.UsageError("--format, --sorted and --workers apply to --dataset only")
    parsed = HashMethod.parse(method)
    hash_method = HashMethod(parsed.algorithm, parsed.shard_size, allow_symlinks)
    ignores = [*ignore, DEFAULT_SIGNATURE_NAME] if path.is_dir() else list(ignore)
    total = progress_total(path, ignores, allow_symlinks)
    with progress(f"hashing {path.name or path}", total) as bar:
        manifest = hash_model(
            path,
            hash_method,
            ignore_paths=ignores,
            use_cache=not no_cache,
            progress=bar.advance,
        )
    if as_json:
        emit_json(manifest.to_dict())
    else:
        click.echo(f"{manifest.root_digest.hex()}  {path}")


def _is_terminal() -> bool:
    """Whether a progress bar will show (the bar itself checks the same)."""
    return sys.stderr.isatty()


def progress_total(path: Path, ignores: Sequence[str], allow_symlinks: bool) -> int | None:
    """Bytes a hash of the model will read, for the progress bar's total (terminal only).

    It sizes a bar and decides nothing: a listing error surfaces later, from hashing itself.
    """
    from glassbox.digest.walk import list_model_files, normalize_ignores
    from glassbox.errors import GlassboxError

    if not _is_terminal():
        return None
    try:
        files = list_model_files(
            path, normalize_ignores(path, ignores), allow_symlinks=allow_symlinks
        )
    except GlassboxError:
        return None
    return sum(f.size for f in files)


def _digest_dataset(
    path: Path, fmt: str | None, sorted_records: bool, as_json: bool, workers: int
) -> None:
    from glassbox.digest.dataset import commit_dataset

    commitment = commit_dataset(path, fmt=fmt, sorted_records=sorted_records, workers=workers)
    if as_json:
        emit_json(commitment.to_dict())
    else:
        click.echo(f"{commitment.root.hex()}  {path}  ({commitment.size} {commitment.fmt} records)")
