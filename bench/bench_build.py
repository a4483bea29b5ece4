"""What recording a build costs, and what a spot-check costs.

1. Recording overhead. The digits example's training loop run *bare* (plain PyTorch: the same
   model, optimizer, batches and step count, no context, no audit hook) is the anchor; the same
   loop run through Glassbox's ``TrainingContext`` (checkpoint trail: full-state digest and
   data-index digest every interval) with the hermeticity audit hook installed is compared with
   it. Each configuration runs in its own fresh interpreter (an audit hook cannot be removed),
   alternating, and only the training loop is timed; the ratio of medians is printed (goal:
   overhead under 5%).
2. Spot-check cost. The example is built once with checkpoints kept, then spot-checked with K
   segments; printed: the fraction of training steps replayed and of training time, and the
   wall time of the check (which also pays interpreter start-up and input hashing).

Usage: ``python bench/bench_build.py [--steps 3000] [--interval 50] [--rounds 9] [--k 1 4]``.
Timings on a shared machine are noisy: run it on an idle one for numbers you quote.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"


def _data() -> tuple[Any, Any]:
    sys.path.insert(0, str(EXAMPLE))
    from train import tensors  # type: ignore[import-not-found]

    from glassbox.digest import iter_records

    records = [
        json.loads(r) for r in iter_records(EXAMPLE / "data" / "digits-train.jsonl", "jsonl")
    ]
    return tensors(records)


def worker(mode: str, steps: int, interval: int) -> dict[str, float]:
    """One timed training loop in this (fresh) process."""
    import torch

    from glassbox.build.context import DatasetView, TrainingContext, derive_seed

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x, y = _data()
    loss_fn = torch.nn.CrossEntropyLoss()
    batch, lr, momentum, seed = 32, 0.05, 0.9, 1
    if mode == "bare":
        torch.manual_seed(seed)
        sys.path.insert(0, str(EXAMPLE))
        from model import build  # type: ignore[import-not-found]

        model = build(hidden=32)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        per_epoch = len(x) // batch
        perm: Any = None
        started, cpu = time.perf_counter(), time.process_time()
        for step in range(steps):
            epoch, pos = divmod(step, per_epoch)
            if pos == 0 or perm is None:
                gen = torch.Generator().manual_seed(derive_seed(seed, "batches", "train", epoch))
                perm = torch.randperm(len(x), generator=gen)
            idx = perm[pos * batch : (pos + 1) * batch]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}

    from glassbox.build.hermetic import Recorder, install

    install(Recorder())
    view = DatasetView("train", EXAMPLE, "jsonl", tuple(b"" for _ in range(len(x))))
    ctx = TrainingContext(
        params={},
        seed=seed,
        code_dir=EXAMPLE,
        factory="model:build",
        model_config={"hidden": 32},
        datasets={"train": view},
        output_dir=Path(tempfile.mkdtemp()),
        checkpoint_interval=interval,
    )
    model = ctx.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    ctx.track(model, opt)
    # Direct accounting, immune to neighbours: CPU time spent writing trail entries.
    trail_cpu = [0.0]
    record = ctx._record

    def timed_record() -> None:
        before = time.process_time()
        record()
        trail_cpu[0] += time.process_time() - before

    ctx._record = timed_record  # type: ignore[method-assign]
    started, cpu = time.perf_counter(), time.process_time()
    for step in ctx.steps(steps):
        idx = ctx.batch_indices(step, batch, "train")
        opt.zero_grad()
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "entries": float(len(ctx.trail)),
        "trail_cpu": trail_cpu[0],
    }


def overhead(steps: int, interval: int, rounds: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "recorded": []}
    for _ in range(rounds):
        for mode in ("bare", "recorded"):
            command = [sys.executable, __file__, "--worker", mode]
            command += ["--steps", str(steps), "--interval", str(interval)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    entries = runs["recorded"][0]["entries"]
    print(
        f"training loop, {steps} steps, trail entry every {interval} steps ({entries:.0f} entries)"
    )
    # CPU time of the (single-threaded) loop is the measure: wall time on a shared machine
    # mostly measures the neighbours. Minimum = least disturbed run; median shown beside it.
    summary = {}
    for label, mode in (
        ("bare PyTorch loop (anchor)   ", "bare"),
        ("recorded (trail + audit hook)", "recorded"),
    ):
        cpu = [r["cpu"] for r in runs[mode]]
        wall = [r["seconds"] for r in runs[mode]]
        summary[mode] = (min(cpu), statistics.median(cpu), statistics.median(wall))
        print(
            f"  {label}  CPU min {min(cpu) * 1000:7.1f} ms, "
            f"median {statistics.median(cpu) * 1000:7.1f} ms; "
            f"wall median {statistics.median(wall) * 1000:7.1f} ms"
        )
    for i, name in ((0, "CPU min"), (1, "CPU median"), (2, "wall median")):
        ratio = summary["recorded"][i] / summary["bare"][i]
        print(
            f"  ratio recorded / bare ({name}) = {ratio:.3f}  (overhead {100 * (ratio - 1):+.1f}%)"
        )
    share = statistics.median(r["trail_cpu"] / r["cpu"] for r in runs["recorded"])
    print(
        f"  trail entries' share of the recorded loop's CPU time (in-process): {100 * share:.2f}%"
    )
    print("  goal: overhead under 5%")


def spot_check_cost(ks: list[int], steps: int, interval: int) -> None:
    from glassbox.build import build, spot_check

    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        code = work / "digits"
        shutil.copytree(EXAMPLE, code, ignore=shutil.ignore_patterns("__pycache__"))
        recipe = code / "recipe.toml"
        text = recipe.read_text().replace("steps = 400", f"steps = {steps}")
        recipe.write_text(
            text.replace("checkpoint_interval = 50", f"checkpoint_interval = {interval}")
        )
        started = time.perf_counter()
        result = build(recipe, work / "out", keep_checkpoints=True)
        wall = time.perf_counter() - started
        print(
            f"build: {steps} steps, {len(result.trail.entries) - 1} segments, "
            f"training {result.seconds:.2f} s, wall {wall:.1f} s "
            "(process start-up, input hashing, provenance)"
        )
        for k in ks:
            started = time.perf_counter()
            report = spot_check(work / "out", segments=k, seed=k)
            wall = time.perf_counter() - started
            assert report.passed, report.to_dict()
            print(
                f"  spot-check K={k}: compute fraction {report.compute_fraction:.3f} of steps, "
                f"{report.time_fraction or 0:.3f} of training time; wall {wall:.1f} s"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=["bare", "recorded"])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--interval", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--k", type=int, nargs="*", default=[1, 4])
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.interval)))
        return
    overhead(args.steps, args.interval, args.rounds)
    spot_check_cost(args.k, args.steps, args.interval * 4)


if __name__ == "__main__":
    main()
