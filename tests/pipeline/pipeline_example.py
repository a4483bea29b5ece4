"""Helpers shared by the pipeline tests: a prepared copy of examples/digits-pipeline.

Preparing means what the example's README says a user does: make the labellers' and the
builder's keys, run the pipeline up to the filter step, and have each labeller sign their
decisions about the filtered data. Training is shrunk to a few dozen steps.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from glassbox.digest import commit_dataset
from glassbox.pipeline.dag import run_pipeline
from glassbox.pipeline.labels import sign_labels
from glassbox.sign import generate_private_key, load_private_key, write_bundle, write_keypair

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-pipeline"
TINY = {"steps = 400": "steps = 30", "checkpoint_interval = 50": "checkpoint_interval = 10"}


@dataclass(frozen=True)
class Prepared:
    root: Path
    pipeline: Path
    out: Path
    builder_key: Path
    builder_pub: Path


def make_key(prefix: Path) -> Path:
    write_keypair(generate_private_key(), prefix)
    return prefix


def sign_as(root: Path, labeller: str, dataset: Path, *, key: Path | None = None) -> None:
    private = load_private_key(key or root / "keys" / f"{labeller}.key")
    bundle = sign_labels(
        root / "labels" / "decisions.jsonl",
        labeller,
        private,
        dataset_root=commit_dataset(dataset).root.hex(),
    )
    write_bundle(bundle, root / "labels" / f"{labeller}.intoto.json")


def prepare(dest: Path) -> Prepared:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", "out*"))
    pipeline = dest / "pipeline.toml"
    text = pipeline.read_text()
    for old, new in TINY.items():
        assert old in text, old
        text = text.replace(old, new)
    pipeline.write_text(text)
    (dest / "keys").mkdir(exist_ok=True)
    for name in ("alice", "bob", "builder"):
        make_key(dest / "keys" / name)
    out = dest / "out"
    first = run_pipeline(pipeline, out, until="filter")
    assert first.ok, first.failed
    for labeller in ("alice", "bob"):
        sign_as(dest, labeller, out / "filter" / "data" / "digits.jsonl")
    shutil.rmtree(out)
    return Prepared(
        dest, pipeline, out, dest / "keys" / "builder.key", dest / "keys" / "builder.pub"
    )
