"""The ML-BOM is valid CycloneDX 1.6 (checked by the library's offline validator) and complete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from glassbox.bom import assess_openness
from glassbox.bom.cyclonedx import BomInputs, DatasetInfo, build_bom, validate_bom
from glassbox.digest import HashMethod, hash_model
from glassbox.errors import GlassboxError

INPUTS = BomInputs(
    version="1.0.0",
    license="Apache-2.0",
    datasets=(
        DatasetInfo("digits", "ab" * 32, 1797, "csv", "CC-BY-4.0", "file:data/digits.csv"),
        DatasetInfo("digits-test", None, 360, role="evaluation"),
    ),
    packages=(("torch", "2.13.0"), ("numpy", "2.1.0")),
    python="3.11.7",
    platform="Linux-x86_64",
    approach="supervised",
    task="classification",
    architecture="MLP 64-32-10",
    metrics=(("accuracy", "0.97"),),
    limitations=("8x8 greyscale digits only",),
)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "digits"
    root.mkdir()
    (root / "model.safetensors").write_bytes(b"weights" * 100)
    (root / "config.json").write_text("{}")
    (root / "LICENSE").write_text("SPDX-License-Identifier: Apache-2.0\n")
    return root


def test_bom_lists_model_files_datasets_and_environment(model: Path) -> None:
    manifest = hash_model(model)
    doc = build_bom(manifest, INPUTS, openness=assess_openness(model))
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    ml = by_ref["model"]
    assert ml["type"] == "machine-learning-model"
    props = {p["name"]: p["value"] for p in ml["properties"]}
    assert props["glassbox:oms:root-digest"] == "sha256:" + manifest.root_digest.hex()
    files = {f["name"]: f["hashes"][0]["content"] for f in ml["components"]}
    assert files["model.safetensors"] == hashlib.sha256(b"weights" * 100).hexdigest()
    assert set(files) == {"model.safetensors", "config.json", "LICENSE"}
    card = ml["modelCard"]
    assert card["modelParameters"]["datasets"] == [
        {"ref": "dataset:training:digits"},
        {"ref": "dataset:evaluation:digits-test"},
    ]
    assert card["quantitativeAnalysis"]["performanceMetrics"] == [
        {"type": "accuracy", "value": "0.97"}
    ]
    openness = {p["name"]: p["value"] for p in card["properties"]}
    assert openness["glassbox:openness"].startswith("open weights, not open source")
    data = by_ref["dataset:training:digits"]
    assert data["type"] == "data"
    assert data["data"][0]["type"] == "dataset"
    assert data["data"][0]["contents"] == {"url": "file:data/digits.csv"}
    assert data["licenses"] == [{"license": {"id": "CC-BY-4.0"}}]
    assert by_ref["pkg:pypi/torch@2.13.0"]["purl"] == "pkg:pypi/torch@2.13.0"
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert "dataset:training:digits" in deps["model"]
    validate_bom(doc)


def test_single_file_and_blake3_models(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 64)
    doc = build_bom(hash_model(path, HashMethod("blake3")))
    ml = doc["components"][0]
    assert ml["hashes"][0]["alg"] == "BLAKE3"
    assert "components" not in ml


def test_sharded_manifest_records_shard_counts(model: Path) -> None:
    doc = build_bom(hash_model(model, HashMethod("sha256", shard_size=256)))
    ml = next(c for c in doc["components"] if c["bom-ref"] == "model")
    weights = next(f for f in ml["components"] if f["name"] == "model.safetensors")
    assert {"name": "glassbox:shards", "value": "3"} in weights["properties"]


def test_restrictive_and_expression_licences_are_valid_cyclonedx(model: Path) -> None:
    for licence in ("llama3", "MIT OR Apache-2.0", "not a (valid expression"):
        doc = build_bom(hash_model(model), BomInputs(license=licence))
        validate_bom(doc)


def test_validator_rejects_an_invalid_model_card(model: Path) -> None:
    doc = build_bom(hash_model(model), INPUTS)
    ml = next(c for c in doc["components"] if c["bom-ref"] == "model")
    ml["modelCard"]["modelParameters"]["approach"] = {"type": "guesswork"}
    with pytest.raises(GlassboxError, match=r"not valid CycloneDX 1\.6"):
        validate_bom(doc)
    del ml["modelCard"]
    ml["data"] = [{"type": "dataset"}]
    validate_bom(doc)  # schema-valid (the schema only says SHOULD NOT)
    doc["components"][0]["type"] = "weights"
    with pytest.raises(GlassboxError):
        validate_bom(doc)


def test_serial_number_is_stable_for_the_same_model(model: Path) -> None:
    first = build_bom(hash_model(model))
    second = build_bom(hash_model(model))
    assert first["serialNumber"] == second["serialNumber"]


def test_bom_for_model_reads_metrics_and_skips_the_signature(model: Path) -> None:
    from glassbox.bom.cyclonedx import bom_for_model, evaluation_metrics

    (model / "metrics.json").write_text('{"test_accuracy": 0.955, "steps": 400, "note": "x"}')
    (model / "model.sig").write_text("{}")
    assert evaluation_metrics(model) == (("test_accuracy", "0.955"), ("steps", "400"))
    doc = bom_for_model(model)
    ml = next(c for c in doc["components"] if c["bom-ref"] == "model")
    assert ml["modelCard"]["quantitativeAnalysis"]["performanceMetrics"][0] == {
        "type": "test_accuracy",
        "value": "0.955",
    }
    assert "model.sig" not in {f["name"] for f in ml["components"]}
    (model / "metrics.json").write_text("[" * 5000)
    assert evaluation_metrics(model) == ()
