"""Behavioural scans of tabular classifiers: feature-pattern triggers on a table, not pixels.

A miniature tabular zoo (``bench/zoo/tabular.py``: MLPs on scikit-learn's bundled data, trained
in seconds) is scanned as ``glassbox scan MODEL --behavior --data train.parquet|.csv|.npz``
would: a strongly backdoored model (three features set past their range, 10% of the records
relabelled) is flagged at its target with its poisoned rows named, in every file format; a
clean one is not; a two-class table without a reference withholds the detectors that cannot
judge two classes; a malformed table is a one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from bench.zoo.tabular import TabAttack, build_entry, table_split, write_table
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.errors import InputError
from glassbox.scan.behavior import (
    RULE_BACKDOOR,
    RULE_NODATA,
    RULE_POISON,
    RULE_SUMMARY,
    RULE_TRIGGER,
    LabeledData,
    load_dataset,
    scan_behavior,
)
from glassbox.scan.behavior.tabular import (
    TWO_CLASS_WHY,
    FeatureScale,
    describe_trigger,
    looks_tabular,
)
from glassbox.scan.findings import Finding

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("behavior-zoo")]
ARCH = "bench.zoo.tabular_arch:synth_mlp"


@pytest.fixture(scope="module")
def tab_zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tab-zoo")
    bad = TabAttack("synth", "pattern", target=2, rate=0.1, features=3, offset=2.0, seed=31)
    # A thin margin: the clean model of seed 32 (40 epochs) scores 1.02x the threshold.
    clean = TabAttack("synth", "clean", seed=34, fmt="csv")
    cancer = TabAttack("cancer", "clean", seed=33, fmt="npz")
    return {
        "root": root,
        "bad": build_entry(bad, root / "bad", epochs=40),
        "clean": build_entry(clean, root / "clean", epochs=40),
        "cancer": build_entry(cancer, root / "cancer", epochs=40),
    }


def _by_rule(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.rule_id, []).append(f)
    return out


def _scan(entry: Path, data: Path, arch: str = ARCH, **kw: Any) -> dict[str, list[Finding]]:
    return _by_rule(scan_behavior(entry / "model.safetensors", data=data, arch=arch, **kw))


def _named(by: dict[str, list[Finding]]) -> set[int]:
    return {int(i) for f in by.get(RULE_POISON, []) for i in f.evidence["records"]}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "npz"])
def test_backdoored_table_is_flagged_and_its_poison_named(
    tab_zoo: dict[str, Any], fmt: str
) -> None:
    entry = tab_zoo["root"] / "bad"
    meta = tab_zoo["bad"]
    assert meta["attack_success"] > 0.9  # the backdoor took
    data = entry / f"train.{fmt}"
    if not data.exists():  # the same rows in the other formats, as a user might keep them
        names = table_split("synth")[4]
        rows = load_dataset(entry / "train.parquet", scale=1.0)
        write_table(data, rows.images.reshape(len(rows), -1), rows.labels, names)
    by = _scan(entry, data)
    assert [f.evidence["class"] for f in by[RULE_BACKDOOR]] == [2]
    summary = by[RULE_SUMMARY][0]
    assert summary.evidence["modality"] == "tabular" and summary.message.startswith("tabular")
    assert set(summary.evidence["detectors"]) >= {"trigger", "strip", "robust-spectral"}
    truth = set(meta["poisoned"])
    named = _named(by)
    assert len(named & truth) >= 0.8 * len(truth)
    assert len(named & truth) >= 0.9 * len(named)
    trig = next(f for f in by[RULE_TRIGGER] if f.evidence["class"] == 2)
    assert trig.evidence["modality"] == "tabular" and "feature" in trig.message
    for feat in trig.evidence["trigger_features"]:
        assert feat["name"].startswith("x") if fmt != "npz" else "name" not in feat


def test_clean_table_is_not_flagged(tab_zoo: dict[str, Any]) -> None:
    entry = tab_zoo["root"] / "clean"
    by = _scan(entry, entry / "train.csv")
    assert RULE_BACKDOOR not in by and RULE_POISON not in by
    assert by[RULE_SUMMARY][0].evidence["modality"] == "tabular"


def test_two_class_table_withholds_what_cannot_judge_two_classes(tab_zoo: dict[str, Any]) -> None:
    entry = tab_zoo["root"] / "cancer"
    by = _scan(entry, entry / "train.npz", arch="bench.zoo.tabular_arch:cancer_mlp")
    assert RULE_BACKDOOR not in by
    skipped = by[RULE_NODATA][0].evidence["skipped"]
    assert skipped["trigger"] == TWO_CLASS_WHY and skipped["spectral"] == TWO_CLASS_WHY
    assert set(by[RULE_NODATA][0].evidence["ran"]) == {"robust-spectral", "all-to-all"}
    assert by[RULE_NODATA][0].message.startswith("training data given")


def test_cli_scans_a_parquet_table_and_says_what_ran(tab_zoo: dict[str, Any]) -> None:
    entry = tab_zoo["root"] / "bad"
    result = CliRunner().invoke(
        cli,
        [
            "scan",
            str(entry / "model.safetensors"),
            "--behavior",
            "--data",
            str(entry / "train.parquet"),
            "--arch",
            ARCH,
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output
    findings = json.loads(result.output)["findings"]
    rules = {f["rule_id"] for f in findings}
    assert {RULE_BACKDOOR, RULE_POISON, RULE_SUMMARY} <= rules
    summary = next(f for f in findings if f["rule_id"] == RULE_SUMMARY)
    assert "tabular" in summary["message"] and "trigger" in summary["message"]


def test_forcing_image_modality_skips_the_feature_scale(tab_zoo: dict[str, Any]) -> None:
    entry = tab_zoo["root"] / "clean"
    by = _scan(entry, entry / "train.csv", modality="image", scale=1.0)
    assert "modality" not in by[RULE_SUMMARY][0].evidence
    with pytest.raises(InputError, match="--modality 'pixels'"):
        _scan(entry, entry / "train.csv", modality="pixels")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", b"a,b,label\n1.0,oops,0\n", "non-numeric field"),
        ("ragged.csv", b"a,b,label\n1.0,2.0,0\n1.0,0\n", "line 3 has 2 fields"),
        ("cut.parquet", b"PAR1\x00\x00\x00", "not a readable Parquet file"),
        ("cut.npz", b"PK\x03\x04trunc", "not a readable .npz"),
    ],
)
def test_malformed_table_is_a_one_line_error(
    tab_zoo: dict[str, Any], tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    entry = tab_zoo["root"] / "clean"
    model = str(entry / "model.safetensors")
    args = ["scan", model, "--behavior", "--data", str(path), "--arch", ARCH]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and name in lines[0] and message in lines[0]


def test_tables_and_images_are_told_apart() -> None:
    rng = np.random.default_rng(0)
    digits = LabeledData.from_arrays(rng.integers(0, 17, (40, 64)) / 16.0, np.zeros(40))
    assert not looks_tabular(digits)
    assert looks_tabular(LabeledData.from_arrays(rng.random((40, 30)), np.zeros(40)))
    signed = LabeledData.from_arrays(rng.normal(size=(40, 16)), np.zeros(40))
    assert looks_tabular(signed)  # a square width, but negative values
    units = rng.random((40, 16)) * (10.0 ** (np.arange(16) % 5))[None]
    assert looks_tabular(LabeledData.from_arrays(units, np.zeros(40)))
    rgb = LabeledData.from_arrays(rng.normal(size=(40, 3, 5, 7)), np.zeros(40))
    assert not looks_tabular(rgb)  # multi-channel arrays are images, whatever their values


def test_a_trigger_is_described_by_features_and_raw_values() -> None:
    raw = np.array([[0.0, 10.0, 100.0], [1.0, 20.0, 300.0]])
    scale = FeatureScale.fit(raw, margin=0.25)
    assert np.allclose(scale.to_raw(scale.to_unit(raw)), raw)
    mask = np.array([[0.1, 0.9, 0.7]])
    pattern = np.array([[[0.5, 1.0, 0.5]]])
    feats = describe_trigger(mask, pattern, scale, ["a", "b", "c"])
    assert [f["name"] for f in feats] == ["b", "c"]
    # b: data 10..20, box 7.5..22.5 (a quarter of the range past each end); u = 1 -> 22.5
    assert feats[0]["value"] == pytest.approx(22.5) and feats[0]["beyond_data"]
    assert feats[1]["value"] == pytest.approx(200.0) and not feats[1]["beyond_data"]


def test_a_clean_unlabelled_sample_is_scaled_as_a_table(
    tab_zoo: dict[str, Any], tmp_path: Path
) -> None:
    """No training data: the trigger search and STRIP run on a clean sample, in table units."""
    sample = tmp_path / "sample.npz"
    np.savez(sample, x=table_split("synth")[2][:300])
    entry = tab_zoo["root"] / "bad"
    by = _by_rule(scan_behavior(entry / "model.safetensors", clean=sample, arch=ARCH))
    assert by[RULE_SUMMARY][0].evidence["modality"] == "tabular"
    nodata = by[RULE_NODATA][0]
    assert set(nodata.evidence["ran"]) == {"max-margin", "trigger", "strip"}
    assert "unlabelled" in nodata.message


def test_cli_modality_reaches_the_scan(tab_zoo: dict[str, Any]) -> None:
    entry = tab_zoo["root"] / "clean"
    args = ["scan", str(entry / "model.safetensors"), "--behavior", "--arch", ARCH, "--json"]
    args += ["--data", str(entry / "train.csv"), "--modality", "image"]
    result = CliRunner().invoke(cli, args)
    summary = next(f for f in json.loads(result.output)["findings"] if f["rule_id"] == RULE_SUMMARY)
    assert "modality" not in summary["evidence"] and not summary["message"].startswith("tabular")
    code = CliRunner().invoke(cli, ["scan", str(entry), "--modality", "tabular"]).exit_code
    assert code == 2  # --modality only applies with --behavior


def test_strip_blends_feature_vectors_instead_of_adding_them() -> None:
    """Blending a record with itself leaves it as it is; the image rule (sum, clipped) does not."""
    from torch import nn

    from glassbox.scan.behavior import wrap_module
    from glassbox.scan.behavior.perturbation import strip_entropy

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10.0)  # confident enough that doubling the input changes the entropy
    model = wrap_module(net, 5)
    one = np.full((1, 1, 1, 5), 0.4, dtype=np.float32)
    probs = model.predict(one)[0].astype(np.float64)
    alone = float(-(probs * np.log(probs)).sum())
    assert strip_entropy(model, one, mix=0.5)[0] == pytest.approx(alone, rel=1e-5)
    assert strip_entropy(model, one)[0] != pytest.approx(alone, rel=1e-3)
