"""End to end on a small zoo: a clean model is not flagged, a strongly backdoored one is.

The zoo (``conftest.zoo``) trains three small MLPs on digits in a few seconds; each analysis
runs the trigger search, STRIP, and both representation detectors.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from glassbox.digest import DatasetCommitment, RecordProof, verify_record
from glassbox.errors import InputError
from glassbox.scan.behavior import (
    RULE_BACKDOOR,
    RULE_NODATA,
    RULE_POISON,
    RULE_SUMMARY,
    RULE_TRIGGER,
    RULE_UNCALIBRATED,
    analyze,
    load_classifier,
    load_dataset,
    scan_behavior,
)
from glassbox.scan.behavior.png import SIGNATURE
from glassbox.scan.behavior.spectral import top_directions
from glassbox.scan.behavior.splitting import two_means_1d
from glassbox.scan.findings import Severity

# One worker builds the session zoo once (CI runs pytest -n 2 --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("behavior-zoo")]
ARCH = "bench.zoo.arch:digits_mlp"
STEPS = 200


def _entry(zoo: dict[str, Any], name: str) -> tuple[Path, set[int]]:
    meta = zoo[name]
    return zoo["root"] / name, {int(i) for i in meta["poisoned"]}


@pytest.mark.parametrize("calibrated", [True, False])
def test_clean_is_not_flagged_and_backdoor_is(zoo: dict[str, Any], calibrated: bool) -> None:
    reference = zoo["reference"] if calibrated else None
    verdicts = {}
    for name in ("clean", "bad"):
        d, truth = _entry(zoo, name)
        model = load_classifier(d / "model.safetensors", ARCH, 64)
        report = analyze(
            model, load_dataset(d / "train.jsonl"), reference=reference, trigger_steps=STEPS
        )
        verdicts[name] = report
    clean = verdicts["clean"]
    assert clean.flagged == []
    assert clean.score < 1.0
    for name in clean.detectors:  # no single detector fires either, bimodal 9s included
        assert clean.detectors[name].flagged == [], name
    bad = verdicts["bad"]
    assert bad.flagged == [3]
    assert 3 in bad.detectors["trigger"].flagged
    assert 3 in bad.detectors["strip"].flagged
    # The all-to-all check and the input-space neighbours never use the reference.
    uncalibrated = ("all-to-all", "neighbours")
    assert all(
        d.calibrated == calibrated for n, d in bad.detectors.items() if n not in uncalibrated
    )
    _, truth = _entry(zoo, "bad")
    found = set(bad.suspects.tolist())
    precision = len(found & truth) / max(len(found), 1)
    recall = len(found & truth) / len(truth)
    assert precision > 0.8 and recall > 0.8, (precision, recall)


def test_class_nine_is_bimodal_yet_not_evidence(zoo: dict[str, Any]) -> None:
    """The trap the issue names: 9s split in two in a clean model's features."""
    d, _ = _entry(zoo, "clean")
    model = load_classifier(d / "model.safetensors", ARCH, 64)
    data = load_dataset(d / "train.jsonl")
    feats = model.features(data.images)
    sep = [two_means_1d(top_directions(feats[data.labels == c])[0])[1] for c in range(10)]
    assert sep[9] > 1.5 * float(np.median(sep))
    report = analyze(model, data, reference=zoo["reference"], trigger_steps=STEPS)
    assert report.detectors["spectral"].class_scores[9] < 0.2
    assert report.detectors["activation-clustering"].class_scores[9] < 0.2


def test_analysis_is_deterministic(zoo: dict[str, Any]) -> None:
    d, _ = _entry(zoo, "bad")
    model = load_classifier(d / "model.safetensors", ARCH, 64)
    data = load_dataset(d / "train.jsonl")
    a = analyze(model, data, trigger_steps=50, seed=7)
    b = analyze(model, data, trigger_steps=50, seed=7)
    for name in a.detectors:
        assert np.array_equal(a.detectors[name].class_scores, b.detectors[name].class_scores)
    assert np.array_equal(a.suspects, b.suspects)


