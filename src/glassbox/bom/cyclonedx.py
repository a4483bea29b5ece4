"""CycloneDX 1.6 ML-BOM: the model, its files and hashes, its datasets, its software environment.

Built with cyclonedx-python-lib. That library (v11) has no API for a component's ``modelCard``
or ``data`` yet, so those sections are added to its JSON output here, following the 1.6 schema,
and the finished document is then validated with the library's offline strict JSON validator:
an invalid BOM is a bug and raises, it is never written.

The model is a ``machine-learning-model`` component whose nested ``file`` components carry each
file's digest (per-file SHA-256 or BLAKE3 as the manifest was computed) and whose properties carry
the OMS root digest, so the BOM names exactly the bytes a signature covers. Datasets are ``data``
components with their Merkle commitment (``glassbox.digest.commit_dataset``); the software
environment (Python packages recorded by the build) becomes ``library`` components with purls.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox import __version__
from glassbox.bom.licenses import OPEN_DATA, OSI_APPROVED, canonical_id, parse_expression
from glassbox.digest.walk import is_model_file
from glassbox.errors import GlassboxError, InputError

if TYPE_CHECKING:
    from glassbox.bom.openness import OpennessReport
    from glassbox.digest import Manifest

SPEC_VERSION = "1.6"
_MODEL_REF = "model"
_NAMESPACE = uuid.UUID("6f1d4f3c-4a55-4f0e-9b6a-67ab5b0c0de1")


@dataclass(frozen=True)
class DatasetInfo:
    """A training or evaluation dataset as the BOM lists it."""

    name: str
    commitment: str | None = None  # hex Merkle root over the records (RFC 9162 hashing)
    records: int | None = None
    fmt: str | None = None
    license: str | None = None
    location: str | None = None
    role: str = "training"
    # Data lineage (a pipeline's datasets): what this dataset was derived from, and by which
    # step. Parents are other lineage datasets' names (``upstream.digits``, ``filter.digits``).
    parents: tuple[str, ...] = ()
    producer: str | None = None
    # The producing step's provenance (path in the run directory), its verdict when the lineage
    # was walked (pass / fail / unknown) and the key id that signed it.
    provenance: str | None = None
    verdict: str | None = None
    signed_by: str | None = None


@dataclass(frozen=True)
class BomInputs:
    """Everything the BOM says beyond the files: from build provenance and the openness grade."""

    version: str | None = None
    description: str | None = None
    license: str | None = None
    datasets: tuple[DatasetInfo, ...] = ()
    # Every dataset of the pipeline behind the model (role "lineage"), each with its parents.
    lineage: tuple[DatasetInfo, ...] = ()
    packages: tuple[tuple[str, str], ...] = ()
    python: str | None = None
    platform: str | None = None
    task: str | None = None
    architecture: str | None = None
    approach: str | None = None
    metrics: tuple[tuple[str, str], ...] = ()
    properties: tuple[tuple[str, str], ...] = ()
    limitations: tuple[str, ...] = ()
    use_cases: tuple[str, ...] = field(default=())
    #: Base models this one was fine-tuned (or otherwise derived) from: (name, sha256 OMS root
    #: digest), nearest first. Written as CycloneDX ``pedigree.ancestors``.
    ancestors: tuple[tuple[str, str], ...] = ()


def build_bom(
    manifest: Manifest,
    inputs: BomInputs | None = None,
    *,
    openness: OpennessReport | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """Return a CycloneDX 1.6 ML-BOM as a JSON-ready dict, validated against the 1.6 schema."""
    from cyclonedx.model import HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from packageurl import PackageURL

    inputs = inputs or BomInputs()
    algorithm = _hash_algorithm(manifest.method.algorithm)
    sharded = manifest.method.shard_size is not None
    files = []
    for path, digests in sorted(manifest.file_digests().items()):
        file_props = [Property(name="glassbox:size", value=str(_size_of(manifest, path)))]
        hashes = []
        if sharded:
            file_props.append(Property(name="glassbox:shards", value=str(len(digests))))
        else:
            hashes.append(HashType(alg=algorithm, content=digests[0].hex()))
        files.append(
            Component(
                type=ComponentType.FILE,
                name=manifest.model_name if path == "." else path,
                bom_ref=f"file:{path}",
                hashes=hashes,
                properties=file_props,
            )
        )
    model_props = [
        Property(name="glassbox:oms:root-digest", value="sha256:" + manifest.root_digest.hex()),
        Property(name="glassbox:oms:hash-method", value=manifest.method.name),
        Property(name="glassbox:total-size", value=str(manifest.total_size)),
    ]
    if openness is not None:
        model_props.append(
            Property(name="glassbox:openness:mof-class", value=openness.mof.class_name)
        )
        model_props.append(
            Property(
                name="glassbox:openness:osaid-1.0",
                value="conforms" if openness.osaid.conforms else "does not conform",
            )
        )
    model_hashes = []
    if not sharded and len(files) == 1 and manifest.items[0].path == ".":
        model_hashes.append(HashType(alg=algorithm, content=manifest.items[0].digest.hex()))
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=manifest.model_name,
        version=inputs.version,
        description=inputs.description,
        bom_ref=_MODEL_REF,
        hashes=model_hashes,
        licenses=_licences(inputs.license),
        properties=model_props,
        components=[] if model_hashes else files,
        pedigree=_pedigree(inputs.ancestors) if inputs.ancestors else None,
    )
    datasets = [
        Component(
            type=ComponentType.DATA,
            name=d.name,
            bom_ref=_dataset_ref(d),
            licenses=_licences(d.license),
            properties=[
                Property(name=f"glassbox:dataset:{k}", value=v)
                for k, v in (
                    ("commitment", f"rfc9162-sha256:{d.commitment}" if d.commitment else None),
                    ("records", str(d.records) if d.records is not None else None),
                    ("format", d.fmt),
                    ("role", d.role),
                    ("producer", d.producer),
                    ("derived-from", ", ".join(d.parents) if d.parents else None),
                    ("provenance", d.provenance),
                    ("provenance-verdict", d.verdict),
                    ("provenance-signed-by", d.signed_by),
                )
                if v
            ],
        )
        for d in (*inputs.datasets, *inputs.lineage)
    ]
    libraries = [
        Component(
            type=ComponentType.LIBRARY,
            name=name,
            version=version,
            bom_ref=f"pkg:pypi/{name.lower()}@{version}",
            purl=PackageURL(type="pypi", name=name.lower(), version=version),
        )
        for name, version in sorted(set(inputs.packages))
    ]
    platform = []
    if inputs.python:
        platform.append(
            Component(
                type=ComponentType.PLATFORM,
                name="python",
                version=inputs.python,
                bom_ref="platform:python",
                properties=[Property(name="glassbox:platform", value=inputs.platform)]
                if inputs.platform
                else [],
            )
        )
    tools = ToolRepository(
        components=[Component(type=ComponentType.APPLICATION, name="glassbox", version=__version__)]
    )
    bom = Bom(
        serial_number=uuid.uuid5(_NAMESPACE, manifest.root_digest.hex()),
        metadata=BomMetaData(tools=tools, timestamp=timestamp or datetime.now(UTC)),
        components=[model, *datasets, *libraries, *platform],
    )
    bom.register_dependency(model, [*datasets[: len(inputs.datasets)], *libraries, *platform])
    _register_lineage(bom, inputs, datasets)
    document = _serialise(bom)
    _add_ml_sections(document, inputs, openness)
    validate_bom(document)
    return document


def lineage_datasets(datasets: Iterable[Mapping[str, Any]]) -> tuple[DatasetInfo, ...]:
    """BOM datasets from a walked pipeline lineage (``LineageReport.datasets()``): every
    upstream dataset and every step output, each with its parents, its producing step and that
    step's provenance and verdict. Shared by ``audit`` and ``glassbox bom``."""

    def text(value: Any) -> str | None:
        return str(value) if value is not None else None

    return tuple(
        DatasetInfo(
            name=str(d["ref"]),
            commitment=text(d.get("root")),
            records=d.get("records") if isinstance(d.get("records"), int) else None,
            license=text(d.get("licence")),
            role="lineage",
            parents=tuple(str(p) for p in d.get("parents") or ()),
            producer=f"{d.get('kind')}:{d.get('producer')}" if d.get("producer") else "upstream",
            provenance=text(d.get("provenance")),
            verdict=text(d.get("verdict")),
            signed_by=text(d.get("signed_by")),
        )
        for d in datasets
        if isinstance(d, Mapping) and d.get("ref")
    )


