"""SPDX 3.0.1 export (``glassbox bom --format spdx3``): AI and Dataset profiles, checked against
the official SPDX 3.0.1 JSON schema (``tests/bom/schemas``) and with the SPDX project's own
Python model (``spdx-python-model``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("spdx_python_model")

from glassbox.bom import (
    BomInputs,
    DatasetInfo,
    build_spdx3,
    spdx3_for_model,
    validate_spdx3,
)
from glassbox.bom.provenance import bom_inputs_from_provenance
from glassbox.digest import hash_model
from tests.bom.test_provenance import statement

SCHEMA = Path(__file__).parent / "schemas" / "spdx-3.0.1.schema.json"
NO_ASSERTION = "expandedlicensing_NoAssertionLicense"  # compact IRI of the named individual


def _provenance_with_chain(tmp_path: Path) -> dict[str, Any]:
    """A build provenance (tests.audit) that declares a base model and a test split."""
    doc = statement(tmp_path)
    build = doc["predicate"]["buildDefinition"]
    build["resolvedDependencies"].append(
        {
            "name": "base-model",
            "digest": {"sha256": "cc" * 32},
            "annotations": {"kind": "base-model", "path": "base/"},
        }
    )
    build["externalParameters"]["datasets"].append(
        {"name": "test", "path": "data/test.jsonl", "commitment": "dd" * 32, "records": 3}
    )
    return doc


def _lineage() -> tuple[DatasetInfo, ...]:
    """A pipeline's datasets as the audit's verified lineage gives them (role ``lineage``)."""
    return (
        DatasetInfo("upstream.corpus", "01" * 32, 100, role="lineage", producer="upstream"),
        DatasetInfo(
            "filter.corpus",
            "02" * 32,
            80,
            role="lineage",
            parents=("upstream.corpus",),
            producer="filter:dedupe",
        ),
    )


def _graph(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["@graph"])


def _by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["spdxId"]: o for o in _graph(doc) if "spdxId" in o}


def _relations(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in _graph(doc) if o["type"] == "Relationship" and o["relationshipType"] == kind]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("spdx")
    prov = _provenance_with_chain(tmp)
    inputs = bom_inputs_from_provenance(prov)
    inputs = BomInputs(
        **{
            **inputs.__dict__,
            "lineage": _lineage(),
            "ancestors": (*inputs.ancestors, ("pretrained-root", "ee" * 32)),
            "datasets": tuple(
                DatasetInfo(**{**d.__dict__, "location": "filter.corpus"})
                if d.name == "train"
                else d
                for d in inputs.datasets
            ),
        }
    )
    return tmp / "m", build_spdx3(hash_model(tmp / "m", use_cache=False), inputs)


def test_valid_against_the_spdx_3_0_1_json_schema(release: tuple[Path, dict[str, Any]]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [e.message[:200] for e in validator.iter_errors(release[1])]
    assert errors == []
    validate_spdx3(release[1])  # and the SPDX model reads and writes it again


def test_model_is_an_ai_package_with_its_hashes_and_files(
    release: tuple[Path, dict[str, Any]],
) -> None:
    model_dir, doc = release
    assert doc["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    document = next(o for o in _graph(doc) if o["type"] == "SpdxDocument")
    assert {"ai", "dataset", "core"} <= set(document["profileConformance"])
    elements = _by_id(doc)
    model = elements[document["rootElement"][0]]
    assert model["type"] == "ai_AIPackage" and model["software_primaryPurpose"] == "model"
    root = hash_model(model_dir, use_cache=False).root_digest.hex()
    assert model["verifiedUsing"][0] == {
        "type": "Hash",
        "algorithm": "sha256",
        "hashValue": root,
        "comment": "OMS (model_signing) manifest root digest over the model's files",
    }
    (contains,) = [r for r in _relations(doc, "contains") if r["from"] == model["spdxId"]]
    files = {elements[i]["name"]: elements[i] for i in contains["to"]}
    assert set(files) == {"model.safetensors", "config.json"}
    for name, item in files.items():
        want = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
        assert item["type"] == "software_File"
        assert item["verifiedUsing"] == [{"type": "Hash", "algorithm": "sha256", "hashValue": want}]


def test_base_models_are_ancestors_by_descendant_of(release: tuple[Path, dict[str, Any]]) -> None:
    _, doc = release
    elements = _by_id(doc)
    model_id = next(i for i, o in elements.items() if i.endswith("#model"))
    chain, current = [], model_id
    for _ in range(5):
        up = [r for r in _relations(doc, "descendantOf") if r["from"] == current]
        if not up:
            break
        (current,) = up[0]["to"]
        chain.append(elements[current])
    assert [(b["type"], b["name"]) for b in chain] == [
        ("ai_AIPackage", "base"),
        ("ai_AIPackage", "pretrained-root"),
    ]
    assert chain[0]["verifiedUsing"][0]["hashValue"] == "cc" * 32
    assert chain[1]["verifiedUsing"][0]["hashValue"] == "ee" * 32


def test_datasets_trained_and_tested_on_with_their_lineage(
    release: tuple[Path, dict[str, Any]],
) -> None:
    _, doc = release
    elements = _by_id(doc)
    model_id = next(i for i in elements if i.endswith("#model"))

    def names(kind: str, src: str) -> list[str]:
        return [
            elements[t]["name"] for r in _relations(doc, kind) if r["from"] == src for t in r["to"]
        ]

    assert names("trainedOn", model_id) == ["train"]
    assert names("testedOn", model_id) == ["test"]
    data = {o["name"]: o for o in _graph(doc) if o["type"] == "dataset_DatasetPackage"}
    assert set(data) == {"train", "test", "upstream.corpus", "filter.corpus"}
    train = data["train"]
    assert train["verifiedUsing"] == [
        {
            "type": "Hash",
            "algorithm": "other",
            "hashValue": "bb" * 32,
            "comment": "RFC 9162 Merkle tree root (SHA-256) over the dataset's records",
        }
    ]
    assert "role: training; 10 records" in train["comment"]
    # The data's path: train <- filter.corpus <- upstream.corpus.
    assert names("descendantOf", train["spdxId"]) == ["filter.corpus"]
    assert names("descendantOf", data["filter.corpus"]["spdxId"]) == ["upstream.corpus"]
    assert "produced by filter:dedupe" in data["filter.corpus"]["comment"]


def test_every_ai_package_has_one_declared_and_one_concluded_licence(
    release: tuple[Path, dict[str, Any]],
) -> None:
    """The AI profile's conformance rule (SPDX 3.0.1, AI profile)."""
    _, doc = release
    elements = _by_id(doc)
    packages = [i for i, o in elements.items() if o["type"] == "ai_AIPackage"]
    assert len(packages) == 3
    for package in packages:
        for kind in ("hasDeclaredLicense", "hasConcludedLicense"):
            found = [r for r in _relations(doc, kind) if r["from"] == package]
            assert len(found) == 1 and len(found[0]["to"]) == 1
    model = next(i for i in packages if i.endswith("#model"))
    (declared,) = [r for r in _relations(doc, "hasDeclaredLicense") if r["from"] == model]
    assert elements[declared["to"][0]]["simplelicensing_licenseExpression"] == "Apache-2.0"
    base = next(i for i in packages if i.endswith("#base-model-1"))
    (unknown,) = [r for r in _relations(doc, "hasDeclaredLicense") if r["from"] == base]
    assert unknown["to"] == [NO_ASSERTION]


