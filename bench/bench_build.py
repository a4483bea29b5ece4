"""What recording a build costs, and what a spot-check costs.

1. Recording overhead. The digits example's training loop run *bare* (plain PyTorch: the same
   model, optimizer, batches and step count, no context) is the anchor; the same loop run
   through Glassbox's ``TrainingContext`` (checkpoint trail: full-state digest and data-index
   digest every interval) with the hermeticity audit hook installed is compared with it. The two
   loops run in one process, interleaved in blocks of steps, so that other load on a shared
   machine slows both alike, and their CPU time is summed per loop. An audit hook cannot be
   removed once installed, so both loops run under it; its cost per event is calibrated first
   and taken out of the anchor. A second bare loop interleaved the same way (the A/A control)
   shows the bench's own bias and noise. Printed: the ratio (goal: overhead under 5%), median
   over a few fresh processes, split into the audit hook (calibrated cost per event times events
   per step), trail entries (timed where they run) and the per-step API (the rest).
2. Spot-check cost. The example is built once with checkpoints kept, then spot-checked with K
   segments; printed: the fraction of training steps replayed and of training time, and the
   wall time of the check (which also pays interpreter start-up and input hashing).

Usage: ``python bench/bench_build.py [--steps 3000] [--interval 50] [--rounds 5] [--k 1 4]
[--only overhead|spot-check]``.
Timings on a shared machine are noisy: run it on an idle one for numbers you quote.
"""

from __future__ import annotations

import argparse
import json
import os
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


def worker(steps: int, interval: int, block: int) -> dict[str, float]:
    """Both loops in one process, interleaved in blocks of steps, so neighbours on a shared
    machine slow both alike; CPU time (single-threaded) is measured per block and summed."""
    import timeit

    import torch

    from glassbox.pipeline.context import DatasetView, TrainingContext, derive_seed
    from glassbox.pipeline.hermetic import Recorder, install

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x, y = _data()
    loss_fn = torch.nn.CrossEntropyLoss()
    batch, lr, momentum, seed = 32, 0.05, 0.9, 1
    sys.path.insert(0, str(EXAMPLE))
    from model import build  # type: ignore[import-not-found]

    # Anchor: plain PyTorch, same model, optimizer and batches. A second, identical bare loop
    # (the A/A control) runs interleaved the same way: its ratio to the anchor is the bench's
    # own bias and noise, printed beside the recorded loop's.
    per_epoch = len(x) // batch
    perms: dict[int, Any] = {}

    def bare_loop() -> Any:
        torch.manual_seed(seed)
        model = build(hidden=32)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

        def bare_step(step: int) -> None:
            epoch, pos = divmod(step, per_epoch)
            if epoch not in perms:
                perms.clear()
                gen = torch.Generator().manual_seed(derive_seed(seed, "batches", "train", epoch))
                perms[epoch] = torch.randperm(len(x), generator=gen)
            idx = perms[epoch][pos * batch : (pos + 1) * batch]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()

        return bare_step

    bare_step = bare_loop()
    control_step = bare_loop()

    # Recorded: the same loop through the training context, trail entry every ``interval``.
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
    # Trail entries are timed where they happen (inside the step loop), for the breakdown.
    entry_cpu = [0.0]
    record = ctx._record

    def timed_record() -> None:
        before = time.process_time()
        record()
        entry_cpu[0] += time.process_time() - before

    ctx._record = timed_record  # type: ignore[method-assign]

    # The audit hook's cost per event is CPython's (a do-nothing C callable as the hook costs
    # the same); calibrate it on ``id()`` (which raises one) before and after installing it,
    # then count events per training step.
    calls = 200_000
    plain = min(timeit.repeat("id(1)", number=calls, repeat=5)) / calls
    recorder = Recorder()
    install(recorder)
    hooked = min(timeit.repeat("id(1)", number=calls, repeat=5)) / calls
    events = [0]

    def count(event: str, args: tuple[Any, ...]) -> None:
        events[0] += 1

    steps_iter = iter(ctx.steps(steps))
    bare_cpu = control_cpu = recorded_cpu = 0.0
    for start in range(0, steps, block):
        stop = min(start + block, steps)
        before = time.process_time()
        for step in range(start, stop):
            bare_step(step)
        bare_cpu += time.process_time() - before
        before = time.process_time()
        for _ in range(start, stop):
            step = next(steps_iter)
            idx = ctx.batch_indices(step, batch, "train")
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        if stop == steps:
            next(steps_iter, None)  # the final trail entry
        recorded_cpu += time.process_time() - before
        before = time.process_time()
        for step in range(start, stop):
            control_step(step)
        control_cpu += time.process_time() - before
    sys.addaudithook(count)  # only now: counting must not slow the timed loops
    for step in range(steps, steps + 100):
        bare_step(step)
    per_step_events = events[0] / 100
    hook_cost = max(hooked - plain, 0.0)
    # Both loops ran with the hook installed: take its (calibrated) cost out of the anchors.
    hook_total = steps * per_step_events * hook_cost
    return {
        "bare_cpu": bare_cpu - hook_total,
        "control_cpu": control_cpu - hook_total,
        "recorded_cpu": recorded_cpu,
        "entry_cpu": entry_cpu[0],
        "entries": float(len(ctx.trail)),
        "events_per_step": per_step_events,
        "hook_cost_s": hook_cost,
    }


