"""Read what a build's SLSA v1 provenance says about a release, for grading and for the BOM.

Glassbox builds record their recipe (buildType ``https://glassbox.dev/build/recipe/v1``) in the
provenance's ``externalParameters``: licence, datasets with their commitments, the code
directory; the environment (Python, platform, packages) in ``internalParameters``. Other
builders' provenance is read for the parts SLSA v1 standardises (``resolvedDependencies``).
The statement must already be verified by the caller; nothing here checks signatures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from glassbox.bom.cyclonedx import BomInputs, DatasetInfo
from glassbox.bom.licenses import canonical_id
from glassbox.bom.mof import ComponentEntry
from glassbox.bom.release import Release

GLASSBOX_BUILD_TYPE = "https://glassbox.dev/build/recipe/v1"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def recipe_of(statement: dict[str, Any]) -> dict[str, Any]:
    """The recipe a Glassbox build recorded (``externalParameters.recipe`` or the parameters)."""
    params = _dict(
        _dict(_dict(statement.get("predicate")).get("buildDefinition")).get("externalParameters")
    )
    recipe = params.get("recipe")
    return recipe if isinstance(recipe, dict) else params


def build_type(statement: dict[str, Any]) -> str | None:
    return _str(_dict(_dict(statement.get("predicate")).get("buildDefinition")).get("buildType"))


def _datasets(statement: dict[str, Any]) -> Iterator[DatasetInfo]:
    for item in _list(recipe_of(statement).get("datasets")):
        data = _dict(item)
        name = _str(data.get("name"))
        if name is None:
            continue
        records = data.get("records")
        licence = _str(data.get("licence")) or _str(data.get("license"))
        yield DatasetInfo(
            name=name,
            commitment=_str(data.get("commitment")),
            records=records if isinstance(records, int) and not isinstance(records, bool) else None,
            fmt=_str(data.get("format")),
            license=canonical_id(licence) if licence else None,
            location=_str(data.get("path")) or _str(data.get("uri")),
            role=dataset_role(name, _str(data.get("role"))),
        )


# A recipe names its datasets but (recipe schema v1) does not say what each is for; the usual
# split names do, and a BOM must not call a test split "training data".
_ROLE_WORDS = {
    "test": ("test", "testing", "heldout", "holdout"),
    "validation": ("val", "valid", "validation", "dev"),
    "evaluation": ("eval", "evaluation", "benchmark"),
}


def dataset_role(name: str, declared: str | None = None) -> str:
    """What a dataset is for: its declared ``role`` if any, else what its name says (``test``,
    ``digits-test``, ``val_split``, ``eval`` ...), else ``training``."""
    if declared:
        return declared
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    for role, names in _ROLE_WORDS.items():
        if words.intersection(names):
            return role
    return "training"


def byproduct(statement: dict[str, Any], name: str) -> dict[str, Any]:
    """A named SLSA ``runDetails.byproducts`` entry's structured content (Glassbox builds keep
    it in the ResourceDescriptor's ``annotations``), or ``{}``."""
    run = _dict(_dict(statement.get("predicate")).get("runDetails"))
    for item in _list(run.get("byproducts")):
        data = _dict(item)
        if data.get("name") == name:
            return _dict(data.get("annotations")) or _dict(data.get("content"))
    return {}


def environment_of(statement: dict[str, Any]) -> dict[str, Any]:
    """The build environment record (Python, platform, packages), wherever the builder put it."""
    internal = _dict(
        _dict(_dict(statement.get("predicate")).get("buildDefinition")).get("internalParameters")
    )
    env = internal.get("environment")
    return env if isinstance(env, dict) else byproduct(statement, "environment")


def _packages(env: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    packages = env.get("packages")
    pairs: list[tuple[str, str]] = []
    if isinstance(packages, dict):
        pairs = [(str(k), str(v)) for k, v in packages.items() if isinstance(v, str)]
    else:
        for item in _list(packages):
            data = _dict(item)
            if _str(data.get("name")) and _str(data.get("version")):
                pairs.append((str(data["name"]), str(data["version"])))
    return tuple(sorted(pairs))


def release_from_provenance(statement: dict[str, Any]) -> Release:
    """The components a verified build provenance proves exist: training code, metadata, data."""
    recipe = recipe_of(statement)
    name = _str(recipe.get("name")) or "model"
    release = Release(name=name, version=_str(recipe.get("version")), sources=["build provenance"])
    licence = _str(recipe.get("licence")) or _str(recipe.get("license"))
    licence = canonical_id(licence) if licence else None
    if licence:
        # The recipe's licence is the release's: it covers every component that names none.
        release.global_licences["distribution"] = licence
    entry = _str(recipe.get("entry")) or _str(_dict(recipe.get("code")).get("entry"))
    if entry:
        release.add(
            ComponentEntry(
                "Training code", True, licence, f"recipe code, entry {entry}", "build provenance"
            )
        )
    model = _dict(recipe.get("model"))
    if model.get("factory"):
        release.add(
            ComponentEntry(
                "Model architecture",
                True,
                licence,
                f"recipe code, factory {model['factory']}",
                "build provenance",
            )
        )
    if build_type(statement) == GLASSBOX_BUILD_TYPE:
        release.add(
            ComponentEntry(
                "Model metadata",
                True,
                licence,
                "recipe (hyper-parameters, seed, threads) in provenance",
                "build provenance",
            )
        )
    for dataset in _datasets(statement):
        release.dataset_commitments.append(
            {"name": dataset.name, "commitment": dataset.commitment, "records": dataset.records}
        )
    return release


def bom_inputs_from_provenance(
    statement: dict[str, Any] | None, *, licence: str | None = None
) -> BomInputs:
    """BOM details from a verified provenance statement (or none: files only)."""
    if statement is None:
        return BomInputs(license=licence)
    recipe = recipe_of(statement)
    env = environment_of(statement)
    recipe_licence = _str(recipe.get("licence")) or _str(recipe.get("license"))
    model = _dict(recipe.get("model"))
    props = [("glassbox:build-type", build_type(statement) or "unknown")]
    run = _dict(recipe.get("run")) or recipe
    for key in ("seed", "threads", "cpu_capability"):
        if key in run and not isinstance(run[key], dict | list):
            props.append((f"glassbox:run:{key}", str(run[key])))
    return BomInputs(
        version=_str(recipe.get("version")),
        description=_str(recipe.get("description")),
        license=licence or (canonical_id(recipe_licence) if recipe_licence else None),
        datasets=tuple(_datasets(statement)),
        packages=_packages(env),
        python=_str(env.get("python")) or _str(env.get("python_version")),
        platform=_str(env.get("platform")),
        architecture=_str(model.get("factory")),
        properties=tuple(props),
        ancestors=tuple(_base_models(statement)),
    )


def _base_models(statement: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The base model a build declares (its ``base-model`` resolved dependency)."""
    build = _dict(_dict(statement.get("predicate")).get("buildDefinition"))
    for dep in _list(build.get("resolvedDependencies")):
        dep = _dict(dep)
        digest = _str(_dict(dep.get("digest")).get("sha256"))
        if dep.get("name") == "base-model" and digest:
            path = _str(_dict(dep.get("annotations")).get("path")) or "base model"
            yield path.rstrip("/") or "base model", digest