def test_same_model_same_ids(tmp_path: Path) -> None:
    prov = statement(tmp_path)
    manifest = hash_model(tmp_path / "m", use_cache=False)
    one = build_spdx3(manifest, bom_inputs_from_provenance(prov))
    two = build_spdx3(manifest, bom_inputs_from_provenance(prov))
    assert sorted(_by_id(one)) == sorted(_by_id(two))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update({"@context": "https://example.com/ctx"}), "not an SPDX 3 document"),
        (lambda d: d.pop("@context"), "not an SPDX 3 document"),
        (
            lambda d: next(o for o in d["@graph"] if o["type"] == "ai_AIPackage").update(
                {"software_primaryPurpose": "rocket"}
            ),
            "rocket",
        ),
        (
            lambda d: next(o for o in d["@graph"] if o["type"] == "CreationInfo").pop("created"),
            "created",
        ),
    ],
)
def test_invalid_documents_are_rejected(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = build_spdx3(hash_model(statement_dir(tmp_path), use_cache=False))
    mutate(doc)
    with pytest.raises(ValueError, match=message):
        validate_spdx3(doc)


def statement_dir(tmp_path: Path) -> Path:
    statement(tmp_path)
    return tmp_path / "m"


def test_cli_writes_spdx3_from_verified_provenance(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from glassbox.cli.main import cli
    from glassbox.sign import generate_private_key, sign_statement, write_bundle, write_keypair

    prov = _provenance_with_chain(tmp_path)
    key = generate_private_key()
    _, pub = write_keypair(key, tmp_path / "builder")
    write_bundle(sign_statement(prov, key), tmp_path / "m.provenance.json")
    out = tmp_path / "bom.spdx.json"
    result = CliRunner().invoke(
        cli, ["bom", str(tmp_path / "m"), "--format", "spdx3", "--key", str(pub), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote SPDX 3.0.1 JSON-LD (AI and Dataset profiles)" in result.output
    doc = json.loads(out.read_text())
    validate_spdx3(doc)
    elements = _by_id(doc)
    model = next(i for i in elements if i.endswith("#model"))
    trained = [r for r in _relations(doc, "trainedOn") if r["from"] == model]
    assert [elements[t]["name"] for t in trained[0]["to"]] == ["train"]
    assert any(r["from"] == model for r in _relations(doc, "descendantOf"))
    # A bad format is bad usage (exit 2), not a silent CycloneDX.
    bad = CliRunner().invoke(cli, ["bom", str(tmp_path / "m"), "--format", "spdx2"])
    assert bad.exit_code == 2


def test_spdx3_for_model_adds_pipeline_lineage(tmp_path: Path) -> None:
    prov = statement(tmp_path)
    doc = spdx3_for_model(tmp_path / "m", provenance=prov, lineage=_lineage())
    names = {o["name"] for o in _graph(doc) if o["type"] == "dataset_DatasetPackage"}
    assert names == {"train", "upstream.corpus", "filter.corpus"}


def test_cli_without_the_spdx_model_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from click.testing import CliRunner

    from glassbox.cli.main import cli

    monkeypatch.setitem(sys.modules, "spdx_python_model", None)
    result = CliRunner().invoke(cli, ["bom", str(statement_dir(tmp_path)), "--format", "spdx3"])
    assert result.exit_code == 2
    assert "--format spdx3 needs spdx-python-model: pip install 'glassbox[bom]'" in result.output


def test_single_file_model_is_the_package_itself(tmp_path: Path) -> None:
    """A GGUF (one file): the package carries the file's own SHA-256 beside the root digest,
    and no ``software_File`` elements."""
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    doc = spdx3_for_model(path)
    (model,) = [o for o in _graph(doc) if o["type"] == "ai_AIPackage"]
    values = [h["hashValue"] for h in model["verifiedUsing"]]
    assert hashlib.sha256(path.read_bytes()).hexdigest() in values and len(values) == 2
    assert not [o for o in _graph(doc) if o["type"] == "software_File"]
    assert not _relations(doc, "contains")