def overhead(steps: int, interval: int, rounds: int, block: int) -> None:
    runs = []
    for _ in range(rounds):
        command = [sys.executable, __file__, "--worker", "--steps", str(steps)]
        command += ["--interval", str(interval), "--block", str(block)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = runs[0]
    print(
        f"training loop, {steps} steps, trail entry every {interval} steps "
        f"({first['entries']:.0f} entries); loops interleaved in blocks of {block} steps "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    med = statistics.median
    bare = [r["bare_cpu"] for r in runs]
    print(f"  bare PyTorch loop (anchor)      CPU median {med(bare) * 1000:7.1f} ms")
    print(
        f"  recorded (trail + hook + API)   CPU median "
        f"{med(r['recorded_cpu'] for r in runs) * 1000:7.1f} ms"
    )
    ratios = [r["recorded_cpu"] / r["bare_cpu"] for r in runs]
    control = [r["control_cpu"] / r["bare_cpu"] for r in runs]
    # Where the overhead goes, per process then the median: the audit hook is its calibrated
    # cost per event times the events per step; trail entries are timed where they run; the
    # rest is the per-step API (step loop, batch indices, data-index bookkeeping).
    hook = [r["events_per_step"] * r["hook_cost_s"] * steps / r["bare_cpu"] for r in runs]
    trail = [r["entry_cpu"] / r["bare_cpu"] for r in runs]
    rest = [q - 1 - h - t for q, h, t in zip(ratios, hook, trail, strict=True)]
    print(
        f"  audit hook: {first['events_per_step']:.1f} events/step (torch's Tensor.__hash__ "
        f"calls id()) x {med(r['hook_cost_s'] for r in runs) * 1e9:.0f} ns per event"
    )
    print(
        f"  of the overhead: audit hook {med(hook):.1%}, trail entries "
        f"({first['entries']:.0f} state + data digests) {med(trail):.1%}, per-step API "
        f"{med(rest):.1%} of the bare loop"
    )
    ratio = med(ratios)
    verdict = "MET" if ratio < 1.05 else "NOT MET"
    print(
        f"  A/A control (a second bare loop, same interleaving): ratio {med(control):.3f} "
        f"(the bench's own bias); per-process {[round(c, 3) for c in control]}"
    )
    print(
        f"  ratio recorded / bare = {ratio:.3f} (median of {rounds} processes; "
        f"overhead {100 * (ratio - 1):+.1f}%, goal < 5%: {verdict}); per-process ratios "
        f"{[round(r, 3) for r in ratios]}"
    )


def spot_check_cost(ks: list[int], steps: int, interval: int) -> None:
    from glassbox.pipeline import build, spot_check

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
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--interval", type=int, default=50)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--k", type=int, nargs="*", default=[1, 4])
    parser.add_argument(
        "--only",
        choices=["overhead", "spot-check"],
        help="Run one part: the recording overhead, or the spot-check cost.",
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.steps, args.interval, args.block)))
        return
    if args.only != "spot-check":
        overhead(args.steps, args.interval, args.rounds, args.block)
    if args.only != "overhead":
        spot_check_cost(args.k, args.steps, args.interval * 4)


if __name__ == "__main__":
    main()