def _register_lineage(bom: Any, inputs: BomInputs, components: list[Any]) -> None:
    """Each lineage dataset depends on its parents; a training dataset on the lineage dataset
    at its location (a pipeline names it ``STEP.OUTPUT``): the BOM's dependency graph is then
    the data's path from the upstream commitments to the model."""
    if not inputs.lineage:
        return
    everything = (*inputs.datasets, *inputs.lineage)
    by_name = {
        d.name: c for d, c in zip(inputs.lineage, components[len(inputs.datasets) :], strict=True)
    }
    for info, component in zip(everything, components, strict=True):
        parents = info.parents if info.role == "lineage" else (info.location or "",)
        found = [by_name[p] for p in parents if p in by_name]
        if found:
            bom.register_dependency(component, found)


def _pedigree(ancestors: tuple[tuple[str, str], ...]) -> Any:
    """``pedigree.ancestors``: each base model by name and OMS root digest (SHA-256)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.component import Component, ComponentType, Pedigree

    return Pedigree(
        ancestors=[
            Component(
                type=ComponentType.MACHINE_LEARNING_MODEL,
                name=name,
                bom_ref=f"base-model:{i}:{digest[:16]}",
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
                properties=[
                    Property(name="glassbox:oms:root-digest", value="sha256:" + digest),
                    Property(name="glassbox:relationship", value="derived-from (base model)"),
                ],
            )
            for i, (name, digest) in enumerate(ancestors)
        ]
    )


def _serialise(bom: Any) -> dict[str, Any]:
    from cyclonedx.output.json import JsonV1Dot6

    result: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return result


def _add_ml_sections(
    document: dict[str, Any], inputs: BomInputs, openness: OpennessReport | None
) -> None:
    """Add the 1.6 ``modelCard`` and ``data`` sections the library cannot express yet."""
    by_ref = {c.get("bom-ref"): c for c in document.get("components", [])}
    model = by_ref[_MODEL_REF]
    parameters: dict[str, Any] = {}
    if inputs.approach:
        parameters["approach"] = {"type": inputs.approach}
    if inputs.task:
        parameters["task"] = inputs.task
    if inputs.architecture:
        parameters["modelArchitecture"] = inputs.architecture
    if inputs.datasets:
        parameters["datasets"] = [{"ref": _dataset_ref(d)} for d in inputs.datasets]
    card: dict[str, Any] = {"bom-ref": "model-card"}
    if parameters:
        card["modelParameters"] = parameters
    if inputs.metrics:
        card["quantitativeAnalysis"] = {
            "performanceMetrics": [{"type": k, "value": v} for k, v in inputs.metrics]
        }
    considerations: dict[str, Any] = {}
    if inputs.use_cases:
        considerations["useCases"] = list(inputs.use_cases)
    if inputs.limitations:
        considerations["technicalLimitations"] = list(inputs.limitations)
    if considerations:
        card["considerations"] = considerations
    props = [{"name": k, "value": v} for k, v in inputs.properties]
    if openness is not None:
        props.append({"name": "glassbox:openness", "value": openness.headline})
        for status in openness.mof.components:
            props.append(
                {
                    "name": f"glassbox:mof:{status.component.name}",
                    "value": status.status + (f" ({status.license})" if status.license else ""),
                }
            )
    if props:
        card["properties"] = props
    model["modelCard"] = card
    for dataset in (*inputs.datasets, *inputs.lineage):
        component = by_ref[_dataset_ref(dataset)]
        contents: dict[str, Any] = {}
        if dataset.location:
            contents["url"] = dataset.location
        described = [f"{dataset.role} data"]
        if dataset.records is not None:
            described.append(f"{dataset.records} records")
        if dataset.commitment:
            described.append(f"Merkle commitment {dataset.commitment}")
        if dataset.producer:
            described.append(f"made by pipeline step {dataset.producer}")
        if dataset.parents:
            described.append(f"derived from {', '.join(dataset.parents)}")
        entry: dict[str, Any] = {
            "type": "dataset",
            "name": dataset.name,
            "description": ", ".join(described),
        }
        if contents:
            entry["contents"] = contents
        component["data"] = [entry]


def validate_bom(document: dict[str, Any]) -> None:
    """Validate against the CycloneDX 1.6 JSON schema offline; raises ``GlassboxError``."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    if error is not None:
        first = error if not isinstance(error, Iterable) else next(iter(error))
        raise GlassboxError(f"generated BOM is not valid CycloneDX {SPEC_VERSION}: {first}")


