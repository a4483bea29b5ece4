"""What a build's SLSA provenance contributes to the openness grade and the BOM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from glassbox.bom import grade_release
from glassbox.bom.cyclonedx import build_bom
from glassbox.bom.provenance import (
    bom_inputs_from_provenance,
    dataset_role,
    release_from_provenance,
)
from glassbox.digest import hash_model
from tests.audit.conftest import FILES, provenance_statement


def statement(tmp_path: Path) -> dict[str, Any]:
    model = tmp_path / "m"
    model.mkdir()
    for name in ("model.safetensors", "config.json"):
        (model / name).write_bytes(FILES[name])
    return provenance_statement(model)


def test_provenance_proves_training_code_architecture_and_data_commitments(
    tmp_path: Path,
) -> None:
    release = release_from_provenance(statement(tmp_path))
    assert release.entries["Training code"].location == "recipe code, entry train:train"
    assert release.entries["Model architecture"].license == "Apache-2.0"
    assert release.global_licences == {"distribution": "Apache-2.0"}
    assert release.dataset_commitments == [
        {"name": "train", "commitment": "bb" * 32, "records": 10}
    ]
    status = {s.component.name: s.status for s in grade_release(release).mof.components}
    assert status["Training code"] == "open"
    assert status["Datasets"] == "missing"  # a commitment is not the data


def test_bom_inputs_carry_datasets_and_environment(tmp_path: Path) -> None:
    inputs = bom_inputs_from_provenance(statement(tmp_path))
    assert inputs.version == "1.0.0" and inputs.license == "Apache-2.0"
    assert inputs.datasets[0].name == "train" and inputs.datasets[0].license == "CC-BY-4.0"
    assert inputs.packages == (("torch", "2.13.0"),)
    assert inputs.python == "3.11.7"
    assert ("glassbox:build-type", "https://glassbox.dev/build/recipe/v1") in inputs.properties


def test_garbage_provenance_gives_an_empty_description() -> None:
    release = release_from_provenance({"predicate": ["not", "a", "dict"]})
    assert release.entries == {}
    inputs = bom_inputs_from_provenance({"predicate": {"buildDefinition": 3}})
    assert inputs.datasets == () and inputs.packages == ()


def test_a_test_split_is_not_called_training_data(tmp_path: Path) -> None:
    """The digits recipe declares "train" and "test"; the BOM used to call both "training data"."""
    st = statement(tmp_path)
    params = st["predicate"]["buildDefinition"]["externalParameters"]
    params["datasets"].append(
        {"name": "test", "path": "data/test.jsonl", "commitment": "cc" * 32, "records": 3}
    )
    inputs = bom_inputs_from_provenance(st)
    assert [(d.name, d.role) for d in inputs.datasets] == [("train", "training"), ("test", "test")]
    doc = build_bom(hash_model(tmp_path / "m"), inputs)
    data = {c["name"]: c for c in doc["components"] if c["type"] == "data"}
    assert data["test"]["data"][0]["description"].startswith("test data, 3 records")
    assert data["train"]["data"][0]["description"].startswith("training data")
    assert "training" not in json.dumps(data["test"])


def test_dataset_role_from_its_declaration_or_its_name() -> None:
    for name, role in {
        "train": "training",
        "digits-test": "test",
        "holdout": "test",
        "val_split": "validation",
        "dev": "validation",
        "eval": "evaluation",
        "interval-data": "training",  # a word, not a substring
        "contest": "training",
    }.items():
        assert dataset_role(name) == role, name
    assert dataset_role("test", "training") == "training"  # a declared role wins
