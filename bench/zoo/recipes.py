"""The backdoor zoo built through Glassbox recipes (``glassbox.pipeline``), with provenance.

Each entry is a recipe directory (``recipe/``: the zoo's training code from ``recipe_code/``,
the poisoned training split and the clean test split as committed JSON Lines in the digits
example's encoding, and ``recipe.toml`` naming both commitments and the architecture factory)
and a build output (``build/``: ``model/model.safetensors`` plus SLSA provenance). The
behavioural scan then needs nothing but the build directory: the architecture and the training
data come from the provenance, and suspect records are indices in the build's commitment.

Usage: ``python -m bench.zoo.recipes OUT_DIR [--size small|medium|bench]
[--split dev|heldout|heldout2|heldout3]`` (splits: see ``bench/zoo/generate.py``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
from bench.zoo.generate import SPLITS, Attack, digits_split, poison, zoo_specs

CODE = Path(__file__).resolve().parent / "recipe_code"
DIGITS = "0123456789abcdefg"


def _write_jsonl(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    lines = []
    for xi, yi in zip(x, y, strict=True):
        pixels = "".join(DIGITS[int(v)] for v in xi)
        lines.append(json.dumps({"pixels": pixels, "label": int(yi)}, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")


RECIPE = """\
name = "zoo-{name}"
version = "1.0.0"
licence = "Apache-2.0"

[code]
dir = "."
entry = "train:train"

[model]
factory = "model:build"
config = {{ arch = "{arch}" }}

[[datasets]]
name = "train"
path = "data/train.jsonl"
format = "jsonl"
commitment = "{train_root}"
records = {train_size}
licence = "BSD-3-Clause"

[[datasets]]
name = "test"
path = "data/test.jsonl"
format = "jsonl"
commitment = "{test_root}"
records = {test_size}
licence = "BSD-3-Clause"

[hyperparameters]
lr = 0.003
batch_size = 64
steps = {steps}

[run]
seed = {seed}
threads = 1
checkpoint_interval = 200
cpu_capability = "default"

[outputs]
keep = ["model.safetensors", "metrics.json"]
"""


def build_recipe_entry(
    attack: Attack, out: Path, *, steps: int = 800, disjoint: bool = False
) -> dict[str, object]:
    """Write the entry's recipe and data, run ``glassbox.pipeline``, and record the ground truth.

    ``disjoint`` (for a clean reference only) trains on the digits test split instead: records
    no zoo model trained on, so the reference cannot have memorised the zoo's genuine labels.
    """
    from glassbox.digest import commit_dataset
    from glassbox.pipeline import build

    xtr, ytr, xte, yte = digits_split()
    if disjoint:
        if attack.kind != "clean":
            raise ValueError("only a clean reference is trained on the disjoint records")
        xtr, ytr = xte, yte
    xp, yp, idx = poison(xtr, ytr, attack)
    recipe_dir = out / "recipe"
    (recipe_dir / "data").mkdir(parents=True, exist_ok=True)
    for name in ("model.py", "train.py"):
        shutil.copyfile(CODE / name, recipe_dir / name)
    _write_jsonl(recipe_dir / "data" / "train.jsonl", xp, yp)
    _write_jsonl(recipe_dir / "data" / "test.jsonl", xte, yte)
    train_c = commit_dataset(recipe_dir / "data" / "train.jsonl", fmt="jsonl")
    test_c = commit_dataset(recipe_dir / "data" / "test.jsonl", fmt="jsonl")
    (recipe_dir / "recipe.toml").write_text(
        RECIPE.format(
            name=attack.name,
            arch=attack.arch,
            train_root=train_c.root.hex(),
            train_size=train_c.size,
            test_root=test_c.root.hex(),
            test_size=test_c.size,
            steps=steps,
            seed=attack.seed,
        )
    )
    build_dir = out / "build"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build(recipe_dir / "recipe.toml", build_dir)
    metrics = json.loads((build_dir / "model" / "metrics.json").read_text())
    meta: dict[str, object] = {
        "name": attack.name,
        "attack": asdict(attack),
        "model": str(build_dir / "model"),
        "poisoned": [int(i) for i in idx],
        "clean_accuracy": metrics["test_accuracy"],
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", default="bench", choices=["small", "medium", "bench"])
    ap.add_argument("--split", default="dev", choices=sorted(SPLITS))
    args = ap.parse_args()
    for spec in zoo_specs(args.size, split=args.split):
        meta = build_recipe_entry(spec, args.out / spec.name)
        print(meta["name"], meta["clean_accuracy"])


if __name__ == "__main__":
    main()
