"""What a release contains: the MOF component inventory, from files, a MOF YAML file, provenance.

Three sources, each recorded per component so a reader can see why a component counts:

* the files themselves (a weights file, ``train.py``, ``README.md`` as model card, ``LICENSE``),
  recognised by name only: nothing is imported or executed;
* the producer's declaration in the Model Openness Framework's own YAML component file (the
  format of the LF AI & Data ``model_openness_tool``: ``framework`` + ``release`` with
  ``license`` and ``components``), read with a safe loader;
* build provenance (datasets as commitments, the training code manifest), added by the caller.

A licence found for the whole release (a ``LICENSE`` file's ``SPDX-License-Identifier`` or
title, or the ``license:`` field of a Hugging Face model card) applies to every component that
names none, as the MOT's ``distribution`` licence does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from glassbox.bom.licenses import canonical_id
from glassbox.bom.mof import MOF_VERSION, ComponentEntry, component_named
from glassbox.digest.walk import hf_snapshot_repo, is_model_file
from glassbox.errors import InputError

MAX_MOF_YAML_BYTES = 1 << 20
MAX_LICENSE_BYTES = 256 << 10
MAX_FILES = 100_000
MOF_YAML_NAMES = ("mof.yml", "mof.yaml", "model_openness.yml", "model_openness.yaml")

WEIGHT_SUFFIXES = frozenset(
    {
        ".safetensors",
        ".bin",
        ".pt",
        ".pth",
        ".ckpt",
        ".gguf",
        ".onnx",
        ".h5",
        ".keras",
        ".npz",
        ".joblib",
        ".pkl",
        ".msgpack",
        ".tflite",
    }
)

# (component, path pattern) rules over POSIX paths relative to the model root, first match wins
# per file; every rule is a name convention seen in public model repositories.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("Model card", r"^(README|MODEL_?CARD)\.(md|rst|txt)$"),
        ("Data card", r"(^|/)(DATA_?CARD|DATASET_?CARD)[^/]*\.(md|rst|txt|json)$"),
        ("Technical report", r"(^|/)tech(nical)?[_-]?report[^/]*$"),
        ("Research paper", r"(^|/)(research[_-]?)?paper[^/]*\.(pdf|md|tex)$"),
        (
            "Evaluation results",
            r"(^|/)(eval(uation)?[_-]?results?|results|metrics)[^/]*\.(json|md|csv)$",
        ),
        ("Evaluation data", r"(^|/)(eval(uation)?[_-]?data|test[_-]?data)(/|$)"),
        ("Sample model outputs", r"(^|/)samples?([_-]outputs?)?(/|\.)"),
        ("Data preprocessing code", r"(^|/)(pre[_-]?process|prepare[_-]?data)[^/]*\.py$"),
        ("Training code", r"(^|/)(train|training|finetune|fine_tune)[^/]*\.py$"),
        ("Evaluation code", r"(^|/)(eval|evaluate|evaluation|benchmark)[^/]*\.py$"),
        ("Inference code", r"(^|/)(infer|inference|predict|generate|serve)[^/]*\.py$"),
        ("Model architecture", r"(^|/)(model|models|modeling_[^/]*|architecture|net)\.py$"),
        (
            "Supporting libraries and tools",
            r"^(requirements[^/]*\.txt|pyproject\.toml|environment\.ya?ml|setup\.py)$",
        ),
        ("Model parameters (Intermediate)", r"(^|/)(checkpoints?|ckpts?)/"),
        ("Datasets", r"^(data|datasets?)/"),
        (
            "Model metadata",
            r"^(config|generation_config|training_args|hparams|recipe)[^/]*\.(json|ya?ml|toml)$",
        ),
    )
)

_SPDX_TAG = re.compile(r"SPDX-License-Identifier:\s*([^\r\n*]+)")
_LICENSE_TITLES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), spdx)
    for pattern, spdx in (
        (r"Apache License\s+Version 2\.0", "Apache-2.0"),
        (r"^\s*MIT License", "MIT"),
        (r"Permission is hereby granted, free of charge", "MIT"),
        (r"BSD 3-Clause License", "BSD-3-Clause"),
        (r"BSD 2-Clause License", "BSD-2-Clause"),
        (r"GNU GENERAL PUBLIC LICENSE\s+Version 3", "GPL-3.0-only"),
        (r"Mozilla Public License,? (Version|v\.) 2\.0", "MPL-2.0"),
        (r"Creative Commons Attribution 4\.0 International", "CC-BY-4.0"),
        (r"CC0 1\.0 Universal", "CC0-1.0"),
        (r"Community Data License Agreement . Permissive . Version 2\.0", "CDLA-Permissive-2.0"),
    )
)


@dataclass
class Release:
    """A release's component inventory, ready for grading."""

    name: str
    version: str | None = None
    entries: dict[str, ComponentEntry] = field(default_factory=dict)
    global_licences: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    dataset_commitments: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, entry: ComponentEntry, *, override: bool = False) -> None:
        """Record a component; a present entry wins over an absent one, the first over later."""
        current = self.entries.get(entry.name)
        if current is None or override or (entry.present and not current.present):
            if current is not None and current.license and not entry.license:
                entry = replace(entry, license=current.license)
            self.entries[entry.name] = entry

    def merge(self, other: Release) -> None:
        """Fold ``other`` in: its entries fill gaps, its global licences fill missing scopes."""
        for entry in other.entries.values():
            self.add(entry)
        for scope, licence in other.global_licences.items():
            self.global_licences.setdefault(scope, licence)
        self.sources.extend(s for s in other.sources if s not in self.sources)
        self.dataset_commitments.extend(other.dataset_commitments)
        self.notes.extend(other.notes)
        if self.version is None:
            self.version = other.version

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sources": list(self.sources),
            "global_licences": dict(self.global_licences),
            "components": [e.to_dict() for e in self.entries.values()],
            "dataset_commitments": list(self.dataset_commitments),
            "notes": list(self.notes),
        }


