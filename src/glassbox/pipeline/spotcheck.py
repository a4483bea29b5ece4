"""``glassbox spot-check``: replay K random segments of a training trail and check each one.

For a training too long to rebuild, a verifier picks segments at random (with their own seed,
so the producer cannot know which), loads the stored checkpoint at each segment's start, checks
it is the state the trail recorded, replays the segment and compares the state digest at its
end. A forged or swapped checkpoint fails the first check; a fabricated trail (states that
training did not produce) fails the replay. The trail's starting point is checked too: the
state at step 0 is re-derived from the recipe's code and seed, so a training that really ran,
but from other initial weights than the declared code makes, is caught even though each of its
segments replays. The cost is the fraction of training replayed (plus one model
initialisation).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.errors import GlassboxError, InputError
from glassbox.pipeline import environment as env_mod
from glassbox.pipeline.builder import training_job
from glassbox.pipeline.compare import load_safetensors, resolve_against
from glassbox.pipeline.inputs import ResolvedInputs
from glassbox.pipeline.provenance import CHECKPOINT_DIR, MODEL_DIR, Provenance, load_provenance
from glassbox.pipeline.recipe import Recipe
from glassbox.pipeline.runner import ChildSettings, run_child
from glassbox.pipeline.trail import TrailEntry, TrainingState, checkpoint_name, weights_digest


@dataclass
class SegmentCheck:
    start: int
    stop: int
    passed: bool = False
    reason: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "stop": self.stop,
            "passed": self.passed,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class SpotCheckReport:
    seed: int
    segments_total: int
    checks: list[SegmentCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    environment_differences: list[str] = field(default_factory=list)
    total_steps: int = 0
    replayed_steps: int = 0
    replay_seconds: float = 0.0
    train_seconds: float = 0.0
    signature: str = ""
    initial_state_checked: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not self.problems and all(c.passed for c in self.checks)

    @property
    def compute_fraction(self) -> float:
        return self.replayed_steps / self.total_steps if self.total_steps else 0.0

    @property
    def time_fraction(self) -> float | None:
        return self.replay_seconds / self.train_seconds if self.train_seconds else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "seed": self.seed,
            "segments_total": self.segments_total,
            "segments_checked": len(self.checks),
            "checks": [c.to_dict() for c in self.checks],
            "problems": self.problems,
            "environment_differences": self.environment_differences,
            "total_steps": self.total_steps,
            "replayed_steps": self.replayed_steps,
            "compute_fraction": round(self.compute_fraction, 6),
            "time_fraction": None if self.time_fraction is None else round(self.time_fraction, 6),
            "signature": self.signature,
            "initial_state_checked": self.initial_state_checked,
        }


def choose_segments(count: int, k: int, seed: int) -> list[int]:
    """``k`` distinct segment indices out of ``count``, chosen by the verifier's seed."""
    if k < 1:
        raise InputError("--segments must be at least 1")
    chooser = random.Random(seed)  # noqa: S311 - a seeded, reproducible choice
    return sorted(chooser.sample(range(count), min(k, count)))


def _check_output_link(prov: Provenance, final: TrailEntry, original: Path) -> str | None:
    """The trail must end at the published weights, or it could be any training's trail."""
    weights = [n for n in prov.subjects() if n.endswith(".safetensors")]
    if not weights:
        return None
    for name in weights:
        path = original / MODEL_DIR / name
        if not path.is_file():
            return None
        if weights_digest(load_safetensors(path)) == final.weights:
            return None
    return (
        f"the trail's final state (step {final.step}) is not the published weights "
        f"({', '.join(weights)}): the trail belongs to another training"
    )


