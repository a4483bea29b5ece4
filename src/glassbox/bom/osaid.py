"""The OSI Open Source AI Definition 1.0 (released 2024-10-28), as machine-checkable rules.

The definition asks for three things, each under OSI-approved terms: *data information*
(enough detail about the training data that a skilled person could build a substantially
equivalent system), *code* (the complete source used to train and run the system), and
*parameters* (the weights). The checks map those onto the Model Openness Framework components
a release declares, so both grades come from one inventory:

* data information: the datasets themselves, or a data card, openly licensed. A dataset
  commitment (a Merkle root over records) proves *which* data was used but does not describe
  it, so on its own it does not satisfy this check;
* code: model architecture, training code and inference code under OSI-approved licences;
* parameters: the final parameters under open terms. The OSI has not published a list of
  approved terms for parameters, so Glassbox accepts an OSI-approved licence or a reviewed open
  data licence (``glassbox.bom.licenses``) and says so in the check's detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from glassbox.bom.mof import MofGrade

OSAID_VERSION = "1.0"
OSAID_REFERENCE = "OSI Open Source AI Definition 1.0 (2024-10-28)"


@dataclass(frozen=True)
class OsaidCheck:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class OsaidResult:
    checks: tuple[OsaidCheck, ...]

    @property
    def conforms(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "definition": {"name": "Open Source AI Definition", "version": OSAID_VERSION},
            "conforms": self.conforms,
            "checks": [c.to_dict() for c in self.checks],
        }


def check_osaid(grade: MofGrade, *, dataset_commitments: int = 0) -> OsaidResult:
    """Apply the definition's three requirements to a graded release."""
    status = {s.component.name: s for s in grade.components}

    def describe(names: list[str]) -> str:
        return ", ".join(f"{n} ({status[n].status})" for n in names)

    data_names = ["Datasets", "Data card"]
    data_ok = any(status[n].counts for n in data_names)
    data_detail = describe(data_names)
    if not data_ok and dataset_commitments:
        data_detail += (
            f"; {dataset_commitments} dataset commitment(s) identify the data but do not "
            "describe it"
        )
    code_names = ["Model architecture", "Training code", "Inference code"]
    code_ok = all(status[n].counts for n in code_names)
    weights = status["Model parameters (Final)"]
    param_detail = f"Model parameters (Final) ({weights.status}"
    param_detail += f": {weights.license})" if weights.license else ")"
    param_detail += "; accepted: OSI-approved or reviewed open data licences"
    return OsaidResult(
        (
            OsaidCheck("data information", data_ok, data_detail),
            OsaidCheck("code", code_ok, describe(code_names)),
            OsaidCheck("parameters", weights.counts, param_detail),
        )
    )
