"""Spot-checks: an honest trail passes; forged, swapped or unrelated trails are caught."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from glassbox.errors import InputError
from glassbox.pipeline import STATEMENT_NAME, TrainingState, spot_check
from glassbox.pipeline.spotcheck import choose_segments
from glassbox.pipeline.trail import checkpoint_name
from tests.pipeline.conftest import Built

pytestmark = pytest.mark.slow


def forgeable_copy(built: Built, dest: Path) -> Path:
    """The build output without its signature: what a producer controls completely."""
    shutil.copytree(built.out, dest)
    (dest / "provenance.sigstore.json").unlink()
    return dest


def rewrite_trail(out: Path, edit: Any) -> None:
    path = out / STATEMENT_NAME
    statement = json.loads(path.read_text())
    for item in statement["predicate"]["runDetails"]["byproducts"]:
        if item["name"] == "checkpoint-trail":
            edit(item["annotations"])
            raw = json.dumps(item["annotations"], sort_keys=True, separators=(",", ":")).encode()
            item["digest"] = {"sha256": hashlib.sha256(raw).hexdigest()}
    path.write_text(json.dumps(statement))


def test_honest_trail_passes(built: Built) -> None:
    report = spot_check(built.out, segments=2, seed=7)
    assert report.passed, report.to_dict()
    assert len(report.checks) == 2 and report.segments_total == 4
    assert report.compute_fraction == pytest.approx(0.5)
    assert report.to_dict()["time_fraction"] is not None
    assert all(c.reason == "replayed state matches the trail" for c in report.checks)
    assert report.initial_state_checked


def test_forged_checkpoint_with_matching_trail_is_caught(built: Built, tmp_path: Path) -> None:
    out = forgeable_copy(built, tmp_path / "forged")
    # The producer claims different weights at step 20 and makes the trail agree with the file.
    path = out / "checkpoints" / checkpoint_name(20)
    state = TrainingState.load(path)
    state.tensors["model/0.weight"] = state.tensors["model/0.weight"] + 0.01
    state.save(path)
    forged = state.digest()

    def edit(trail: dict[str, Any]) -> None:
        for entry in trail["entries"]:
            if entry["step"] == 20:
                entry["state"]["sha256"] = forged

    rewrite_trail(out, edit)
    report = spot_check(out, segments=4, seed=1)
    assert not report.passed
    verdicts = {(c.start, c.stop): c.passed for c in report.checks}
    assert verdicts == {(0, 10): True, (10, 20): False, (20, 30): False, (30, 40): True}
    reasons = {c.start: c.reason for c in report.checks}
    assert "does not match the trail" in reasons[10]


def test_swapped_checkpoints_are_caught_without_replay(built: Built, tmp_path: Path) -> None:
    out = forgeable_copy(built, tmp_path / "swapped")
    a, b = out / "checkpoints" / checkpoint_name(10), out / "checkpoints" / checkpoint_name(20)
    tmp = out / "tmp"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    report = spot_check(out, segments=3, seed=0)
    assert not report.passed
    failed = [c for c in report.checks if not c.passed]
    assert failed and all("forged or swapped" in c.reason for c in failed)


def test_trail_of_another_training_is_caught(built: Built, tmp_path: Path) -> None:
    out = forgeable_copy(built, tmp_path / "unlinked")
    from safetensors.torch import load_file, save_file

    weights = out / "model" / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["2.bias"] = tensors["2.bias"] + torch.ones_like(tensors["2.bias"])
    save_file(tensors, str(weights), metadata={"format": "pt"})
    report = spot_check(out, segments=1, seed=0)
    assert not report.passed
    assert any("not the published weights" in p for p in report.problems)


def test_missing_checkpoints_is_input_error(built: Built, tmp_path: Path) -> None:
    out = forgeable_copy(built, tmp_path / "nock")
    shutil.rmtree(out / "checkpoints")
    with pytest.raises(InputError, match="--keep-checkpoints"):
        spot_check(out, segments=1)


def test_segment_choice_is_seeded_and_bounded() -> None:
    assert choose_segments(10, 3, 42) == choose_segments(10, 3, 42)
    assert len(choose_segments(4, 10, 1)) == 4
    assert choose_segments(100, 5, 1) != choose_segments(100, 5, 2)
    with pytest.raises(InputError):
        choose_segments(4, 0, 1)


def test_training_from_undeclared_initial_weights_is_caught(built: Built, tmp_path: Path) -> None:
    from glassbox.pipeline import build
    from tests.pipeline.conftest import copy_example

    # The producer really trains, but from initial weights the declared code does not make
    # (here: a model factory that scales the first layer), then claims the clean code.
    recipe = copy_example(tmp_path / "poisoned")
    model_py = recipe.parent / "model.py"
    model_py.write_text(
        model_py.read_text().replace(
            "    return torch.nn.Sequential(",
            "    net = torch.nn.Sequential(",
        )
        + "\n".join(
            [
                "    with torch.no_grad():",
                "        net[0].weight.mul_(3.0)",
                "    return net",
                "",
            ]
        )
    )
    out = tmp_path / "out"
    build(recipe, out, keep_checkpoints=True)
    honest = json.loads((built.out / STATEMENT_NAME).read_text())
    honest_code = honest["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    path = out / STATEMENT_NAME
    statement = json.loads(path.read_text())
    statement["predicate"]["buildDefinition"]["resolvedDependencies"][0] = honest_code
    path.write_text(json.dumps(statement))

    report = spot_check(out, segments=4, seed=0, recipe_dir=built.recipe.parent)
    # Every segment replays (the declared code trains the same way from any stored state) ...
    assert all(c.passed for c in report.checks), report.to_dict()
    # ... but the start of the trail is not what the declared code produces.
    assert not report.passed and not report.initial_state_checked
    assert any("initial state (step 0)" in p for p in report.problems)
