"""The training process: ``python -m glassbox.pipeline.child JOB.json``.

Runs in a fresh interpreter so that the audit hook is installed before anything else is
imported, thread pools are sized before torch creates them, and nothing the parent process
loaded leaks into the build. It reads a job description, runs the recipe's entry point (a full
build, or one or more replayed segments), and writes a result JSON; the parent judges it.
"""

from __future__ import annotations

import sys

from glassbox.pipeline.hermetic import Recorder, install

_RECORDER = Recorder()
install(_RECORDER)
sys.dont_write_bytecode = True

import contextlib  # noqa: E402 - after the hook on purpose: these reads are recorded too
import json  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


def _load_datasets(job: dict[str, Any]) -> dict[str, Any]:
    from glassbox.pipeline.context import DatasetView

    views = {}
    for spec in job["datasets"]:
        path = Path(spec["path"])
        # Lazy: nothing is read until the training code asks (see DatasetView).
        views[spec["name"]] = DatasetView(
            spec["name"], path, spec.get("format"), None, spec.get("records")
        )
    return views


def _run(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    threads = int(job["threads"])
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)

    from glassbox.pipeline import environment
    from glassbox.pipeline.context import SegmentDone, TrainingContext, import_callable
    from glassbox.pipeline.hermetic import classify, environment_roots
    from glassbox.pipeline.trail import TrainingState

    with _RECORDER.paused():
        env = environment.capture(threads)
        env_roots = environment_roots()
    datasets = _load_datasets(job)
    code_dir = Path(job["code_dir"])
    entry = import_callable(code_dir, job["entry"])
    output_dir = Path(job["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)

    def context(start: TrainingState | None, stop: int | None, ckpt: str | None) -> TrainingContext:
        return TrainingContext(
            params=job["params"],
            seed=int(job["seed"]),
            code_dir=code_dir,
            factory=job["factory"],
            model_config=job["model_config"],
            datasets=datasets,
            output_dir=output_dir,
            base_model=Path(job["base_model"]) if job.get("base_model") else None,
            checkpoint_interval=int(job["interval"]),
            checkpoint_dir=Path(ckpt) if ckpt else None,
            start=start,
            stop_step=stop,
        )

    result: dict[str, Any] = {"environment": env}
    if job["mode"] == "build":
        ctx = context(None, None, job.get("checkpoint_dir"))
        started = time.perf_counter()
        entry(ctx)
        result["seconds"] = time.perf_counter() - started
        if not ctx.trail:
            raise RuntimeError("the entry point never ran ctx.steps(): no checkpoint trail")
        result["trail"] = [e.to_dict() for e in ctx.trail]
    else:
        segments = []
        for seg in job["segments"]:
            # No checkpoint: re-derive the initial state (step 0) from the recipe itself.
            start_state = TrainingState.load(Path(seg["checkpoint"])) if seg["checkpoint"] else None
            ctx = context(start_state, int(seg["stop"]), None)
            started = time.perf_counter()
            with contextlib.suppress(SegmentDone):
                entry(ctx)
            seconds = time.perf_counter() - started
            segments.append(
                {
                    "start": ctx.start_step,
                    "stop": int(seg["stop"]),
                    "reached": ctx.step,
                    "seconds": seconds,
                    "trail": [e.to_dict() for e in ctx.trail],
                }
            )
        result["segments"] = segments
    _RECORDER.active = False
    herm = classify(
        _RECORDER.opened,
        _RECORDER.refused,
        declared_files=job["declared_files"],
        declared_roots=job["declared_roots"],
        internal_roots=job["internal_roots"],
        environment=env_roots,
    )
    result["hermeticity"] = herm.to_dict()
    return result


def _run_step(job: dict[str, Any]) -> dict[str, Any]:
    """A pipeline data step: no torch, no trail; the same audit hook and refusals."""
    from glassbox.pipeline.context import import_callable
    from glassbox.pipeline.environment import capture_basic
    from glassbox.pipeline.hermetic import classify, environment_roots
    from glassbox.pipeline.step_context import InputDataset, StepContext

    with _RECORDER.paused():
        env = capture_basic()
        env_roots = environment_roots()
    if job.get("builtin") == "label":
        from glassbox.pipeline.labels import apply_labels as entry
    else:
        entry = import_callable(Path(job["code_dir"]), job["entry"])
    output_dir = Path(job["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    ctx = StepContext(
        params=job["params"],
        seed=int(job["seed"]),
        inputs={
            i["name"]: InputDataset(i["name"], Path(i["path"]), i.get("format"))
            for i in job["inputs"]
        },
        outputs=job["outputs"],
        output_dir=output_dir,
    )
    started = time.perf_counter()
    entry(ctx)
    result: dict[str, Any] = {"environment": env, "seconds": time.perf_counter() - started}
    _RECORDER.active = False
    herm = classify(
        _RECORDER.opened,
        _RECORDER.refused,
        declared_files=job["declared_files"],
        declared_roots=job["declared_roots"],
        internal_roots=job["internal_roots"],
        environment=env_roots,
    )
    result["hermeticity"] = herm.to_dict()
    return result


def main(argv: list[str]) -> int:
    job_path = Path(argv[1])
    job = json.loads(job_path.read_text())
    result_path = Path(job["result"])
    status = 0
    try:
        result = _run_step(job) if job["mode"] == "step" else _run(job)
    except BaseException as exc:  # report everything, including SystemExit from training code
        _RECORDER.active = False
        result = {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=20),
            "refused": list(_RECORDER.refused),
        }
        status = 1
    if _RECORDER.refused and "error" not in result:
        result["error"] = "training attempted a refused operation: " + "; ".join(_RECORDER.refused)
        status = 1
    result["refused"] = list(_RECORDER.refused)
    result_path.write_text(json.dumps(result, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