def load_mof_yaml(path: Path) -> Release:
    """Read a MOF YAML component file (the model_openness_tool format) into a ``Release``."""
    import yaml  # type: ignore[import-untyped]

    try:
        size = path.stat().st_size
        if size > MAX_MOF_YAML_BYTES:
            raise InputError(f"{path}: MOF file larger than {MAX_MOF_YAML_BYTES} bytes")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read MOF file: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    return release_from_mof_dict(data, str(path), base=path.parent)


def release_from_mof_dict(data: Any, origin: str, *, base: Path | None = None) -> Release:
    """Validate the MOF YAML structure and turn it into a ``Release``.

    With ``base`` (the release directory), a component declared at a local relative path is
    checked: a declaration whose file is not there does not count as released.
    """
    if not isinstance(data, dict):
        raise InputError(f"{origin}: MOF file must be a mapping with 'framework' and 'release'")
    framework = data.get("framework")
    if not isinstance(framework, dict) or framework.get("name") != "Model Openness Framework":
        raise InputError(f"{origin}: 'framework.name' must be 'Model Openness Framework'")
    rel = data.get("release")
    if not isinstance(rel, dict) or not isinstance(rel.get("name"), str):
        raise InputError(f"{origin}: 'release.name' is missing")
    release = Release(name=rel["name"], sources=[f"MOF file {origin}"])
    if rel.get("version") is not None:
        release.version = str(rel["version"])
    if str(framework.get("version")) != MOF_VERSION:
        release.notes.append(
            f"{origin} declares MOF version {framework.get('version')!r}; graded under "
            f"MOF {MOF_VERSION}"
        )
    licences = rel.get("license") or {}
    if not isinstance(licences, dict):
        raise InputError(f"{origin}: 'release.license' must be a mapping of scope to licence")
    for scope, value in licences.items():
        name = value.get("name") if isinstance(value, dict) else value
        if isinstance(name, str) and name.strip():
            release.global_licences[str(scope)] = canonical_id(name)
    components = rel.get("components") or []
    if not isinstance(components, list):
        raise InputError(f"{origin}: 'release.components' must be a list")
    for index, item in enumerate(components):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError(f"{origin}: component #{index + 1} has no name")
        component = component_named(item["name"])
        if component is None:
            release.notes.append(f"{origin}: unknown component {item['name']!r} ignored")
            continue
        licence = item.get("license")
        location = str(item.get("component_path") or "") or None
        note = _check_declared_path(base, location)
        release.add(
            ComponentEntry(
                name=component.name,
                present=not note,
                license=canonical_id(licence) if isinstance(licence, str) and licence else None,
                location=location,
                source="declared in MOF file",
                note=note,
            ),
            override=True,
        )
        if note:
            release.notes.append(f"{origin}: {component.name} {note}")
    return release


