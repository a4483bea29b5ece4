"""``glassbox pipeline run`` and ``rebuild``: run a pipeline's steps in dependency order.

Each step is planned (its inputs' commitments, its code manifest, its label attestations are
hashed into a step key), then reused when ``OUT/STEP/step.json`` records the same key and its
files are still the recorded bytes, or else built in its own process (``steps.run_step``).
Steps whose inputs are ready run in parallel, up to ``jobs`` at a time. A run writes
``OUT/pipeline.lock.json``: every step, its provenance and its outputs' commitments, which is
where ``glassbox audit`` starts walking a model's data back to the upstream commitments.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.digest import hash_file
from glassbox.errors import GlassboxError, InputError, VerificationError
from glassbox.pipeline.spec import PIPELINE_TYPE, Pipeline, Step, load_pipeline
from glassbox.pipeline.steps import (
    DatasetRef,
    StepResult,
    plan_step,
    reusable,
    run_step,
)

LOCK_NAME = "pipeline.lock.json"
LOCK_TYPE = "https://glassbox.dev/pipeline-lock/v1"

# (step name, event, message): events are "start", "reused", "built", "failed", "skipped".
Listener = Callable[[str, str, str], None]


@dataclass
class PipelineRun:
    pipeline: Pipeline
    out_dir: Path
    results: dict[str, StepResult] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": str(self.pipeline.source),
            "out": str(self.out_dir),
            "ok": self.ok,
            "steps": [
                self.results[s.name].to_dict()
                if s.name in self.results
                else {
                    "name": s.name,
                    "kind": s.kind,
                    "status": "failed" if s.name in self.failed else "skipped",
                    "error": self.failed.get(s.name),
                }
                for s in self.pipeline.steps
            ],
            "seconds": round(self.seconds, 3),
        }


def _upstream_refs(pipeline: Pipeline) -> dict[str, DatasetRef]:
    """Commit to every upstream dataset and check it against its pin, before any step runs."""
    from glassbox.digest import commit_dataset

    refs = {}
    for index, (name, up) in enumerate(pipeline.upstream.items()):
        commitment = commit_dataset(up.path, fmt=up.format)
        root = commitment.root.hex()
        if root != up.commitment:
            raise VerificationError(
                f"{pipeline.where('upstream', index, 'commitment')}: upstream {name!r} "
                f"({up.relpath}) does not match its pinned commitment {up.commitment[:16]}…: "
                f"its records commit to {root}"
            )
        refs[f"upstream.{name}"] = DatasetRef(
            f"upstream.{name}", up.path, root, commitment.size, commitment.fmt, up.key, up.licence
        )
    return refs


def run_pipeline(
    path: str | Path,
    out_dir: str | Path,
    *,
    key: Any = None,
    jobs: int = 2,
    force: bool = False,
    timeout: float | None = None,
    listener: Listener | None = None,
    until: str | None = None,
) -> PipelineRun:
    """Run what is out of date (everything with ``force``); see the module docstring.

    ``until`` runs only that step and the steps it depends on (a labeller signs what the
    steps before the label step produced, so a first run stops there).
    """
    pipeline = load_pipeline(path)
    wanted = _ancestors(pipeline, until) if until else {s.name for s in pipeline.steps}
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    notify = listener or (lambda _s, _e, _m: None)
    started = time.perf_counter()
    run = PipelineRun(pipeline, out)
    datasets = _upstream_refs(pipeline)
    pending = {s.name: s for s in pipeline.steps if s.name in wanted}
    running: dict[Future[StepResult], Step] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            for name, step in list(pending.items()):
                deps = step.depends_on()
                if deps & (set(run.failed) | set(run.skipped)):
                    run.skipped.append(name)
                    notify(name, "skipped", "an earlier step failed")
                    del pending[name]
                elif deps <= set(run.results):
                    del pending[name]
                    notify(name, "start", f"{step.kind}: checking inputs")
                    running[
                        pool.submit(_one, pipeline, step, run, datasets, out, key, force, timeout)
                    ] = step
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step = running.pop(future)
                try:
                    result = future.result()
                except GlassboxError as exc:
                    run.failed[step.name] = str(exc)
                    notify(step.name, "failed", str(exc))
                    continue
                run.results[step.name] = result
                for stem, dataset in result.outputs.items():
                    datasets[f"{step.name}.{stem}"] = dataset
                notify(step.name, result.status, result.note)
    run.seconds = time.perf_counter() - started
    write_lock(run)
    return run


def _ancestors(pipeline: Pipeline, name: str) -> set[str]:
    names = {s.name for s in pipeline.steps}
    if name not in names:
        raise InputError(f"{pipeline.source}: no step named {name!r} (steps: {', '.join(names)})")
    out, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in out:
            out.add(current)
            todo.extend(pipeline.step(current).depends_on())
    return out


def _one(
    pipeline: Pipeline,
    step: Step,
    run: PipelineRun,
    datasets: dict[str, DatasetRef],
    out: Path,
    key: Any,
    force: bool,
    timeout: float | None,
) -> StepResult:
    inputs = {name: datasets[ref] for name, ref in step.inputs.items()}
    base = run.results.get(step.base) if step.base else None
    plan = plan_step(pipeline, step, inputs, base)
    step_key = plan.key()
    target = out / step.name
    if not force:
        found = reusable(target, step_key)
        if found is not None:
            found.note = "inputs and code unchanged: reused"
            return found
    if target.exists() and not (target / "step.json").is_file() and any(target.iterdir()):
        raise InputError(f"{target}: exists and is not a pipeline step's output; move it away")
    staging = out / f".{step.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        started = time.perf_counter()
        result = run_step(pipeline, plan, staging, signing_key=key, timeout=timeout)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        result = _moved(result, staging, target)
        result.seconds = time.perf_counter() - started
        result.note = "built"
        return result
    finally:
        if staging.exists():
            failed_log = staging / "step.log"
            if failed_log.exists():
                shutil.copy(failed_log, out / f"{step.name}.failed.log")
            shutil.rmtree(staging, ignore_errors=True)


def _moved(result: StepResult, old: Path, new: Path) -> StepResult:
    """The result with its paths moved from the staging directory to the step's own."""
    from dataclasses import replace

    result.out_dir = new
    result.outputs = {
        n: replace(d, path=new / d.path.relative_to(old)) for n, d in result.outputs.items()
    }
    return result


