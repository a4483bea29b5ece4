"""One openness answer for a release: MOF class, OSAID conformance, and a plain headline.

The headline calls things what they are. Weights under an open licence with the code and data
missing are "open weights, not open source"; weights under a restrictive licence are not open at
all; weights with no licence anywhere leave openness unknown (the licence may live elsewhere),
never open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from glassbox.bom.mof import MOF_REFERENCE, MofGrade, grade
from glassbox.bom.osaid import OSAID_REFERENCE, OsaidResult, check_osaid
from glassbox.bom.release import Release, find_mof_yaml, load_mof_yaml, release_from_directory

Verdict = Literal["pass", "fail", "unknown"]

# The class a release should aim for next, to list what it is missing (0: it is Class I).
_NEXT_CLASS = {0: 3, 3: 2, 2: 1, 1: 0}


@dataclass(frozen=True)
class OpennessReport:
    release: Release
    mof: MofGrade
    osaid: OsaidResult
    headline: str
    verdict: Verdict
    missing: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "headline": self.headline,
            "verdict": self.verdict,
            "references": [MOF_REFERENCE, OSAID_REFERENCE],
            "mof": self.mof.to_dict(),
            "osaid": self.osaid.to_dict(),
            "missing": list(self.missing),
            "release": self.release.to_dict(),
        }


def grade_release(release: Release) -> OpennessReport:
    """Grade an inventory under MOF v1.0 and OSAID 1.0."""
    mof = grade(release.entries, release.global_licences)
    osaid = check_osaid(mof, dataset_commitments=len(release.dataset_commitments))
    weights = next(s for s in mof.components if s.component.name == "Model parameters (Final)")
    target = _NEXT_CLASS[mof.mof_class]
    missing = tuple(
        f"{s.component.name} ({s.status}{': ' + s.license if s.license else ''})"
        for s in (mof.blocking(target) if target else [])
    )
    verdict: Verdict
    if mof.mof_class:
        headline = f"MOF {mof.class_name}"
        verdict = "pass"
    elif weights.status == "missing":
        headline = "no model parameters found: openness unknown"
        verdict = "unknown"
    elif weights.status == "unlicensed":
        headline = "weights without a licence: openness unknown"
        verdict = "unknown"
    elif weights.status == "not-open":
        headline = f"weights under a restrictive licence ({weights.license}): not open"
        verdict = "fail"
    else:
        headline = "open weights, not open source"
        verdict = "fail"
    headline += "; OSAID 1.0: " + ("conforms" if osaid.conforms else "does not conform")
    return OpennessReport(release, mof, osaid, headline, verdict, missing)


def assess_openness(
    model_path: Path,
    *,
    mof_yaml: Path | None = None,
    extra: Release | None = None,
) -> OpennessReport:
    """Inventory ``model_path`` (files, its MOF YAML file, ``extra`` such as provenance), grade it.

    A MOF YAML file is the producer's declaration and takes precedence per component; files and
    provenance fill in what it does not mention.
    """
    found = release_from_directory(model_path)
    declared_path = mof_yaml or find_mof_yaml(model_path)
    if declared_path is not None:
        release = load_mof_yaml(declared_path)
        release.merge(found)
    else:
        release = found
    if extra is not None:
        release.merge(extra)
        if declared_path is None:
            release.name = extra.name  # the build's name for it beats a directory name
    return grade_release(release)
