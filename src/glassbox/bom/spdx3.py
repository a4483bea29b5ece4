"""SPDX 3.0.1 export of a model's BOM: JSON-LD with the AI and Dataset profiles.

The same facts as the CycloneDX ML-BOM (``BomInputs``: from the verified build provenance and
pipeline lineage), written with the SPDX project's own Python model (``spdx-python-model``), so
every property is type-checked as it is set and every required one is checked as the document
is serialised. What goes where:

* the model is an ``ai_AIPackage`` (primary purpose ``model``) whose ``verifiedUsing`` holds its
  OMS manifest root digest (and, for a single file, the file's SHA-256); it ``contains`` one
  ``software_File`` per model file, each with its own hash;
* its base models are ``ai_AIPackage`` elements too: the model is ``descendantOf`` its nearest
  base, and each base ``descendantOf`` the next (SPDX 3 has no "fine-tuned on"; ``descendantOf``
  is the relationship for "derived from an earlier version of");
* training datasets are ``dataset_DatasetPackage`` elements the model is ``trainedOn``; test,
  validation and evaluation datasets are ``testedOn``; their record commitment (an RFC 9162
  Merkle root, not a plain file hash) is a ``Hash`` of algorithm ``other`` that says so;
* a pipeline's datasets (the data lineage) are ``dataset_DatasetPackage`` elements, each
  ``descendantOf`` the datasets it was derived from, and a training dataset ``descendantOf``
  the pipeline dataset it was read from;
* the AI profile's conformance rule holds: every ``ai_AIPackage`` has exactly one
  ``hasDeclaredLicense`` and one ``hasConcludedLicense`` relationship (``NoAssertionLicense``
  when the licence is not known; concluded is what Glassbox could establish, the same value);
* build environment packages are ``software_Package`` elements with their purl, which the model
  ``dependsOn``.

Element ids are IRIs under ``urn:glassbox:spdx:<root digest>``: the same model gives the same
ids, so two exports of one release can be compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox import __version__
from glassbox.bom.cyclonedx import BomInputs, DatasetInfo

if TYPE_CHECKING:
    from glassbox.digest import Manifest

SPDX_VERSION = "3.0.1"
SPDX_CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
NO_ASSERTION_LICENSE = "https://spdx.org/rdf/3.0.1/terms/ExpandedLicensing/NoAssertionLicense"
COMMITMENT_NOTE = "RFC 9162 Merkle tree root (SHA-256) over the dataset's records"
ROOT_DIGEST_NOTE = "OMS (model_signing) manifest root digest over the model's files"
_TEST_ROLES = frozenset({"test", "validation", "evaluation"})


def build_spdx3(
    manifest: Manifest,
    inputs: BomInputs | None = None,
    *,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """Return an SPDX 3.0.1 JSON-LD document (AI and Dataset profiles) as a JSON-ready dict.

    Raises ``ImportError`` without ``spdx-python-model`` (the ``bom`` extra), and ``ValueError``
    from the SPDX model if a value is not what the specification allows.
    """
    from spdx_python_model import v3_0_1 as spdx

    inputs = inputs or BomInputs()
    root = manifest.root_digest.hex()
    base_iri = f"urn:glassbox:spdx:{root}"
    created = (timestamp or datetime.now(UTC)).replace(microsecond=0)
    objects = spdx.SHACLObjectSet()
    agent = objects.add(spdx.SoftwareAgent(_id=f"{base_iri}#agent-glassbox", name="Glassbox"))
    info = spdx.CreationInfo(
        specVersion=SPDX_VERSION,
        created=created,
        createdBy=[agent],
    )
    agent.creationInfo = info
    tool = objects.add(
        spdx.Tool(
            _id=f"{base_iri}#tool-glassbox", name=f"glassbox {__version__}", creationInfo=info
        )
    )
    info.createdUsing = [tool]
    elements: list[Any] = [agent, tool]
    counter = iter(range(1, 1 << 30))

    def add(obj: Any) -> Any:
        objects.add(obj)
        elements.append(obj)
        return obj

    def relate(src: Any, kind: str, targets: list[Any], **kw: Any) -> Any:
        return add(
            spdx.Relationship(
                _id=f"{base_iri}#relationship-{next(counter)}",
                creationInfo=info,
                from_=src,
                relationshipType=getattr(spdx.RelationshipType, kind),
                to=targets,
                **kw,
            )
        )

    def licence(element: Any, expression: str | None) -> None:
        target: Any = NO_ASSERTION_LICENSE
        if expression:
            target = add(
                spdx.simplelicensing_LicenseExpression(
                    _id=f"{base_iri}#licence-{next(counter)}",
                    creationInfo=info,
                    simplelicensing_licenseExpression=expression,
                )
            )
        relate(element, "hasDeclaredLicense", [target])
        relate(element, "hasConcludedLicense", [target])

    model = add(_model_package(spdx, manifest, inputs, base_iri, info))
    licence(model, inputs.license)
    files = _files(spdx, manifest, base_iri, info)
    for item in files:
        add(item)
    if files:
        relate(model, "contains", files)

    child = model
    for i, (name, digest) in enumerate(inputs.ancestors):
        base = add(
            spdx.ai_AIPackage(
                _id=f"{base_iri}#base-model-{i + 1}",
                creationInfo=info,
                name=name,
                software_primaryPurpose=spdx.software_SoftwarePurpose.model,
                verifiedUsing=[_hash(spdx, "sha256", digest, ROOT_DIGEST_NOTE)],
                comment="base model (fine-tuned or otherwise derived from), from the provenance",
            )
        )
        licence(base, None)
        relate(child, "descendantOf", [base])
        child = base

    packages: dict[str, Any] = {}
    for dataset in inputs.lineage:
        packages[dataset.name] = add(_dataset(spdx, dataset, base_iri, next(counter), info))
        licence_of = dataset.license
        if licence_of:
            licence(packages[dataset.name], licence_of)
    for dataset in inputs.lineage:
        parents = [packages[p] for p in dataset.parents if p in packages]
        if parents:
            relate(packages[dataset.name], "descendantOf", parents)
    trained: list[Any] = []
    tested: list[Any] = []
    for dataset in inputs.datasets:
        package = add(_dataset(spdx, dataset, base_iri, next(counter), info))
        if dataset.license:
            licence(package, dataset.license)
        (tested if dataset.role in _TEST_ROLES else trained).append(package)
        source = packages.get(dataset.location or "")
        if source is not None:
            relate(package, "descendantOf", [source])
    if trained:
        relate(model, "trainedOn", trained)
    if tested:
        relate(model, "testedOn", tested)

    libraries = [
        add(
            spdx.software_Package(
                _id=f"{base_iri}#pypi-{_slug(name)}-{_slug(version)}",
                creationInfo=info,
                name=name,
                software_packageVersion=version,
                software_packageUrl=f"pkg:pypi/{name.lower()}@{version}",
                software_primaryPurpose=spdx.software_SoftwarePurpose.library,
            )
        )
        for name, version in sorted(set(inputs.packages))
    ]
    if libraries:
        relate(model, "dependsOn", libraries)

    profiles = spdx.ProfileIdentifierType
    document = spdx.SpdxDocument(
        _id=f"{base_iri}#document",
        creationInfo=info,
        name=f"SPDX 3 AI BOM of {manifest.model_name}",
        rootElement=[model],
        element=list(elements),
        profileConformance=[
            profiles.core,
            profiles.software,
            profiles.ai,
            profiles.dataset,
            profiles.simpleLicensing,
        ],
    )
    objects.add(document)
    data: dict[str, Any] = spdx.JSONLDSerializer().serialize_data(objects, force_at_graph=True)
    return data


def spdx3_for_model(
    model: Path,
    *,
    provenance: dict[str, Any] | None = None,
    provenance_verified: bool = False,
    mof_yaml: Path | None = None,
    ignore_paths: Iterable[Path] = (),
    lineage: tuple[DatasetInfo, ...] = (),
    ancestors: tuple[tuple[str, str], ...] | None = None,
) -> dict[str, Any]:
    """``bom_for_model``'s facts as SPDX 3.0.1 (checked with ``validate_spdx3``); ``lineage``
    adds a pipeline's datasets (``DatasetInfo`` with role ``lineage`` and their parents)."""
    from dataclasses import replace

    from glassbox.bom.cyclonedx import model_bom_inputs

    manifest, inputs, _ = model_bom_inputs(
        model,
        provenance=provenance,
        provenance_verified=provenance_verified,
        mof_yaml=mof_yaml,
        ignore_paths=ignore_paths,
        ancestors=ancestors,
    )
    if lineage:
        inputs = replace(inputs, lineage=(*inputs.lineage, *lineage))
    document = build_spdx3(manifest, inputs)
    validate_spdx3(document)
    return document


