"""The Model Openness Framework (MOF) v1.0: its 17 components and Class I / II / III rules.

Pinned to MOF v1.0 (White et al., "The Model Openness Framework", arXiv:2403.13784) as the
LF AI & Data ``model_openness_tool`` encodes it (framework ``version: '1.0'``, dated
2024-12-15): the component names, the class each belongs to, whether it is required, and the
content type that decides which licences it accepts. The classes nest: Class III (Open Model)
needs its own components; Class II (Open Tooling) needs Class III's plus its own; Class I (Open
Science) needs all of them. A required component counts only when it is released *and* under an
open licence of the right kind (OSI-approved for code, an open data/content licence for data and
documents; either for model parameters).

One rule of the tool is not adopted: its "conditional pass" that awards Class III whenever the
final parameters carry an OSI licence, whatever else is missing. That is exactly the "open
weights" case this grade exists to tell apart, so it is reported as open weights instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glassbox.bom.licenses import LicenseKind, parse_expression
from glassbox.errors import InputError

MOF_VERSION = "1.0"
MOF_DATE = "2024-12-15"
MOF_REFERENCE = "Model Openness Framework v1.0 (arXiv:2403.13784; LF AI & Data MOT, 2024-12-15)"

CLASS_NAMES = {
    0: "Unclassified",
    3: "Class III - Open Model",
    2: "Class II - Open Tooling",
    1: "Class I - Open Science",
}

_OSI = frozenset({LicenseKind.OSI})
_DATA = frozenset({LicenseKind.OPEN_DATA})
_EITHER = frozenset({LicenseKind.OSI, LicenseKind.OPEN_DATA})


@dataclass(frozen=True)
class MofComponent:
    """One of the framework's 17 components."""

    name: str
    content_type: str  # "code", "data", "document", or a combination (the tool's content_type)
    mof_class: int  # the least demanding class that needs it: 3, then 2, then 1
    required: bool
    accepts: frozenset[LicenseKind]
    description: str


COMPONENTS: tuple[MofComponent, ...] = (
    # Class III - Open Model
    MofComponent(
        "Model architecture", "code", 3, True, _OSI, "Well commented code for the architecture"
    ),
    MofComponent(
        "Model parameters (Final)",
        "data|code",
        3,
        True,
        _EITHER,
        "Trained model parameters, weights and biases",
    ),
    MofComponent("Model card", "document|code", 3, True, _EITHER, "Intended use and limitations"),
    MofComponent("Data card", "document|code", 3, True, _EITHER, "Dataset source and processing"),
    MofComponent("Technical report", "document|code", 3, True, _EITHER, "Capabilities and usage"),
    MofComponent(
        "Evaluation results", "document|code", 3, True, _EITHER, "Results of evaluating the model"
    ),
    MofComponent("Sample model outputs", "document", 3, False, _DATA, "Examples of outputs"),
    # Class II - Open Tooling
    MofComponent("Training code", "code", 2, True, _OSI, "Code used to train the model"),
    MofComponent("Inference code", "code", 2, True, _OSI, "Code to run the model"),
    MofComponent("Evaluation code", "code", 2, True, _OSI, "Code used to evaluate the model"),
    MofComponent("Evaluation data", "data", 2, True, _DATA, "Data used to evaluate the model"),
    MofComponent(
        "Supporting libraries and tools", "code", 2, False, _OSI, "Libraries used in development"
    ),
    # Class I - Open Science
    MofComponent(
        "Datasets", "data|code|document", 1, True, _EITHER, "Training, validation and test data"
    ),
    MofComponent(
        "Data preprocessing code", "code", 1, True, _OSI, "Data cleansing and augmentation code"
    ),
    MofComponent(
        "Model parameters (Intermediate)",
        "data",
        1,
        True,
        _EITHER,
        "Intermediate checkpoints of the parameters",
    ),
    MofComponent("Research paper", "document", 1, True, _DATA, "Paper on development and results"),
    MofComponent(
        "Model metadata", "data", 1, False, _EITHER, "Training configuration, optimizer states"
    ),
)

