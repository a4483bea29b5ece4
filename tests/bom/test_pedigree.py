"""A fine-tune's declared base model in the ML-BOM: CycloneDX ``pedigree.ancestors``."""

from __future__ import annotations

from pathlib import Path

from glassbox.bom.provenance import bom_inputs_from_provenance
from tests.bom.test_provenance import statement


def test_a_declared_base_model_becomes_a_pedigree_ancestor(tmp_path: Path) -> None:
    from glassbox.bom.cyclonedx import build_bom
    from glassbox.digest import hash_model

    doc = statement(tmp_path)
    doc["predicate"]["buildDefinition"]["resolvedDependencies"].append(  # type: ignore[index]
        {
            "name": "base-model",
            "digest": {"sha256": "cc" * 32},
            "annotations": {"kind": "base-model", "path": "base/"},
        }
    )
    inputs = bom_inputs_from_provenance(doc)
    assert inputs.ancestors == (("base", "cc" * 32),)
    bom = build_bom(hash_model(tmp_path / "m"), inputs)  # validated against the 1.6 schema
    model = next(c for c in bom["components"] if c["type"] == "machine-learning-model")
    ancestor = model["pedigree"]["ancestors"][0]
    assert ancestor["type"] == "machine-learning-model" and ancestor["name"] == "base"
    assert ancestor["hashes"] == [{"alg": "SHA-256", "content": "cc" * 32}]
    (tmp_path / "x").mkdir()
    assert bom_inputs_from_provenance(statement(tmp_path / "x")).ancestors == ()
