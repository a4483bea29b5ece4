"""The detectors added for the known blind spots: low-rate poisoning and all-to-all attacks.

MM-BD's maximum margin (data-free), SPECTRE-style robust spectral scores and the all-to-all
cross-class check, on the miniature zoo: a 1% poisoned model and an all-to-all model are
flagged, a clean one is not (``test_detect`` checks that no detector fires on the clean model);
and the scan runs, and says what it skipped, with no training data or only a clean sample.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.scan.behavior import (
    RULE_BACKDOOR,
    RULE_NODATA,
    RULE_POISON,
    RULE_SUMMARY,
    analyze,
    load_classifier,
    load_dataset,
    scan_behavior,
)
from glassbox.scan.behavior.analysis import combine
from glassbox.scan.behavior.max_margin import max_margins
from glassbox.scan.behavior.robust_spectral import que_scores, robust_whiten
from glassbox.scan.findings import Severity

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("behavior-zoo")]
ARCH = "bench.zoo.arch:digits_mlp"
STEPS = 200


def _load(d: Path) -> tuple[Any, Any]:
    return load_classifier(d / "model.safetensors", ARCH, 64), load_dataset(d / "train.jsonl")


def test_que_scores_single_out_a_small_cluster() -> None:
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(190, 6))
    poison = rng.normal(size=(10, 6)) * 0.3 + np.array([0, 0, 0, 0, 4.0, 4.0])
    scores = que_scores(robust_whiten(np.vstack([clean, poison])))
    assert set(np.argsort(-scores)[:10].tolist()) == set(range(190, 200))


def test_low_rate_poisoning_is_flagged(hard_zoo: dict[str, Any]) -> None:
    model, data = _load(hard_zoo["root"] / "low")
    truth = set(hard_zoo["low"]["poisoned"])
    assert len(truth) / len(data) <= 0.01
    report = analyze(model, data, trigger_steps=STEPS)
    assert report.flagged == [5]
    assert report.detectors["robust-spectral"].flagged == [5]
    assert 5 in report.detectors["max-margin"].flagged
    # The robust spectral suspects of the target class are the poison.
    que = set(report.detectors["robust-spectral"].candidates[5].tolist())
    assert len(que & truth) / len(que) > 0.9 and len(que & truth) / len(truth) > 0.8
    found = set(report.suspects.tolist())
    assert truth <= found and len(found & truth) / len(found) >= 0.9
    # Before this change (trigger, STRIP, spectral, clustering only) the verdict missed it.
    older = ("trigger", "strip", "spectral", "activation-clustering")
    assert combine(np.stack([report.detectors[n].normalized for n in older]))[5] < 1.0


def test_all_to_all_is_flagged(hard_zoo: dict[str, Any]) -> None:
    model, data = _load(hard_zoo["root"] / "a2a")
    truth = set(hard_zoo["a2a"]["poisoned"])
    report = analyze(model, data, trigger_steps=STEPS)
    a2a = report.detectors["all-to-all"]
    assert len(a2a.flagged) >= 4 and a2a.details["median_cosine"] >= 2 * a2a.threshold
    assert len(report.flagged) >= 4
    found = set(report.suspects.tolist())
    assert len(found & truth) / len(found) > 0.6


def test_max_margin_is_data_free_and_deterministic(hard_zoo: dict[str, Any]) -> None:
    model, _ = _load(hard_zoo["root"] / "low")
    a, b = max_margins(model, seed=3), max_margins(model, seed=3)
    assert np.array_equal(a, b) and int(np.argmax(a)) == 5


def test_no_training_data_runs_what_it_can(hard_zoo: dict[str, Any]) -> None:
    d = hard_zoo["root"] / "low"
    findings = scan_behavior(d, arch=ARCH)
    by_rule = {f.rule_id: f for f in findings}
    summary = by_rule[RULE_SUMMARY]
    assert list(summary.evidence["detectors"]) == ["max-margin"]
    assert summary.evidence["detectors"]["max-margin"]["seconds"] > 0
    nodata = by_rule[RULE_NODATA]
    assert nodata.severity == Severity.INFO
    assert set(nodata.evidence["skipped"]) == {
        "trigger",
        "strip",
        "spectral",
        "activation-clustering",
        "robust-spectral",
        "all-to-all",
        "neighbours",
    }
    assert "--clean" in nodata.message and "ran max-margin" in nodata.message


def test_clean_sample_as_npz(hard_zoo: dict[str, Any], tmp_path: Path) -> None:
    """An unlabelled clean sample: the trigger search and STRIP run on it, nothing else."""
    from bench.zoo.generate import digits_split

    _, _, xte, _ = digits_split()
    sample = tmp_path / "clean.npz"
    np.savez(sample, images=xte[:200].reshape(-1, 8, 8))
    d = hard_zoo["root"] / "low"
    findings = scan_behavior(d, arch=ARCH, clean=sample, trigger_steps=STEPS)
    by_rule = {f.rule_id: f for f in findings}
    ran = list(by_rule[RULE_SUMMARY].evidence["detectors"])
    assert ran == ["max-margin", "trigger", "strip"]
    assert "unlabelled" in by_rule[RULE_NODATA].message
    assert RULE_POISON not in by_rule  # no training data, so no records to name


def test_npz_training_data_names_rows(hard_zoo: dict[str, Any], tmp_path: Path) -> None:
    d = hard_zoo["root"] / "low"
    data = load_dataset(d / "train.jsonl")
    npz = tmp_path / "train.npz"
    np.savez(npz, x=(data.images.reshape(len(data), 64) * 16).astype(np.uint8), y=data.labels)
    truth = set(hard_zoo["low"]["poisoned"])
    runner = CliRunner()
    result = runner.invoke(
        cli, ["scan", str(d), "--behavior", "--arch", ARCH, "--data", str(npz), "--json"]
    )
    assert result.exit_code == 1, result.output
    findings = json.loads(result.output)["findings"]
    (backdoor,) = [f for f in findings if f["rule_id"] == RULE_BACKDOOR]
    assert backdoor["evidence"]["class"] == 5
    (poison,) = [f for f in findings if f["rule_id"] == RULE_POISON]
    assert truth <= set(poison["evidence"]["records"])  # row indices of the .npz
    from glassbox.scan.behavior.arrays import file_sha256

    assert poison["evidence"]["sha256"] == file_sha256(npz)
    assert poison["evidence"]["inclusion_proofs"] == []
    summary = next(f for f in findings if f["rule_id"] == RULE_SUMMARY)
    contrib = summary["evidence"]["contributions"]["5"]
    assert contrib["robust-spectral"] >= 1.0 and contrib["max-margin"] >= 1.0


def test_cli_hostile_npz_is_a_one_line_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "train.npz"
    np.savez(bad, x=np.array([object(), object()], dtype=object), y=np.array([0, 1]))
    model = tmp_path / "model.safetensors"
    from bench.zoo.arch import digits_mlp
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in digits_mlp().state_dict().items()}, model)
    result = CliRunner().invoke(
        cli, ["scan", str(model), "--behavior", "--arch", ARCH, "--data", str(bad)]
    )
    assert result.exit_code == 2
    assert "object array" in result.output and str(bad) in result.output


def test_adaptive_attack_is_flagged_by_the_neighbours(
    zoo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An adaptive blend (Qi et al. 2023: half the trigger's pieces, weaker in training, as
    many cover records as poisoned ones) at 2%: the input-space neighbours disagree with the
    poisoned records' labels, in the target class only; the clean model has no such class."""
    from bench.zoo.generate import Attack, build_entry

    root = tmp_path_factory.mktemp("adaptive")
    attack = Attack("adaptive-blend", target=2, rate=0.02, cover=0.02, alpha=0.3, seed=21)
    meta = build_entry(attack, root / "adaptive", epochs=30)
    model, data = _load(root / "adaptive")
    report = analyze(model, data, trigger_steps=STEPS)
    assert report.detectors["neighbours"].flagged == [2]
    assert report.flagged == [2]
    truth = set(meta["poisoned"])
    found = set(report.suspects.tolist())
    assert len(found & truth) / len(truth) >= 0.8 and len(found & truth) / len(found) >= 0.9
    clean_model, clean_data = _load(zoo["root"] / "clean")
    clean = analyze(clean_model, clean_data, trigger_steps=STEPS)
    assert clean.detectors["neighbours"].flagged == [] and clean.flagged == []
