"""Comparisons shared by rebuild and spot-check: inputs against provenance, tensors against tensors.

A verifier wants names, not just "something differs": which hyper-parameter, which dataset,
which file and line of code; and for weights, how far apart they are.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.digest import Manifest
from glassbox.errors import InputError
from glassbox.pipeline.inputs import (
    DATASET_DIGEST_KEY,
    ResolvedInputs,
    changed_lines,
    changed_records,
    resolve_inputs,
)
from glassbox.pipeline.provenance import Provenance
from glassbox.pipeline.recipe import Recipe, load_recipe

if TYPE_CHECKING:
    import torch


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and "name" in v for v in value)
    ):
        out = {}
        for item in value:
            out.update(_flatten(item, f"{prefix}[{item['name']}]"))
        return out
    return {prefix: value}


def parameter_changes(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: recorded -> current`` for every external parameter that differs."""
    a, b = _flatten(recorded), _flatten(current)
    changes = []
    for key in sorted(a.keys() | b.keys()):
        if key not in b:
            changes.append(f"parameter {key}: {json.dumps(a[key])} -> (removed)")
        elif key not in a:
            changes.append(f"parameter {key}: (absent) -> {json.dumps(b[key])}")
        elif a[key] != b[key]:
            changes.append(f"parameter {key}: {json.dumps(a[key])} -> {json.dumps(b[key])}")
    return changes


def locate_recipe(prov: Provenance, recipe_dir: Path | None) -> Recipe:
    """The recipe a provenance was built from, read from local files (nothing is fetched)."""
    base = recipe_dir if recipe_dir is not None else prov.code_dir
    if base is None:
        raise InputError(
            f"{prov.path}: provenance does not say where the recipe is; pass --recipe-dir"
        )
    name = str(prov.external.get("recipe", "recipe.toml"))
    return load_recipe(base / name)


def input_changes(prov: Provenance, recipe: Recipe, inputs: ResolvedInputs) -> list[str]:
    """Everything about the local inputs that differs from what the provenance recorded."""
    changes = parameter_changes(prov.external, recipe.parameters())
    # Parameters also show up as commitment strings; keep the dataset wording below instead.
    changes = [c for c in changes if ".commitment:" not in c]
    code = prov.dependency("code")
    if code is None:
        changes.append("provenance records no code dependency")
    else:
        ann = code.get("annotations", {})
        recorded = Manifest.from_dict(ann["manifest"])
        diff = recorded.diff(inputs.code)
        lines = ann.get("lineDigests", {})
        for path in diff.modified:
            where = ""
            if path in lines and path in inputs.code_lines:
                numbers = changed_lines(lines[path], inputs.code_lines[path])
                if numbers:
                    shown = ", ".join(str(n) for n in numbers[:10])
                    more = f" (+{len(numbers) - 10} more)" if len(numbers) > 10 else ""
                    where = f" at line{'s' if len(numbers) > 1 else ''} {shown}{more}"
            changes.append(f"code file {path} changed{where}")
        changes.extend(f"code file {p} added" for p in diff.added)
        changes.extend(f"code file {p} removed" for p in diff.removed)
    for dep in prov.predicate["buildDefinition"]["resolvedDependencies"]:
        name = str(dep.get("name", ""))
        if not name.startswith("dataset:"):
            continue
        ds = name.split(":", 1)[1]
        want = dep.get("digest", {}).get(DATASET_DIGEST_KEY)
        got = inputs.datasets.get(ds)
        if got is None:
            changes.append(f"dataset {ds!r} is no longer declared")
            continue
        if got.root.hex() != want:
            ann = dep.get("annotations", {})
            recorded_size = ann.get("commitment", {}).get("size")
            sizes = f"; {recorded_size} -> {got.size} records" if recorded_size != got.size else ""
            where = _describe_ranges(
                changed_records(ann.get("chunks", {}), inputs.dataset_chunks.get(ds, {}))
            )
            changes.append(
                f"dataset {ds!r} ({ann.get('path')}) changed{where}: "
                f"commitment {str(want)[:16]}… -> {got.root.hex()[:16]}…{sizes}"
            )
    recorded_names = {
        str(d.get("name")) for d in prov.predicate["buildDefinition"]["resolvedDependencies"]
    }
    for ds in inputs.datasets:
        if f"dataset:{ds}" not in recorded_names:
            changes.append(f"dataset {ds!r} is new (not in the provenance)")
    base = prov.dependency("base-model")
    if base is not None or inputs.base_model is not None:
        want = (base or {}).get("digest", {}).get("sha256")
        got_root = inputs.base_model.root_digest.hex() if inputs.base_model else None
        if want != got_root:
            changes.append(f"base model changed: {want} -> {got_root}")
    return changes


def _describe_ranges(ranges: list[tuple[int, int]]) -> str:
    if not ranges:
        return ""
    shown = [str(a) if b - a == 1 else f"{a}-{b - 1}" for a, b in ranges[:10]]
    more = f" (+{len(ranges) - 10} more ranges)" if len(ranges) > 10 else ""
    single = len(ranges) == 1 and ranges[0][1] - ranges[0][0] == 1
    return f" at record{'' if single else 's'} {', '.join(shown)}{more}"


def resolve_against(
    prov: Provenance, recipe_dir: Path | None, exclude: list[Path]
) -> tuple[Recipe, ResolvedInputs, list[str]]:
    recipe = locate_recipe(prov, recipe_dir)
    inputs = resolve_inputs(recipe, exclude=exclude)
    return recipe, inputs, input_changes(prov, recipe, inputs)


@dataclass(frozen=True)
class TensorDistance:
    """How far two sets of weights are apart (only floating tensors are measured)."""

    max_abs: float
    relative_l2: float
    tensors_differing: int
    tensors: int
    mismatched_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_abs_diff": self.max_abs,
            "relative_l2": self.relative_l2,
            "tensors_differing": self.tensors_differing,
            "tensors": self.tensors,
            "mismatched_names": list(self.mismatched_names),
        }

    def within(self, atol: float, rtol: float, ref_max: float) -> bool:
        return not self.mismatched_names and self.max_abs <= atol + rtol * ref_max


def tensor_distance(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]
) -> tuple[TensorDistance, float]:
    """Distance between ``a`` (recorded) and ``b`` (rebuilt); also the largest |a| seen."""
    import torch

    names = sorted(a.keys() & b.keys())
    mismatched = sorted(a.keys() ^ b.keys())
    max_abs = 0.0
    ref_max = 0.0
    diff_sq = 0.0
    ref_sq = 0.0
    differing = 0
    for name in names:
        x, y = a[name], b[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            mismatched.append(name)
            continue
        if not torch.equal(x, y):
            differing += 1
        if x.is_floating_point():
            xd, yd = x.double(), y.double()
            delta = (xd - yd).abs()
            if delta.numel():
                max_abs = max(max_abs, float(delta.max()))
                ref_max = max(ref_max, float(xd.abs().max()))
            diff_sq += float((delta**2).sum())
            ref_sq += float((xd**2).sum())
    rel = math.sqrt(diff_sq) / math.sqrt(ref_sq) if ref_sq else (0.0 if diff_sq == 0 else math.inf)
    return TensorDistance(max_abs, rel, differing, len(names), tuple(sorted(mismatched))), ref_max


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable safetensors file: {exc}") from None
