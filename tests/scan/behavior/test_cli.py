"""``glassbox scan MODEL --behavior``: the reference model and trigger directory reach the scan.

Runs the real behavioural scanner on the session zoo (``conftest.zoo``) through the CLI, so a
flag that is parsed but not passed on fails here: without ``--reference`` the scan would say it
is uncalibrated (``GBX-BEHAVIOR-UNCALIBRATED``; see ``test_detect``), with it every detector
reports calibrated scores; ``--trigger-dir`` must leave the reconstructed trigger on disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from safetensors.torch import save_file

from glassbox.cli.main import cli
from glassbox.scan.behavior import (
    RULE_BACKDOOR,
    RULE_SUMMARY,
    RULE_TRIGGER,
    RULE_UNCALIBRATED,
)
from glassbox.scan.behavior.png import SIGNATURE

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("behavior-zoo")]
ARCH = "bench.zoo.arch:digits_mlp"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["scan", *args])
    return result.exit_code, result.output


def _reference_dir(zoo: dict[str, Any], tmp_path: Path) -> Path:
    """The zoo's clean reference as a model directory, as a rebuild would leave it."""
    ref = tmp_path / "reference"
    ref.mkdir()
    state = {k: v.contiguous() for k, v in zoo["reference"].module.state_dict().items()}
    save_file(state, ref / "model.safetensors")
    return ref


def _findings(out: str) -> dict[str, list[dict[str, Any]]]:
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for f in json.loads(out)["findings"]:
        by_rule.setdefault(f["rule_id"], []).append(f)
    return by_rule


@pytest.mark.parametrize("flag", ["--reference", "--trigger-dir"])
def test_behavior_options_need_behavior(tmp_path: Path, flag: str) -> None:
    code, out = run(str(tmp_path), flag, str(tmp_path))
    assert code == 2 and "only apply with --behavior" in out


def test_missing_reference_is_a_usage_error(zoo: dict[str, Any], tmp_path: Path) -> None:
    model = zoo["root"] / "clean"
    code, out = run(str(model), "--behavior", "--arch", ARCH, "--reference", str(tmp_path / "no"))
    assert code == 2 and "does not exist" in out


def test_reference_and_trigger_dir_reach_the_scan(zoo: dict[str, Any], tmp_path: Path) -> None:
    bad = zoo["root"] / "bad"
    triggers = tmp_path / "triggers"
    code, out = run(
        str(bad),
        "--behavior",
        "--data",
        str(bad / "train.jsonl"),
        "--arch",
        ARCH,
        "--reference",
        str(_reference_dir(zoo, tmp_path)),
        "--trigger-dir",
        str(triggers),
        "--json",
    )
    assert code == 1, out
    by_rule = _findings(out)
    (backdoor,) = by_rule[RULE_BACKDOOR]
    assert backdoor["severity"] == "high" and backdoor["evidence"]["class"] == 3
    assert backdoor["evidence"]["calibrated"] is True
    assert RULE_UNCALIBRATED not in by_rule
    (summary,) = by_rule[RULE_SUMMARY]
    detectors = summary["evidence"]["detectors"]
    # Every detector that can use the reference does; the all-to-all check cannot (a model
    # that never saw the trigger still sees the poisoned records as outliers of their label),
    # nor the input-space neighbours (they read the data, not a model).
    uncalibrated = ("all-to-all", "neighbours")
    assert all(d["calibrated"] for n, d in detectors.items() if n not in uncalibrated)
    assert detectors["all-to-all"]["calibrated"] is False
    assert "reference_l1" in detectors["trigger"]
    (trigger,) = by_rule[RULE_TRIGGER]
    png = Path(trigger["evidence"]["trigger_png"])
    assert png.parent == triggers and png.name == "trigger-class-3.png"
    assert png.read_bytes().startswith(SIGNATURE)