BY_NAME = {c.name: c for c in COMPONENTS}
_BY_LOWER = {c.name.lower(): c for c in COMPONENTS}


@dataclass(frozen=True)
class ComponentEntry:
    """What a release says about one component: whether it is there, its licence, its source."""

    name: str
    present: bool
    license: str | None = None
    location: str | None = None
    source: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "present": self.present,
            "license": self.license,
            "location": self.location,
            "source": self.source,
            "note": self.note,
        }


@dataclass(frozen=True)
class ComponentStatus:
    """One component's standing under the framework."""

    component: MofComponent
    entry: ComponentEntry | None
    status: str  # "open", "missing", "unlicensed", "not-open"
    license: str | None

    @property
    def counts(self) -> bool:
        return self.status == "open"

    def to_dict(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "name": self.component.name,
            "class": self.component.mof_class,
            "required": self.component.required,
            "status": self.status,
            "license": self.license,
            "location": entry.location if entry else None,
            "source": entry.source if entry else None,
            "note": entry.note if entry else "",
        }


@dataclass(frozen=True)
class MofGrade:
    """The class reached, and for each class what is missing or not openly licensed."""

    mof_class: int
    components: tuple[ComponentStatus, ...]
    progress: dict[int, float] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.mof_class]

    def blocking(self, mof_class: int) -> list[ComponentStatus]:
        """Required components that keep the release from ``mof_class``."""
        return [
            s
            for s in self.components
            if s.component.required and s.component.mof_class >= mof_class and not s.counts
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "framework": {"name": "Model Openness Framework", "version": MOF_VERSION},
            "class": self.mof_class,
            "class_name": self.class_name,
            "progress": {str(k): round(v, 1) for k, v in sorted(self.progress.items())},
            "components": [s.to_dict() for s in self.components],
            "missing_for": {
                str(c): [s.component.name for s in self.blocking(c)] for c in (3, 2, 1)
            },
        }


def component_status(
    component: MofComponent,
    entry: ComponentEntry | None,
    global_licences: dict[str, str] | None = None,
) -> ComponentStatus:
    """Decide whether ``entry`` satisfies ``component`` under the framework's licence rules."""
    if entry is None or not entry.present:
        return ComponentStatus(component, entry, "missing", entry.license if entry else None)
    licence = entry.license or _global_licence(component, global_licences or {})
    if not licence:
        return ComponentStatus(component, entry, "unlicensed", None)
    try:
        expr = parse_expression(licence)
    except InputError:
        return ComponentStatus(component, entry, "not-open", licence)
    status = "open" if expr.satisfies(component.accepts) else "not-open"
    return ComponentStatus(component, entry, status, str(expr))


def _global_licence(component: MofComponent, globals_: dict[str, str]) -> str | None:
    for scope in (*component.content_type.split("|"), "distribution"):
        if globals_.get(scope):
            return globals_[scope]
    return None


def grade(
    entries: dict[str, ComponentEntry], global_licences: dict[str, str] | None = None
) -> MofGrade:
    """Grade a release from its component entries (keyed by MOF component name)."""
    statuses = tuple(component_status(c, entries.get(c.name), global_licences) for c in COMPONENTS)
    progress: dict[int, float] = {}
    complete: dict[int, bool] = {}
    for mof_class in (3, 2, 1):
        needed = [
            s for s in statuses if s.component.required and s.component.mof_class >= mof_class
        ]
        met = sum(1 for s in needed if s.counts)
        progress[mof_class] = 100.0 * met / len(needed)
        complete[mof_class] = met == len(needed)
    reached = 0
    for mof_class in (3, 2, 1):
        if not complete[mof_class]:
            break
        reached = mof_class
    return MofGrade(reached, statuses, progress)


def component_named(name: str) -> MofComponent | None:
    """Look a component up by its MOF name, ignoring case and surrounding space."""
    return _BY_LOWER.get(name.strip().lower())
