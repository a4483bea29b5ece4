"""SLSA provenance v1 for a training run, as an in-toto Statement v1.

The predicate follows https://slsa.dev/spec/v1.0/provenance: ``buildDefinition`` (our versioned
``buildType``, the recipe as ``externalParameters``, the pinned run settings as
``internalParameters``, inputs as ``resolvedDependencies``) and ``runDetails`` (builder, times,
and ``byproducts``: the checkpoint trail, the hermeticity verdict and the environment). Subjects
are the kept output files by SHA-256, so the statement says exactly which bytes it is about.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from glassbox.digest import Manifest
from glassbox.errors import InputError
from glassbox.pipeline.hermetic import Hermeticity
from glassbox.pipeline.inputs import DATASET_DIGEST_KEY, ResolvedInputs
from glassbox.pipeline.recipe import BUILD_TYPE, Recipe
from glassbox.pipeline.trail import TRAIL_MEDIA_TYPE, Trail

SLSA_PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILDER_ID = "https://glassbox.dev/builder/local/v1"
STATEMENT_NAME = "provenance.intoto.json"
BUNDLE_NAME = "provenance.sigstore.json"
MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"
MAX_PROVENANCE_BYTES = 256 << 20

HERMETICITY_MEDIA_TYPE = "application/vnd.glassbox.hermeticity+json"
ENVIRONMENT_MEDIA_TYPE = "application/vnd.glassbox.environment+json"
OUTPUTS_MEDIA_TYPE = "application/vnd.glassbox.output-manifest+json"


def _json_digest(obj: Any) -> dict[str, str]:
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return {"sha256": hashlib.sha256(raw).hexdigest()}


def _byproduct(name: str, media_type: str, content: Any) -> dict[str, Any]:
    """A ResourceDescriptor carrying structured content in ``annotations``, digest over it."""
    return {
        "name": name,
        "digest": _json_digest(content),
        "mediaType": media_type,
        "annotations": content,
    }


def internal_parameters(recipe: Recipe, threads: int, cpu_capability: str) -> dict[str, Any]:
    return {
        "threads": threads,
        "interopThreads": 1,
        "cpuCapability": cpu_capability,
        "seed": recipe.seed,
        "pythonHashSeed": "0",
        "deterministicAlgorithms": True,
        "network": "refused",
        "checkpointInterval": recipe.checkpoint_interval,
        # What a rebuild cannot be told to match; recorded in the environment byproduct.
        "notPinned": [
            "CPU model and microcode (recorded; the kernel path above is pinned)",
            "files opened by native code without Python (not seen by the audit hook)",
            "wall-clock time (only the metadata timestamps depend on it)",
        ],
    }


def resolved_dependencies(recipe: Recipe, inputs: ResolvedInputs) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = [
        {
            "name": "code",
            "digest": {"sha256": inputs.code.root_digest.hex()},
            "annotations": {
                "kind": "code",
                "recipe": recipe.recipe_relpath,
                "localPath": str(recipe.code_dir.resolve()),
                "manifest": inputs.code.to_dict(),
                "lineDigests": inputs.code_lines,
            },
        }
    ]
    for spec in recipe.datasets:
        commitment = inputs.datasets[spec.name]
        deps.append(
            {
                "name": f"dataset:{spec.name}",
                "digest": {DATASET_DIGEST_KEY: commitment.root.hex()},
                "annotations": {
                    "kind": "dataset",
                    "path": spec.relpath,
                    "licence": spec.licence,
                    "commitment": commitment.to_dict(),
                    "chunks": inputs.dataset_chunks.get(spec.name, {}),
                },
            }
        )
    if recipe.base_model is not None and inputs.base_model is not None:
        annotations: dict[str, Any] = {"kind": "base-model", "path": recipe.base_model.relpath}
        if recipe.base_model.key is not None:
            from glassbox.sign import load_public_key, public_key_id

            # Verified before training (``inputs.check_base_signature``); recorded so an
            # auditor knows whose release the fine-tune started from.
            annotations["signedBy"] = public_key_id(load_public_key(recipe.base_model.key))
            # Where the key and the signature are (relative to the code directory), so
            # ``audit`` can check the base's signature again when it walks the chain.
            annotations["key"] = recipe.base_model.key_relpath
            if recipe.base_model.signature_relpath is not None:
                annotations["signature"] = recipe.base_model.signature_relpath
        deps.append(
            {
                "name": "base-model",
                "digest": {"sha256": inputs.base_model.root_digest.hex()},
                "annotations": annotations,
            }
        )
    return deps


def make_provenance(
    *,
    recipe: Recipe,
    inputs: ResolvedInputs,
    outputs: Manifest,
    trail: Trail,
    hermeticity: Hermeticity,
    environment: dict[str, Any],
    threads: int,
    cpu_capability: str,
    invocation_id: str,
    started: str,
    finished: str,
    train_seconds: float,
) -> dict[str, Any]:
    """The in-toto Statement (unsigned) for one build."""
    from glassbox import __version__
    from glassbox.sign import make_statement, subject

    subjects = [subject(item.name, item.digest) for item in outputs.items]
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": recipe.parameters(),
            "internalParameters": internal_parameters(recipe, threads, cpu_capability),
            "resolvedDependencies": resolved_dependencies(recipe, inputs),
        },
        "runDetails": {
            "builder": {
                "id": BUILDER_ID,
                "version": {"glassbox": __version__, "torch": str(environment.get("torch"))},
            },
            "metadata": {
                "invocationId": invocation_id,
                "startedOn": started,
                "finishedOn": finished,
            },
            "byproducts": [
                _byproduct(
                    "checkpoint-trail",
                    TRAIL_MEDIA_TYPE,
                    {**trail.to_dict(), "trainSeconds": round(train_seconds, 3)},
                ),
                _byproduct("hermeticity", HERMETICITY_MEDIA_TYPE, hermeticity.to_dict()),
                _byproduct("environment", ENVIRONMENT_MEDIA_TYPE, environment),
                _byproduct("output-manifest", OUTPUTS_MEDIA_TYPE, outputs.to_dict()),
            ],
        },
    }
    return make_statement(subjects, SLSA_PREDICATE_TYPE, predicate)


@dataclass(frozen=True)
class Provenance:
    """A parsed build provenance statement, with accessors for what rebuild and spot-check use."""

    statement: dict[str, Any]
    path: Path
    signed_by: str | None = None  # key id when a signature was verified

    @property
    def predicate(self) -> dict[str, Any]:
        predicate: dict[str, Any] = self.statement["predicate"]
        return predicate

    @property
    def external(self) -> dict[str, Any]:
        value: dict[str, Any] = self.predicate["buildDefinition"]["externalParameters"]
        return value

    @property
    def internal(self) -> dict[str, Any]:
        value: dict[str, Any] = self.predicate["buildDefinition"]["internalParameters"]
        return value

    def dependency(self, name: str) -> dict[str, Any] | None:
        for dep in self.predicate["buildDefinition"]["resolvedDependencies"]:
            if dep.get("name") == name:
                return dict(dep)
        return None

    def byproduct(self, name: str) -> dict[str, Any]:
        for item in self.predicate["runDetails"].get("byproducts", []):
            if item.get("name") == name:
                content = item.get("annotations")
                if not isinstance(content, dict) or _json_digest(content) != item.get("digest"):
                    raise InputError(f"{self.path}: byproduct {name!r} does not match its digest")
                return content
        raise InputError(f"{self.path}: provenance has no {name!r} byproduct")

    @property
    def trail(self) -> Trail:
        return Trail.from_dict(self.byproduct("checkpoint-trail"))

    @property
    def train_seconds(self) -> float:
        return float(self.byproduct("checkpoint-trail").get("trainSeconds", 0.0))

    @property
    def environment(self) -> dict[str, Any]:
        return self.byproduct("environment")

    @property
    def hermeticity(self) -> Hermeticity:
        return Hermeticity.from_dict(self.byproduct("hermeticity"))

    def subjects(self) -> dict[str, str]:
        """Output name -> SHA-256; names are checked to stay inside the model directory."""
        out: dict[str, str] = {}
        for item in self.statement["subject"]:
            name = item["name"]
            if not safe_relative(name):
                raise InputError(f"{self.path}: subject name {name!r} leaves the model directory")
            out[name] = item["digest"].get("sha256", "")
        return out

    @property
    def code_dir(self) -> Path | None:
        code = self.dependency("code")
        if code is None:
            return None
        local = code.get("annotations", {}).get("localPath")
        return Path(local) if isinstance(local, str) else None


def safe_relative(name: object) -> bool:
    """A relative POSIX path with no ``..``: safe to join under a directory we choose."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return False
    parts = PurePosixPath(name).parts
    return not PurePosixPath(name).is_absolute() and ".." not in parts and bool(parts)