def _check_declared_path(base: Path | None, location: str | None) -> str:
    """Why a declared local component path does not hold ("" when it does or is remote)."""
    if base is None or not location or "://" in location:
        return ""
    candidate = PurePosixPath(location)
    if candidate.is_absolute() or ".." in candidate.parts:
        return f"is declared at {location}, outside the release"
    target = base / candidate
    if not is_model_file(target):
        return f"is declared at {location}, but no such file is in the release"
    return ""


def release_from_directory(root: Path, name: str | None = None) -> Release:
    """Inventory a model directory (or a single model file) by file names; reads only licences."""
    from glassbox.trust.locations import display_name

    release = Release(name=name or display_name(root), sources=[f"files under {root}"])
    if root.is_file():
        if root.suffix.lower() in WEIGHT_SUFFIXES:
            release.add(ComponentEntry("Model parameters (Final)", True, None, root.name, "file"))
        return release
    found: dict[str, list[str]] = {}
    for rel in _walk(root):
        posix = rel.as_posix()
        if rel.suffix.lower() in WEIGHT_SUFFIXES and len(rel.parts) == 1:
            found.setdefault("Model parameters (Final)", []).append(posix)
            continue
        for component, pattern in _RULES:
            if pattern.search(posix):
                found.setdefault(component, []).append(posix)
                break
    for component, paths in found.items():
        shown = ", ".join(paths[:3]) + (f" (+{len(paths) - 3} more)" if len(paths) > 3 else "")
        release.add(ComponentEntry(component, True, None, shown, "file"))
    licence = _directory_licence(root)
    if licence is not None:
        release.global_licences["distribution"] = licence[0]
        release.sources.append(licence[1])
    return release


def _walk(root: Path) -> list[PurePosixPath]:
    """Relative paths of regular files under ``root``, never following symlinks out (a Hugging
    Face cache snapshot's links into its repository are its files: see ``is_model_file``)."""
    out: list[PurePosixPath] = []
    repo = hf_snapshot_repo(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            full = Path(dirpath) / filename
            if filename.startswith(".") or (full.is_symlink() and not is_model_file(full, repo)):
                continue
            out.append(PurePosixPath(full.relative_to(root).as_posix()))
            if len(out) >= MAX_FILES:
                return out
    return out


def _directory_licence(root: Path) -> tuple[str, str] | None:
    for candidate in ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING", "LICENCE"):
        path = root / candidate
        if is_model_file(path):
            text = _read_head(path)
            tag = _SPDX_TAG.search(text)
            if tag:
                return canonical_id(tag.group(1).strip()), f"licence from {candidate}"
            for pattern, spdx in _LICENSE_TITLES:
                if pattern.search(text):
                    return spdx, f"licence from {candidate} (recognised text)"
    for candidate in ("README.md", "MODEL_CARD.md", "model_card.md"):
        path = root / candidate
        if is_model_file(path):
            licence = _card_licence(_read_head(path))
            if licence:
                return canonical_id(licence), f"licence from {candidate} front matter"
    return None


def _read_head(path: Path) -> str:
    with path.open("rb") as handle:
        return handle.read(MAX_LICENSE_BYTES).decode("utf-8", errors="replace")


def _card_licence(text: str) -> str | None:
    """The ``license:`` of a Hugging Face model card's YAML front matter, if any."""
    import yaml

    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        meta = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return None
    licence = meta.get("license") if isinstance(meta, dict) else None
    if isinstance(licence, list) and licence:
        licence = " OR ".join(str(x) for x in licence)
    return licence if isinstance(licence, str) and licence.strip() else None


def find_mof_yaml(root: Path) -> Path | None:
    """The MOF YAML file shipped inside a model directory or beside a model file, if any."""
    base = root if root.is_dir() else root.parent
    for name in MOF_YAML_NAMES:
        candidate = base / name
        if is_model_file(candidate):
            return candidate
    return None