def _model_package(spdx: Any, manifest: Manifest, inputs: BomInputs, iri: str, info: Any) -> Any:
    hashes = [_hash(spdx, "sha256", manifest.root_digest.hex(), ROOT_DIGEST_NOTE)]
    sharded = manifest.method.shard_size is not None
    if not sharded and len(manifest.items) == 1 and manifest.items[0].path == ".":
        hashes.append(_hash(spdx, manifest.method.algorithm, manifest.items[0].digest.hex(), None))
    model = spdx.ai_AIPackage(
        _id=f"{iri}#model",
        creationInfo=info,
        name=manifest.model_name,
        software_primaryPurpose=spdx.software_SoftwarePurpose.model,
        verifiedUsing=hashes,
    )
    if inputs.version:
        model.software_packageVersion = inputs.version
    if inputs.description:
        model.description = inputs.description
    if inputs.architecture:
        model.ai_typeOfModel = [inputs.architecture]
    if inputs.limitations:
        model.ai_limitation = "; ".join(inputs.limitations)
    if inputs.metrics:
        model.ai_metric = [spdx.DictionaryEntry(key=k, value=v) for k, v in inputs.metrics]
    build = dict(inputs.properties).get("glassbox:build-type")
    if build:
        model.ai_informationAboutTraining = f"built by a recipe (buildType {build})"
    return model