def spot_check(
    provenance_path: str | Path,
    *,
    segments: int,
    seed: int | None = None,
    checkpoints_dir: str | Path | None = None,
    recipe_dir: str | Path | None = None,
    public_key: Path | None = None,
    timeout: float | None = None,
) -> SpotCheckReport:
    prov = load_provenance(provenance_path, public_key)
    trail = prov.trail
    seed = seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
    ckpts = (
        Path(checkpoints_dir) if checkpoints_dir else prov.path.parent / CHECKPOINT_DIR
    ).absolute()
    pairs = trail.segments()
    report = SpotCheckReport(
        seed=seed,
        segments_total=len(pairs),
        total_steps=trail.total_steps,
        train_seconds=prov.train_seconds,
        signature="verified" if prov.signed_by else "not checked",
    )
    if not pairs:
        raise InputError(f"{prov.path}: the checkpoint trail has no segments to check")
    if not ckpts.is_dir():
        raise InputError(
            f"{ckpts}: no stored checkpoints (build with --keep-checkpoints, or pass --checkpoints)"
        )
    link = _check_output_link(prov, trail.entries[-1], prov.path.parent)
    if link:
        report.problems.append(link)
    work = Path(tempfile.mkdtemp(prefix="glassbox-spotcheck-"))
    try:
        recipe, inputs, changes = resolve_against(
            prov, Path(recipe_dir) if recipe_dir else None, [work, prov.path.parent, ckpts]
        )
        report.problems.extend(f"input differs from provenance: {c}" for c in changes)
        chosen = [pairs[i] for i in choose_segments(len(pairs), segments, seed)]
        runnable: list[tuple[SegmentCheck, TrailEntry, Path]] = []
        for start, stop in chosen:
            check = SegmentCheck(start.step, stop.step)
            report.checks.append(check)
            path = ckpts / checkpoint_name(start.step)
            end_path = ckpts / checkpoint_name(stop.step)
            # The end checkpoint is optional (not every step keeps one); the start one is not.
            problem = _checkpoint_problem(path, start)
            if problem is None and end_path.is_file():
                problem = _checkpoint_problem(end_path, stop)
            if problem is not None:
                check.reason = problem
                continue
            runnable.append((check, stop, path))
        if runnable and not changes:
            _replay(prov, recipe, inputs, runnable, ckpts, work, report, timeout)
        elif changes:
            for check, _, _ in runnable:
                check.reason = "not replayed: inputs differ from the provenance"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _checkpoint_problem(path: Path, entry: TrailEntry) -> str | None:
    """Why the stored checkpoint at ``path`` is not ``entry``'s recorded state, or None."""
    try:
        digest = TrainingState.load(path).digest()
    except GlassboxError as exc:
        return str(exc)
    if digest != entry.state:
        return (
            f"stored checkpoint at step {entry.step} is not the state the trail records "
            "(forged or swapped checkpoint)"
        )
    return None


def _replay(
    prov: Provenance,
    recipe: Recipe,
    inputs: ResolvedInputs,
    runnable: list[tuple[SegmentCheck, TrailEntry, Path]],
    ckpts: Path,
    work: Path,
    report: SpotCheckReport,
    timeout: float | None,
) -> None:
    job = training_job(
        recipe,
        inputs,
        mode="replay",
        output_dir=work / "outputs",
        checkpoint_dir=None,
        internal=[work, ckpts],
    )
    # First an empty segment from no checkpoint at all: the state the recipe's code and seed
    # produce at step 0. Replays only check steps *from* stored states; this checks the start.
    job["segments"] = [{"checkpoint": None, "stop": 0}] + [
        {"checkpoint": str(path), "stop": stop.step} for _, stop, path in runnable
    ]
    settings = ChildSettings(
        threads=int(prov.internal["threads"]),
        cpu_capability=str(prov.internal["cpuCapability"]),
        timeout=timeout,
    )
    result = run_child(job, settings, work / "run")
    report.environment_differences = env_mod.differences(prov.environment, result["environment"])
    initial, *replays = result["segments"]
    first = prov.trail.entries[0]
    derived = next((TrailEntry.from_dict(e) for e in initial["trail"] if e["step"] == 0), None)
    if first.step != 0 or derived is None or derived.state != first.state:
        report.problems.append(
            "the trail's initial state (step 0) is not what the recipe's code and seed produce: "
            "training did not start where the provenance says"
        )
    else:
        report.initial_state_checked = True
    for (check, stop, _), seg in zip(runnable, replays, strict=True):
        check.seconds = float(seg["seconds"])
        report.replay_seconds += check.seconds
        report.replayed_steps += check.stop - check.start
        replayed = [TrailEntry.from_dict(e) for e in seg["trail"]]
        end = next((e for e in replayed if e.step == stop.step), None)
        if end is None:
            check.reason = f"replay did not reach step {stop.step} (stopped at {seg['reached']})"
        elif end.data != stop.data:
            check.reason = (
                "replay used different data indices than the trail records for steps "
                f"{check.start}-{check.stop}"
            )
        elif end.state != stop.state:
            why = (
                "; environment differs, exact replay not expected"
                if report.environment_differences
                else ""
            )
            check.reason = f"replayed state at step {stop.step} does not match the trail{why}"
        else:
            check.passed = True
            check.reason = "replayed state matches the trail"