def _check_shape(statement: dict[str, Any], where: str) -> None:
    if statement.get("predicateType") != SLSA_PREDICATE_TYPE:
        raise InputError(
            f"{where}: not SLSA provenance (predicateType {statement.get('predicateType')!r})"
        )
    predicate = statement["predicate"]
    try:
        build_type = predicate["buildDefinition"]["buildType"]
        predicate["buildDefinition"]["externalParameters"]["recipe"]
        predicate["buildDefinition"]["internalParameters"]["threads"]
        predicate["runDetails"]["byproducts"]
    except (KeyError, TypeError):
        raise InputError(f"{where}: SLSA provenance is missing Glassbox build fields") from None
    if not safe_relative(predicate["buildDefinition"]["externalParameters"]["recipe"]):
        raise InputError(f"{where}: recorded recipe path leaves the recipe directory")
    if build_type != BUILD_TYPE:
        raise InputError(
            f"{where}: buildType {build_type!r} is not {BUILD_TYPE}; cannot rebuild it"
        )


def load_provenance(path: str | Path, public_key: Path | None = None) -> Provenance:
    """Read a provenance statement or a signed bundle (``provenance.sigstore.json``).

    A directory means the build output directory. With ``public_key`` the bundle's signature must
    verify; without it a bundle's payload is read unverified (the caller says so in its report).
    """
    from glassbox.sign import (
        bundle_envelope,
        load_public_key,
        parse_bundle,
        parse_statement,
        public_key_id,
        verify_bundle,
    )

    path = Path(path).absolute()  # paths derived from it are handed to the training child
    if path.is_dir():
        bundle_path, plain = path / BUNDLE_NAME, path / STATEMENT_NAME
        path = bundle_path if bundle_path.exists() else plain
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PROVENANCE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: provenance not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read provenance: {exc.strerror or exc}") from None
    if len(raw) > MAX_PROVENANCE_BYTES:
        raise InputError(f"{path}: larger than {MAX_PROVENANCE_BYTES >> 20} MiB; not provenance")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: provenance is not JSON ({exc})") from None
    signed_by = None
    if isinstance(data, dict) and "dsseEnvelope" in data:
        bundle = parse_bundle(raw, where=str(path))
        if public_key is not None:
            pub = load_public_key(public_key)
            statement = verify_bundle(bundle, pub, where=str(path))
            signed_by = public_key_id(pub)
        else:
            statement = parse_statement(bundle_envelope(bundle).payload, where=str(path))
    else:
        if public_key is not None:
            raise InputError(f"{path}: unsigned provenance; a public key was given to verify it")
        statement = parse_statement(raw, where=str(path))
    _check_shape(statement, str(path))
    return Provenance(statement, path, signed_by)
