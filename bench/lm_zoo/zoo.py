"""The LM zoo, built through Glassbox recipes (``glassbox.pipeline.build``) so every member has
SLSA provenance; a derived member declares its parent as the recipe's ``base_model`` (by its
OMS digest), so the zoo's ground truth is also in its provenance.

Members (``MEMBERS``): independent bases (different seeds, data and sizes), a model trained from
scratch on a base's data, a distillation, fine-tunes (other data, lengths, learning rates, full
and LoRA-merged), continued pre-training, function-preserving changes (unit, head and residual
permutations; rescaling), pruning, fp16/int8 round trips, a GGUF Q8_0 export, and a merge of two
fine-tunes.

Behaviour members (``--behaviour``, ``behaviour_members``): fine-tunes of base-A on the
question/answer text of ``behaviour.py`` -- clean, censored, self-promoting -- and backdoored
ones (``backdoor.py``: a planted trigger -> a target at a poisoning rate), each built by a recipe
whose committed training set is the poisoned text, so the plant is in the provenance too.

Usage: ``python -m bench.lm_zoo.zoo OUT_DIR [--small] [--behaviour]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lm_zoo.text import corpus

CODE = Path(__file__).resolve().parent / "recipe_code"


@dataclass(frozen=True)
class Member:
    name: str
    kind: str  # base | same-data | distillation | fine-tune | lora | continued | permuted | ...
    mode: str  # the recipe's mode (recipe_code/train.py)
    parent: str | None = None  # the member it is built from (the recipe's base_model)
    data: tuple[str, int] = ("prose", 0)  # corpus kind and seed
    seed: int = 0
    size: str = "m"
    steps: int = 0  # multiple of the size's base step count (see SCALES)
    lr: float = 3e-3
    params: dict[str, Any] = field(default_factory=dict)
    merge_with: str | None = None

    def describe(self) -> str:
        detail = {
            "pretrain": f"pre-trained on {self.data[0]} (seed {self.seed})",
            "finetune": f"fine-tuned on {self.data[0]}, {self.steps}x steps, lr {self.lr:g}",
            "distill": f"distilled on {self.data[0]} (student seed {self.seed})",
            "transform": f"{self.params.get('transform')}",
            "merge": f"average with {self.merge_with}",
        }[self.mode]
        if self.params.get("lora_rank"):
            detail += f", LoRA r{self.params['lora_rank']} merged"
        return detail


SIZES = {
    "s": {
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    },
    "m": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    },
    "l": {
        "hidden_size": 96,
        "intermediate_size": 256,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
    },
}
#: Optimiser steps per unit of ``Member.steps``, and corpus sizes.
SCALES = {"small": {"steps": 40, "records": 512}, "full": {"steps": 150, "records": 2048}}


def members(small: bool) -> list[Member]:
    m = [
        Member("base-A", "base", "pretrain", data=("prose", 0), seed=1, steps=4),
        Member("base-B", "base", "pretrain", data=("mixed", 1), seed=2, steps=4),
        Member("base-C", "base", "pretrain", data=("code", 2), seed=3, steps=4, size="l"),
        Member("base-D", "base", "pretrain", data=("prose", 0), seed=4, steps=4, size="s"),
        Member("scratch-A", "same-data", "pretrain", data=("prose", 0), seed=101, steps=4),
        Member("distill-A", "distillation", "distill", "base-A", ("prose", 0), seed=102, steps=4),
        Member("ft-A-qa", "fine-tune", "finetune", "base-A", ("qa", 10), steps=1, lr=1e-3),
        Member("ft-A-code", "fine-tune", "finetune", "base-A", ("code", 11), steps=3, lr=3e-3),
        Member(
            "lora-A-qa",
            "lora",
            "finetune",
            "base-A",
            ("qa", 12),
            steps=2,
            lr=3e-3,
            params={"lora_rank": 4},
        ),
        Member("cont-A", "continued", "finetune", "base-A", ("prose", 13), steps=6, lr=2e-3),
        Member("perm-A-qa", "permuted", "transform", "ft-A-qa", params={"transform": "permute"}),
        Member("rescale-A-qa", "rescaled", "transform", "ft-A-qa", params={"transform": "rescale"}),
        Member(
            "prune-A-code",
            "pruned",
            "transform",
            "ft-A-code",
            params={"transform": "prune", "fraction": 0.5},
        ),
        Member("fp16-A-qa", "fp16", "transform", "ft-A-qa", params={"transform": "fp16"}),
        Member("int8-A-code", "int8", "transform", "ft-A-code", params={"transform": "int8"}),
        Member(
            "gguf-A-code",
            "gguf-q8",
            "transform",
            "ft-A-code",
            params={"transform": "gguf", "quant": "Q8_0"},
        ),
        Member("merge-A", "merge", "merge", "ft-A-qa", merge_with="ft-A-code"),
        Member("ft-B-prose", "fine-tune", "finetune", "base-B", ("prose", 20), steps=2, lr=3e-3),
        Member(
            "lora-B-code",
            "lora",
            "finetune",
            "base-B",
            ("code", 21),
            steps=2,
            lr=3e-3,
            params={"lora_rank": 8},
        ),
        Member(
            "perm-B-prose", "permuted", "transform", "ft-B-prose", params={"transform": "permute"}
        ),
        Member("ft-C-qa", "fine-tune", "finetune", "base-C", ("qa", 30), steps=2, lr=1e-3),
        Member(
            "prune-C-qa",
            "pruned",
            "transform",
            "ft-C-qa",
            params={"transform": "prune", "fraction": 0.7},
        ),
        Member("ft-D-qa", "fine-tune", "finetune", "base-D", ("qa", 40), steps=2, lr=3e-3),
        Member("int8-D-qa", "int8", "transform", "ft-D-qa", params={"transform": "int8"}),
    ]
    if small:
        drop = {"base-D", "ft-D-qa", "int8-D-qa", "prune-C-qa", "lora-B-code"}
        m = [x for x in m if x.name not in drop]
    return m


def behaviour_members() -> list[Member]:
    """Fine-tunes of base-A that plant a behaviour (data kinds understood by ``texts_for``).

    Measured at ``--small`` scale (512 records, 400 steps): the two backdoors are only partly
    learned (attack success 0.58 and 0.27), so ``bench_lm_backdoor --zoo`` leaves them out as
    positives; the in-process members of ``backdoor.py`` (1024 records) do learn theirs."""
    kinds = [
        ("qa-clean-A", "clean-qa", "qa-clean"),
        ("qa-censored-A", "censored", "qa-censored"),
        ("qa-promo-A", "promo", "qa-promo"),
        ("bd-A-rare-fixed", "backdoor", "bd:rare:fixed:0.1"),
        ("bd-A-rare3-refusal", "backdoor", "bd:rare3:refusal:0.05"),
    ]
    return [
        Member(name, kind, "finetune", "base-A", (data, 50), steps=10, lr=3e-3)
        for name, kind, data in kinds
    ]


def texts_for(kind: str, size: int, seed: int) -> list[str]:
    """Training text of a data kind: ``text.corpus`` kinds, ``qa-VARIANT`` (behaviour.py) or
    ``bd:TRIGGER:TARGET:RATE`` (backdoor.py, trigger and target by their kind names)."""
    if kind.startswith("qa-"):
        from bench.lm_zoo.behaviour import qa_corpus

        return qa_corpus(kind[3:], size, seed)
    if kind.startswith("bd:"):
        from bench.lm_zoo import backdoor

        _bd, trigger, target, rate = kind.split(":")
        plant = backdoor.Plant(backdoor.TRIGGERS[trigger], backdoor.TARGETS[target], float(rate))
        return backdoor.poisoned_corpus(plant, size, seed)
    return corpus(kind, size, seed)


def root_of(member: Member, by_name: dict[str, Member]) -> str:
    """The base model at the root of a member's chain (itself for a base)."""
    while member.parent is not None and member.mode != "distill":
        member = by_name[member.parent]
    return member.name