def test_findings_for_a_backdoored_model(zoo: dict[str, Any], tmp_path: Path) -> None:
    d, truth = _entry(zoo, "bad")
    findings = scan_behavior(
        d,
        data=d / "train.jsonl",
        arch=ARCH,
        reference=zoo["reference"],
        trigger_dir=tmp_path,
        trigger_steps=STEPS,
        max_proofs=5,
    )
    json.dumps([f.to_dict() for f in findings])  # the report format must be JSON as it stands
    by_rule: dict[str, list[Any]] = {}
    for f in findings:
        by_rule.setdefault(f.rule_id, []).append(f)
    (backdoor,) = by_rule[RULE_BACKDOOR]
    assert backdoor.severity == Severity.HIGH and backdoor.evidence["class"] == 3
    assert backdoor.member == "model.safetensors"

    (trigger,) = by_rule[RULE_TRIGGER]
    assert trigger.severity == Severity.HIGH
    png = Path(trigger.evidence["trigger_png"])
    assert png.read_bytes().startswith(SIGNATURE)
    assert base64.b64decode(trigger.evidence["trigger_png_base64"]) == png.read_bytes()
    assert trigger.evidence["mask_l1"] < trigger.evidence["median_mask_l1"] / 2

    (poison,) = by_rule[RULE_POISON]
    records = poison.evidence["records"]
    assert len(set(records) & truth) / len(records) > 0.8
    commitment = DatasetCommitment.from_dict(poison.evidence["commitment"])
    proofs = poison.evidence["inclusion_proofs"]
    assert len(proofs) == 5 and poison.evidence["proofs_omitted"] == len(records) - 5
    for raw, index in zip(proofs, records, strict=False):
        proof = RecordProof.from_dict(raw)
        assert proof.index == index
        verify_record(proof, commitment)
        assert json.loads(proof.record)["label"] == 3
    assert RULE_SUMMARY in by_rule and RULE_UNCALIBRATED not in by_rule


def test_findings_for_a_clean_model(zoo: dict[str, Any]) -> None:
    d, _ = _entry(zoo, "clean")
    findings = scan_behavior(d, data=d / "train.jsonl", arch=ARCH, trigger_steps=STEPS)
    assert max(f.severity for f in findings) <= Severity.LOW
    rules = {f.rule_id for f in findings}
    assert RULE_SUMMARY in rules and RULE_UNCALIBRATED in rules
    assert RULE_BACKDOOR not in rules and RULE_POISON not in rules


def test_no_data_is_reported_not_skipped(zoo: dict[str, Any]) -> None:
    d, _ = _entry(zoo, "clean")
    findings = scan_behavior(d, arch=ARCH)
    (finding,) = [f for f in findings if f.rule_id == RULE_NODATA]
    assert finding.severity == Severity.INFO and "--data" in finding.message
    assert max(f.severity for f in findings) <= Severity.LOW  # the data-free check: clean
    with pytest.raises(InputError, match="no such model"):
        scan_behavior(d / "missing", arch=ARCH)
    with pytest.raises(InputError, match="no Glassbox provenance"):
        scan_behavior(d, data=d / "train.jsonl")  # no --arch and nothing built it


def test_model_built_through_a_recipe_needs_only_its_directory(tmp_path: Path) -> None:
    """Architecture and training data come from the build's provenance (checked digests)."""
    from bench.zoo.generate import Attack
    from bench.zoo.recipes import build_recipe_entry

    meta = build_recipe_entry(
        Attack("patch", target=7, rate=0.1, size=3, corner="tl", seed=3), tmp_path, steps=300
    )
    findings = scan_behavior(str(meta["model"]), trigger_steps=STEPS)
    backdoor = [f for f in findings if f.rule_id == RULE_BACKDOOR]
    assert [f.evidence["class"] for f in backdoor] == [7]
    (poison,) = [f for f in findings if f.rule_id == RULE_POISON]
    assert poison.evidence["dataset"].endswith("train.jsonl")
    assert set(poison.evidence["records"]) <= set(range(poison.evidence["commitment"]["size"]))
