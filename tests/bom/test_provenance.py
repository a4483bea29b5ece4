"""What a build's SLSA provenance contributes to the openness grade and the BOM."""

from __future__ import annotations

from pathlib import Path

from glassbox.bom import grade_release
from glassbox.bom.provenance import bom_inputs_from_provenance, release_from_provenance
from tests.audit.conftest import FILES, provenance_statement


def statement(tmp_path: Path) -> dict[str, object]:
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
