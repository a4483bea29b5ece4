"""``glassbox build``: recipe in, model plus provenance out.

Order matters: every declared input is verified against its digest *before* training starts
(a build from the wrong data must not produce a model at all), training runs in a pinned child
process, and only then are the outputs hashed and the provenance written (and signed).
"""

from __future__ import annotations

import datetime
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glassbox.digest import Manifest, hash_model
from glassbox.errors import InputError, VerificationError
from glassbox.pipeline.hermetic import Hermeticity
from glassbox.pipeline.inputs import ResolvedInputs, check_declared, resolve_inputs
from glassbox.pipeline.provenance import (
    BUNDLE_NAME,
    CHECKPOINT_DIR,
    MODEL_DIR,
    STATEMENT_NAME,
    make_provenance,
)
from glassbox.pipeline.recipe import Recipe, load_recipe
from glassbox.pipeline.runner import ChildSettings, run_child
from glassbox.pipeline.trail import Trail, TrailEntry

SCRATCH_NAME = ".glassbox-build"


class NotHermeticError(VerificationError):
    """``--strict``: the training read or wrote files the recipe does not declare."""


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    model_dir: Path
    statement: dict[str, Any]
    statement_path: Path
    bundle_path: Path | None
    outputs: Manifest
    trail: Trail
    hermeticity: Hermeticity
    environment: dict[str, Any]
    seconds: float
    dropped_outputs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out_dir),
            "model": str(self.model_dir),
            "provenance": str(self.statement_path),
            "signed": str(self.bundle_path) if self.bundle_path else None,
            "subjects": {i.name: i.digest.hex() for i in self.outputs.items},
            "output_root": self.outputs.root_digest.hex(),
            "steps": self.trail.total_steps,
            "trail_entries": len(self.trail.entries),
            "hermetic": self.hermeticity.hermetic,
            "undeclared_reads": list(self.hermeticity.undeclared_reads),
            "undeclared_writes": list(self.hermeticity.undeclared_writes),
            "cpu_capability": self.environment.get("cpu_capability"),
            "threads": self.environment.get("threads"),
            "train_seconds": round(self.seconds, 3),
            "dropped_outputs": list(self.dropped_outputs),
        }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prepare_out(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(f"{out_dir}: output path exists and is not a directory")
        if any(out_dir.iterdir()):
            raise InputError(f"{out_dir}: output directory is not empty; choose a new one")
    out_dir.mkdir(parents=True, exist_ok=True)


def training_job(
    recipe: Recipe,
    inputs: ResolvedInputs,
    *,
    mode: str,
    output_dir: Path,
    checkpoint_dir: Path | None,
    internal: list[Path],
) -> dict[str, Any]:
    """The child's job description: what to run, and which files it may read."""
    roots = [str(d.path.resolve()) for d in recipe.datasets]
    if recipe.base_model is not None:
        roots.append(str(recipe.base_model.path.resolve()))
    return {
        "mode": mode,
        "code_dir": str(recipe.code_dir.resolve()),
        "entry": recipe.entry,
        "factory": recipe.factory,
        "model_config": dict(recipe.model_config),
        "params": dict(recipe.hyperparameters),
        "seed": recipe.seed,
        "interval": recipe.checkpoint_interval,
        "datasets": [
            {
                "name": d.name,
                "path": str(d.path.resolve()),
                "format": d.format,
                "records": inputs.datasets[d.name].size,
            }
            for d in recipe.datasets
        ],
        "base_model": str(recipe.base_model.path.resolve()) if recipe.base_model else None,
        "output_dir": str(output_dir.absolute()),
        "checkpoint_dir": str(checkpoint_dir.absolute()) if checkpoint_dir else None,
        "declared_files": inputs.declared_files(recipe.code_dir.resolve()),
        "declared_roots": roots,
        "internal_roots": [str(p.resolve()) for p in internal],
    }


def train(
    recipe: Recipe,
    inputs: ResolvedInputs,
    work: Path,
    *,
    threads: int,
    cpu_capability: str,
    checkpoint_dir: Path | None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run the recipe once in a child process; the raw result (trail, environment, hermeticity)."""
    job = training_job(
        recipe,
        inputs,
        mode="build",
        output_dir=work / "outputs",
        checkpoint_dir=checkpoint_dir,
        internal=[work, *([checkpoint_dir] if checkpoint_dir else [])],
    )
    settings = ChildSettings(threads=threads, cpu_capability=cpu_capability, timeout=timeout)
    return run_child(job, settings, work)


def collect_outputs(recipe: Recipe, produced: Path, model_dir: Path) -> tuple[str, ...]:
    """Move the kept outputs into ``model_dir``; returns the names of outputs dropped."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in recipe.keep:
        src = produced / name
        if not src.is_file() or src.is_symlink():
            raise VerificationError(
                f"{recipe.where('outputs', 'keep')}: the training did not produce output {name!r}; "
                "write it under ctx.output_dir or remove it from keep"
            )
        dst = model_dir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))
    dropped = sorted(p.relative_to(produced).as_posix() for p in produced.rglob("*") if p.is_file())
    return tuple(dropped)