def _dataset_ref(dataset: DatasetInfo) -> str:
    return f"dataset:{dataset.role}:{dataset.name}"


def _size_of(manifest: Manifest, path: str) -> int:
    return sum(item.size for item in manifest.items if item.path == path)


def _hash_algorithm(name: str) -> Any:
    from cyclonedx.model import HashAlgorithm

    return {"sha256": HashAlgorithm.SHA_256, "blake3": HashAlgorithm.BLAKE3}[name]


def _licences(text: str | None) -> list[Any]:
    """A CycloneDX licence choice: an SPDX id, an expression, or a named (non-SPDX) licence."""
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    if not text:
        return []
    try:
        expr = parse_expression(text)
    except InputError:
        return [DisjunctiveLicense(name=text)]
    if expr.op == "id":
        ident = canonical_id(expr.license_id)
        if ident in OSI_APPROVED or ident in OPEN_DATA:
            return [DisjunctiveLicense(id=ident)]
        return [DisjunctiveLicense(name=ident)]
    return [LicenseExpression(str(expr))]


def bom_for_model(
    model: Path,
    *,
    provenance: dict[str, Any] | None = None,
    provenance_verified: bool = False,
    mof_yaml: Path | None = None,
    ignore_paths: Iterable[Path] = (),
    ancestors: tuple[tuple[str, str], ...] | None = None,
    lineage: tuple[DatasetInfo, ...] = (),
) -> dict[str, Any]:
    """Hash ``model``, grade its openness, and return its validated ML-BOM.

    ``lineage``: the datasets of the pipeline behind the model (``lineage_datasets``), listed
    as data components with their provenance, in the BOM's dependency graph. ``ancestors``:
    a walked fine-tune chain (``model_bom_inputs``).

    ``provenance`` is a build's SLSA statement; say with ``provenance_verified`` whether its
    signature was checked, which the BOM records (an unverified statement is still the best
    description there is, but a reader must know).
    """
    manifest, inputs, openness = model_bom_inputs(
        model,
        provenance=provenance,
        provenance_verified=provenance_verified,
        mof_yaml=mof_yaml,
        ignore_paths=ignore_paths,
        ancestors=ancestors,
    )
    if lineage:
        inputs = replace(inputs, lineage=(*inputs.lineage, *lineage))
    return build_bom(manifest, inputs, openness=openness)