def _files(spdx: Any, manifest: Manifest, iri: str, info: Any) -> list[Any]:
    """One ``software_File`` per model file (none for a single-file model: the package is it)."""
    digests = manifest.file_digests()
    if "." in digests:
        return []
    sharded = manifest.method.shard_size is not None
    out = []
    for i, (path, parts) in enumerate(sorted(digests.items())):
        item = spdx.software_File(_id=f"{iri}#file-{i + 1}", creationInfo=info, name=path)
        if not sharded:
            item.verifiedUsing = [_hash(spdx, manifest.method.algorithm, parts[0].hex(), None)]
        out.append(item)
    return out


def _dataset(spdx: Any, dataset: DatasetInfo, iri: str, n: int, info: Any) -> Any:
    kind = spdx.dataset_DatasetType
    package = spdx.dataset_DatasetPackage(
        _id=f"{iri}#dataset-{n}-{_slug(dataset.name)}",
        creationInfo=info,
        name=dataset.name,
        software_primaryPurpose=spdx.software_SoftwarePurpose.data,
        dataset_datasetType=[kind.noAssertion],
    )
    if dataset.commitment:
        package.verifiedUsing = [_hash(spdx, "other", dataset.commitment, COMMITMENT_NOTE)]
    notes = [f"role: {dataset.role}"]
    if dataset.records is not None:
        notes.append(f"{dataset.records} records")
    if dataset.fmt:
        notes.append(f"format {dataset.fmt}")
    if dataset.producer:
        notes.append(f"produced by {dataset.producer}")
    package.comment = "; ".join(notes)
    if dataset.location and "://" in dataset.location:
        package.software_downloadLocation = dataset.location
    return package


def _hash(spdx: Any, algorithm: str, value: str, note: str | None) -> Any:
    item = spdx.Hash(algorithm=getattr(spdx.HashAlgorithm, algorithm), hashValue=value)
    if note:
        item.comment = note
    return item


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def validate_spdx3(document: dict[str, Any]) -> None:
    """Check an SPDX 3 JSON-LD document with the SPDX model: every object and property must
    deserialise (known types, values of the right kind) and serialise again (required
    properties present). Raises ``ValueError`` naming the problem."""
    from spdx_python_model import LoadError, load_data

    try:
        model, objects = load_data(document)
    except (LoadError, TypeError, KeyError) as exc:
        raise ValueError(f"not an SPDX 3 document: {exc}") from exc
    model.JSONLDSerializer().serialize_data(objects)