def _relative_to(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` (``..`` allowed), or absolute where there is no such path
    (another drive)."""
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:
        return str(path)


def write_lock(run: PipelineRun) -> Path:
    """``OUT/pipeline.lock.json``: where each step's outputs and provenance are, by digest."""
    pipeline = run.pipeline
    steps = []
    for step in pipeline.steps:
        result = run.results.get(step.name)
        if result is None:
            continue
        steps.append(
            {
                "name": step.name,
                "kind": step.kind,
                "inputs": dict(step.inputs),
                "base": step.base,
                "dir": step.name,
                "key": result.key,
                "files": result.files,
                "outputs": {
                    n: {
                        "ref": d.ref,
                        "file": d.path.relative_to(result.out_dir).as_posix(),
                        "root": d.root,
                        "records": d.size,
                        "key": d.key,
                    }
                    for n, d in result.outputs.items()
                },
                "allow": list(step.allow),
            }
        )
    lock = {
        "type": LOCK_TYPE,
        "pipelineType": PIPELINE_TYPE,
        "pipeline": {
            "name": pipeline.name,
            "version": pipeline.version,
            # Relative to the lock's directory, and each upstream path relative to the
            # pipeline file (as the pipeline file writes it): a run moved or copied together
            # with its pipeline still finds its upstream data (``lineage.upstream_path``).
            "path": _relative_to(pipeline.source.resolve(), run.out_dir.resolve()),
            "sha256": hash_file(pipeline.source).hex(),
        },
        "upstream": {
            name: {
                "path": up.relpath,
                "commitment": up.commitment,
                "licence": up.licence,
                "key": up.key,
            }
            for name, up in pipeline.upstream.items()
        },
        "labellers": sorted(pipeline.labellers),
        "steps": steps,
        "complete": run.ok,
    }
    path = run.out_dir / LOCK_NAME
    path.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    return path


@dataclass
class PipelineRebuild:
    """Every step run again from scratch and compared with the recorded outputs."""

    identical: bool
    first_difference: dict[str, Any] | None
    steps: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "first_difference": self.first_difference,
            "steps": self.steps,
        }


def rebuild_pipeline(
    path: str | Path,
    out_dir: str | Path,
    *,
    jobs: int = 2,
    timeout: float | None = None,
    work_dir: str | Path | None = None,
    listener: Listener | None = None,
) -> PipelineRebuild:
    """Re-run every step into a scratch directory; report the first step whose bytes differ."""
    out = Path(out_dir).absolute()
    lock_path = out / LOCK_NAME
    if not lock_path.is_file():
        raise InputError(f"{out}: no {LOCK_NAME}; run the pipeline first (glassbox pipeline run)")
    try:
        recorded = {s["name"]: s for s in json.loads(lock_path.read_text())["steps"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{lock_path}: unreadable pipeline lock: {exc}") from None
    work = (
        Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="glassbox-pipeline-rebuild-"))
    )
    try:
        run = run_pipeline(path, work, jobs=jobs, force=True, timeout=timeout, listener=listener)
        rows: list[dict[str, Any]] = []
        first: dict[str, Any] | None = None
        for step in run.pipeline.steps:
            row: dict[str, Any] = {"step": step.name, "kind": step.kind}
            old = recorded.get(step.name)
            new = run.results.get(step.name)
            if new is None:
                row["verdict"] = "failed" if step.name in run.failed else "skipped"
                row["error"] = run.failed.get(step.name, "an earlier step failed")
            elif old is None:
                row["verdict"] = "not-recorded"
            else:
                differ = sorted(
                    n
                    for n in set(old["files"]) | set(new.files)
                    if old["files"].get(n) != new.files.get(n)
                )
                row["verdict"] = "identical" if not differ else "differs"
                if differ:
                    row["files"] = differ
            rows.append(row)
            if first is None and row["verdict"] != "identical":
                first = row
        return PipelineRebuild(first is None, first, rows)
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
