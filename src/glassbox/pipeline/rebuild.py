"""``glassbox rebuild``: run the recorded build again from local inputs and compare.

Exact comparison is the default and the only strong result: every trail state digest and every
output byte must match. Only when the environment cannot be matched (another torch build, CPU
kernel path, thread count) are weights compared within a stated tolerance, and that result is
reported as weaker, because tolerance-based Proof-of-Learning checks have published spoofing
attacks.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.digest import hash_model
from glassbox.errors import VerificationError
from glassbox.pipeline import environment as env_mod
from glassbox.pipeline.builder import collect_outputs, train
from glassbox.pipeline.compare import (
    TensorDistance,
    load_safetensors,
    resolve_against,
    tensor_distance,
)
from glassbox.pipeline.provenance import CHECKPOINT_DIR, MODEL_DIR, Provenance, load_provenance
from glassbox.pipeline.runner import BuildFailed
from glassbox.pipeline.trail import TrailEntry, TrainingState, checkpoint_name

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4

BIT_IDENTICAL = "bit-identical"
WITHIN_TOLERANCE = "within-tolerance"
OUTSIDE_TOLERANCE = "outside-tolerance"
DIVERGED = "diverged"
INPUTS_DIFFER = "inputs-differ"


@dataclass
class RebuildReport:
    verdict: str
    exact: bool
    signature: str
    input_changes: list[str] = field(default_factory=list)
    environment_differences: list[str] = field(default_factory=list)
    first_divergence: dict[str, Any] | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    tolerance: dict[str, Any] | None = None
    threads: int = 0
    cpu_capability: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict in (BIT_IDENTICAL, WITHIN_TOLERANCE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "ok": self.ok,
            "exact": self.exact,
            "strength": "exact" if self.exact else "tolerance (weaker than bit-identical)",
            "signature": self.signature,
            "input_changes": self.input_changes,
            "environment_differences": self.environment_differences,
            "first_divergence": self.first_divergence,
            "outputs": self.outputs,
            "tolerance": self.tolerance,
            "threads": self.threads,
            "cpu_capability": self.cpu_capability,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


def _signature_note(prov: Provenance) -> str:
    if prov.signed_by:
        return f"verified (key {prov.signed_by[:16]})"
    if prov.path.name.endswith(".sigstore.json"):
        return "not checked (no public key given)"
    return "unsigned"


def _distance_at(
    step: int, original_ckpts: Path, rebuilt_ckpts: Path
) -> tuple[TensorDistance, float] | None:
    original = original_ckpts / checkpoint_name(step)
    rebuilt = rebuilt_ckpts / checkpoint_name(step)
    if not (original.is_file() and rebuilt.is_file()):
        return None
    return tensor_distance(
        TrainingState.load(original).weights(), TrainingState.load(rebuilt).weights()
    )


def compare_trails(
    recorded: tuple[TrailEntry, ...],
    rebuilt: tuple[TrailEntry, ...],
    original_ckpts: Path,
    rebuilt_ckpts: Path,
) -> dict[str, Any] | None:
    """The first trail entry where the rebuilt run left the recorded one, with its size."""
    previous = 0
    for index in range(max(len(recorded), len(rebuilt))):
        if index >= len(recorded) or index >= len(rebuilt):
            return {
                "step": (rebuilt[index] if index < len(rebuilt) else recorded[index]).step,
                "reason": f"trail length differs: recorded {len(recorded)} entries, "
                f"rebuilt {len(rebuilt)}",
            }
        a, b = recorded[index], rebuilt[index]
        if a == b:
            previous = a.step
            continue
        found: dict[str, Any] = {
            "step": a.step,
            "after_step": previous,
            "recorded_state": a.state,
            "rebuilt_state": b.state,
            "weights_differ": a.weights != b.weights,
            "data_differs": a.data != b.data,
        }
        if a.step != b.step:
            found["reason"] = f"checkpoint steps differ: recorded {a.step}, rebuilt {b.step}"
        elif a.data != b.data:
            found["reason"] = "the run used different data indices in this segment"
        else:
            found["reason"] = "same data, different training state"
        distance = _distance_at(a.step, original_ckpts, rebuilt_ckpts)
        if distance is not None:
            found["divergence"] = distance[0].to_dict()
        return found
    return None


def rebuild(
    provenance_path: str | Path,
    *,
    recipe_dir: str | Path | None = None,
    public_key: Path | None = None,
    original_dir: str | Path | None = None,
    threads: int | None = None,
    cpu_capability: str | None = None,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    work_dir: str | Path | None = None,
    timeout: float | None = None,
) -> RebuildReport:
    """Re-run a recorded build; ``threads``/``cpu_capability`` override the recorded ones (which
    makes the comparison a tolerance one)."""
    prov = load_provenance(provenance_path, public_key)
    original = Path(original_dir) if original_dir else prov.path.parent
    work = (
        Path(work_dir).absolute()
        if work_dir
        else Path(tempfile.mkdtemp(prefix="glassbox-rebuild-"))
    )
    try:
        return _rebuild(
            prov,
            Path(recipe_dir) if recipe_dir else None,
            original,
            work,
            threads,
            cpu_capability,
            atol,
            rtol,
            timeout,
        )
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _rebuild(
    prov: Provenance,
    recipe_dir: Path | None,
    original: Path,
    work: Path,
    threads: int | None,
    cpu_capability: str | None,
    atol: float,
    rtol: float,
    timeout: float | None,
) -> RebuildReport:
    recipe, inputs, changes = resolve_against(prov, recipe_dir, [work, original])
    internal = prov.internal
    use_threads = threads or int(internal["threads"])
    use_capability = cpu_capability or str(internal["cpuCapability"])
    rebuilt_ckpts = work / CHECKPOINT_DIR
    report = RebuildReport(
        verdict=BIT_IDENTICAL,
        exact=True,
        signature=_signature_note(prov),
        input_changes=changes,
        threads=use_threads,
        cpu_capability=use_capability,
    )
    try:
        result = train(
            recipe,
            inputs,
            work / "run",
            threads=use_threads,
            cpu_capability=use_capability,
            checkpoint_dir=rebuilt_ckpts,
            timeout=timeout,
        )
    except BuildFailed as exc:
        if not changes:
            raise
        # Changed inputs that break training are still an answer: name them.
        report.verdict, report.exact = INPUTS_DIFFER, False
        report.notes.append(f"the rebuild's training failed: {exc}")
        return report
    report.seconds = float(result["seconds"])
    original_herm = prov.hermeticity
    if not original_herm.hermetic:
        listed = ", ".join([*original_herm.undeclared_reads, *original_herm.refused][:5])
        report.notes.append(f"the recorded build was not hermetic: {listed}")
    rebuilt_herm = result["hermeticity"]
    if not rebuilt_herm["hermetic"]:
        listed = ", ".join(
            [*rebuilt_herm["undeclared_reads"], *rebuilt_herm["undeclared_writes"]][:5]
        )
        report.notes.append(f"the rebuild read or wrote undeclared files: {listed}")
    env_now = result["environment"]
    report.environment_differences = env_mod.differences(prov.environment, env_now)
    report.exact = not report.environment_differences
    recorded_trail = prov.trail
    rebuilt_trail = tuple(TrailEntry.from_dict(e) for e in result["trail"])
    report.first_divergence = compare_trails(
        recorded_trail.entries, rebuilt_trail, original / CHECKPOINT_DIR, rebuilt_ckpts
    )
    if not (original / CHECKPOINT_DIR).is_dir():
        report.notes.append(
            "original checkpoints not kept: divergence size measured on outputs only"
        )

    model_dir = work / MODEL_DIR
    try:
        collect_outputs(recipe, work / "run" / "outputs", model_dir)
    except VerificationError as exc:
        report.notes.append(str(exc))
    rebuilt: dict[str, str] = {}
    if any(p.is_file() for p in model_dir.rglob("*")):
        manifest = hash_model(model_dir, use_cache=False)
        rebuilt = {i.name: i.digest.hex() for i in manifest.items}
    recorded = prov.subjects()
    for name in sorted(recorded.keys() | rebuilt.keys()):
        if name not in rebuilt:
            report.outputs[name] = "missing"
        elif name not in recorded:
            report.outputs[name] = "extra"
        else:
            report.outputs[name] = "identical" if recorded[name] == rebuilt[name] else "differs"
    all_identical = all(v == "identical" for v in report.outputs.values())

    # Weights distance on outputs: the measure for tolerance mode, and the divergence size when
    # no checkpoints were kept.
    distances: dict[str, Any] = {}
    within = True
    for name, status in report.outputs.items():
        if status != "differs" or not name.endswith(".safetensors"):
            continue
        original_file = original / MODEL_DIR / name
        if not original_file.is_file():
            report.notes.append(f"original {name} not found under {original / MODEL_DIR}")
            within = False
            continue
        distance, ref_max = tensor_distance(
            load_safetensors(original_file), load_safetensors(model_dir / name)
        )
        distances[name] = distance.to_dict()
        within = within and distance.within(atol, rtol, ref_max)
    if (
        report.first_divergence is not None
        and "divergence" not in report.first_divergence
        and distances
    ):
        report.first_divergence["output_divergence"] = distances

    if changes:
        report.verdict = INPUTS_DIFFER
    elif report.exact:
        report.verdict = (
            BIT_IDENTICAL if all_identical and report.first_divergence is None else DIVERGED
        )
    else:
        weights_differ = any(
            s != "identical" for n, s in report.outputs.items() if n.endswith(".safetensors")
        )
        report.tolerance = {"atol": atol, "rtol": rtol, "outputs": distances}
        if all_identical and report.first_divergence is None:
            report.verdict = BIT_IDENTICAL
            report.notes.append("bit-identical even though the environment differs")
        else:
            report.verdict = (
                WITHIN_TOLERANCE if within and not _missing(report) else OUTSIDE_TOLERANCE
            )
            if not weights_differ:
                report.notes.append("weights are identical; other outputs differ")
    return report


def _missing(report: RebuildReport) -> bool:
    return any(s in ("missing", "extra") for s in report.outputs.values())