def _keep_log(work: Path, out: Path) -> None:
    log = work / "train.log"
    if log.exists():
        shutil.move(str(log), str(out / "train.log"))


def build(
    recipe_path: str | Path,
    out_dir: str | Path,
    *,
    key: Any = None,
    strict: bool = False,
    keep_checkpoints: bool = False,
    timeout: float | None = None,
) -> BuildResult:
    """Build the model a recipe declares into ``out_dir``.

    Raises ``VerificationError`` if an input does not match its declared digest, if training
    fails or touches the network, or (``strict``) if the run was not hermetic.
    """
    return build_recipe(
        load_recipe(recipe_path),
        out_dir,
        key=key,
        strict=strict,
        keep_checkpoints=keep_checkpoints,
        timeout=timeout,
    )


def build_recipe(
    recipe: Recipe,
    out_dir: str | Path,
    *,
    key: Any = None,
    strict: bool = False,
    keep_checkpoints: bool = False,
    timeout: float | None = None,
) -> BuildResult:
    """``build`` for a recipe already in memory: a pipeline's train step builds one it made
    from the pipeline file, with the datasets its earlier steps produced."""
    from glassbox.sign import sign_statement, write_bundle

    out = Path(out_dir).absolute()  # the training child runs in its own working directory
    _prepare_out(out)
    inputs = resolve_inputs(recipe, exclude=[out])
    check_declared(recipe, inputs)
    work = out / SCRATCH_NAME
    checkpoint_dir = out / CHECKPOINT_DIR if keep_checkpoints else None
    started = _now()
    try:
        result = train(
            recipe,
            inputs,
            work,
            threads=recipe.threads,
            cpu_capability=recipe.cpu_capability,
            checkpoint_dir=checkpoint_dir,
            timeout=timeout,
        )
        finished = _now()
        hermeticity = Hermeticity.from_dict(result["hermeticity"])
        if strict and not hermeticity.hermetic:
            listed = ", ".join([*hermeticity.undeclared_reads, *hermeticity.undeclared_writes][:5])
            raise NotHermeticError(
                f"{recipe.source}: build is not hermetic (--strict): undeclared file access: "
                f"{listed}; declare the file as a dataset or move it into the code directory"
            )
        model_dir = out / MODEL_DIR
        dropped = collect_outputs(recipe, work / "outputs", model_dir)
    except BaseException:
        # Keep the training log for diagnosis; nothing else of a failed build is left behind.
        _keep_log(work, out)
        shutil.rmtree(work, ignore_errors=True)
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        raise
    outputs = hash_model(model_dir, use_cache=False, model_name=recipe.name)
    trail = Trail(
        recipe.checkpoint_interval, tuple(TrailEntry.from_dict(e) for e in result["trail"])
    )
    environment = result["environment"]
    statement = make_provenance(
        recipe=recipe,
        inputs=inputs,
        outputs=outputs,
        trail=trail,
        hermeticity=hermeticity,
        environment=environment,
        threads=recipe.threads,
        cpu_capability=recipe.cpu_capability,
        invocation_id=f"urn:uuid:{uuid.uuid4()}",
        started=started,
        finished=finished,
        train_seconds=float(result["seconds"]),
    )
    statement_path = out / STATEMENT_NAME
    statement_path.write_text(json.dumps(statement, indent=2, sort_keys=False) + "\n")
    bundle_path = None
    if key is not None:
        bundle_path = out / BUNDLE_NAME
        write_bundle(sign_statement(statement, key), bundle_path)
    _keep_log(work, out)
    shutil.rmtree(work, ignore_errors=True)
    return BuildResult(
        out_dir=out,
        model_dir=model_dir,
        statement=statement,
        statement_path=statement_path,
        bundle_path=bundle_path,
        outputs=outputs,
        trail=trail,
        hermeticity=hermeticity,
        environment=environment,
        seconds=float(result["seconds"]),
        dropped_outputs=dropped,
    )