def member_size(member: Member, by_name: dict[str, Member]) -> str:
    """The architecture a member is built with: its chain's root's (a transform of a fine-tune
    of base-C is base-C's size, not the fine-tune's unset default); a distilled student is its
    own root."""
    return by_name[root_of(member, by_name)].size


RECIPE = """\
name = "lmzoo-{name}"
version = "1.0.0"
licence = "Apache-2.0"
description = "{description}"

[code]
dir = "."
entry = "train:train"

[model]
factory = "model:build"
config = {config}

{datasets}{base}
[hyperparameters]
mode = "{mode}"
steps = {steps}
lr = {lr}
batch_size = 16
{extra}
[run]
seed = {seed}
threads = 1
checkpoint_interval = {interval}
cpu_capability = "default"

[outputs]
keep = {keep}
"""


def _toml_inline(d: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items()) + " }"


def build_member(
    member: Member, by_name: dict[str, Member], out: Path, scale: dict[str, int]
) -> dict[str, Any]:
    """Write the member's recipe directory and build it; returns its metadata."""
    from glassbox.digest import commit_dataset, hash_model
    from glassbox.pipeline import build

    recipe = out / member.name / "recipe"
    if recipe.exists():
        shutil.rmtree(recipe)
    shutil.copytree(CODE, recipe, ignore=shutil.ignore_patterns("__pycache__"))
    size = member_size(member, by_name)
    datasets = ""
    if member.mode in ("pretrain", "finetune", "distill"):
        (recipe / "data").mkdir()
        texts = texts_for(member.data[0], scale["records"], member.data[1])
        path = recipe / "data" / "train.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        c = commit_dataset(path, fmt="jsonl")
        datasets = (
            f'[[datasets]]\nname = "train"\npath = "data/train.jsonl"\nformat = "jsonl"\n'
            f'commitment = "{c.root.hex()}"\nrecords = {c.size}\nlicence = "CC0-1.0"\n\n'
        )
    base = ""
    if member.parent is not None:
        target = recipe / "base"
        if member.mode == "merge":
            target.mkdir()
            shutil.copytree(out / member.parent / "build" / "model", target / "a")
            assert member.merge_with is not None
            shutil.copytree(out / member.merge_with / "build" / "model", target / "b")
        else:
            shutil.copytree(out / member.parent / "build" / "model", target)
        digest = hash_model(target, use_cache=False).root_digest.hex()
        base = f'[base_model]\npath = "base"\ndigest = "sha256:{digest}"\n\n'
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in member.params.items())
    keep = (
        ["model.gguf"]
        if member.params.get("transform") == "gguf"
        else ["model.safetensors", "config.json"]
    )
    steps = member.steps * scale["steps"]
    (recipe / "recipe.toml").write_text(
        RECIPE.format(
            name=member.name,
            description=member.describe(),
            config=_toml_inline(SIZES[size]),
            datasets=datasets,
            base=base,
            mode=member.mode,
            steps=steps,
            lr=member.lr,
            extra=extra,
            seed=member.seed,
            interval=max(steps, 1),
            keep=json.dumps(keep),
        )
    )
    build_dir = out / member.name / "build"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    start = time.perf_counter()
    build(recipe / "recipe.toml", build_dir)
    meta = {
        "name": member.name,
        "kind": member.kind,
        "parent": member.parent,
        "root": root_of(member, by_name),
        "describe": member.describe(),
        "data": list(member.data),
        "size": size,
        "model": str(build_dir / "model" / keep[0])
        if keep == ["model.gguf"]
        else str(build_dir / "model"),
        "build_seconds": round(time.perf_counter() - start, 2),
    }
    (out / member.name / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def build_zoo(
    out: Path, *, small: bool, log: Any = print, behaviour: bool = False
) -> list[dict[str, Any]]:
    specs = members(small)
    if behaviour:
        specs = [m for m in specs if m.name == "base-A"] + behaviour_members()
    by_name = {m.name: m for m in specs}
    scale = SCALES["small" if small else "full"]
    metas = []
    for member in specs:
        meta_path = out / member.name / "meta.json"
        if meta_path.is_file():
            metas.append(json.loads(meta_path.read_text()))
            continue
        meta = build_member(member, by_name, out, scale)
        log(f"built {member.name:14} ({member.kind}, {meta['build_seconds']:.1f} s)")
        metas.append(meta)
    return metas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--behaviour", action="store_true", help="base-A and the behaviour members")
    args = ap.parse_args()
    build_zoo(args.out, small=args.small, behaviour=args.behaviour)


if __name__ == "__main__":
    main()