def model_bom_inputs(
    model: Path,
    *,
    provenance: dict[str, Any] | None = None,
    provenance_verified: bool = False,
    mof_yaml: Path | None = None,
    ignore_paths: Iterable[Path] = (),
    ancestors: tuple[tuple[str, str], ...] | None = None,
) -> tuple[Manifest, BomInputs, OpennessReport]:
    """What every BOM format says about ``model``: its manifest, the details from its
    provenance and evaluation file, and its openness grade (``bom_for_model``, ``spdx3``).
    ``ancestors`` replaces the one base the provenance names with a whole walked chain."""
    from glassbox.bom.openness import assess_openness
    from glassbox.bom.provenance import bom_inputs_from_provenance, release_from_provenance
    from glassbox.digest import hash_model
    from glassbox.sign import default_signature_path
    from glassbox.trust.locations import display_name

    ignores = [p.absolute() for p in ignore_paths]
    signature = default_signature_path(model)
    if model.is_dir() and signature.exists():
        ignores.append(signature.absolute())
    # A cache snapshot's directory is a bare commit: name it org/name@commit.
    manifest = hash_model(model, ignore_paths=ignores, model_name=display_name(model))
    extra = release_from_provenance(provenance) if provenance is not None else None
    openness = assess_openness(model, mof_yaml=mof_yaml, extra=extra)
    weights = next(s for s in openness.mof.components if s.component.name.endswith("(Final)"))
    inputs = bom_inputs_from_provenance(provenance, licence=weights.license)
    if provenance is not None:
        state = "verified" if provenance_verified else "unverified"
        inputs = replace(inputs, properties=(*inputs.properties, ("glassbox:provenance", state)))
    metrics = evaluation_metrics(model)
    if metrics:
        inputs = replace(inputs, metrics=(*inputs.metrics, *metrics))
    if ancestors is not None:
        inputs = replace(inputs, ancestors=ancestors)
    return manifest, inputs, openness


_METRICS_FILE = re.compile(r"^(metrics|eval(uation)?[_-]?results?|results)\.json$", re.IGNORECASE)
_MAX_METRICS_BYTES = 1 << 20


def evaluation_metrics(model: Path) -> tuple[tuple[str, str], ...]:
    """Numeric results from a model directory's evaluation file (``metrics.json`` and the like):
    a flat JSON object of numbers, read as data (bounded), for the model card."""
    if not model.is_dir():
        return ()
    out: list[tuple[str, str]] = []
    for path in sorted(model.iterdir()):
        if not _METRICS_FILE.match(path.name) or not is_model_file(path):
            continue
        try:
            if path.stat().st_size > _MAX_METRICS_BYTES:
                continue
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        if isinstance(doc, dict):
            out.extend(
                (str(k), repr(v))
                for k, v in doc.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            )
    return tuple(out)
