"""Openness grading (Model Openness Framework v1.0, OSI OSAID 1.0), CycloneDX 1.6 ML-BOMs and
SPDX 3.0.1 AI/Dataset exports.

Never touches the network: a release is graded from its files, its MOF YAML declaration and its
build provenance.
"""

from glassbox.bom.cyclonedx import (
    SPEC_VERSION,
    BomInputs,
    DatasetInfo,
    bom_for_model,
    build_bom,
    evaluation_metrics,
    model_bom_inputs,
    validate_bom,
)
from glassbox.bom.licenses import (
    OPEN_DATA,
    OSI_APPROVED,
    LicenseExpr,
    LicenseKind,
    canonical_id,
    kind_of,
    parse_expression,
)
from glassbox.bom.mof import (
    CLASS_NAMES,
    COMPONENTS,
    MOF_REFERENCE,
    MOF_VERSION,
    ComponentEntry,
    ComponentStatus,
    MofComponent,
    MofGrade,
    grade,
)
from glassbox.bom.openness import OpennessReport, assess_openness, grade_release
from glassbox.bom.osaid import OSAID_REFERENCE, OSAID_VERSION, OsaidCheck, OsaidResult, check_osaid
from glassbox.bom.provenance import bom_inputs_from_provenance, release_from_provenance
from glassbox.bom.release import (
    Release,
    find_mof_yaml,
    load_mof_yaml,
    release_from_directory,
    release_from_mof_dict,
)
from glassbox.bom.spdx3 import (
    SPDX_CONTEXT,
    SPDX_VERSION,
    build_spdx3,
    spdx3_for_model,
    validate_spdx3,
)

__all__ = [
    "CLASS_NAMES",
    "COMPONENTS",
    "MOF_REFERENCE",
    "MOF_VERSION",
    "OPEN_DATA",
    "OSAID_REFERENCE",
    "OSAID_VERSION",
    "OSI_APPROVED",
    "SPDX_CONTEXT",
    "SPDX_VERSION",
    "SPEC_VERSION",
    "BomInputs",
    "ComponentEntry",
    "ComponentStatus",
    "DatasetInfo",
    "LicenseExpr",
    "LicenseKind",
    "MofComponent",
    "MofGrade",
    "OpennessReport",
    "OsaidCheck",
    "OsaidResult",
    "Release",
    "assess_openness",
    "bom_for_model",
    "bom_inputs_from_provenance",
    "build_bom",
    "build_spdx3",
    "canonical_id",
    "check_osaid",
    "evaluation_metrics",
    "find_mof_yaml",
    "grade",
    "grade_release",
    "kind_of",
    "load_mof_yaml",
    "model_bom_inputs",
    "parse_expression",
    "release_from_directory",
    "release_from_mof_dict",
    "release_from_provenance",
    "spdx3_for_model",
    "validate_bom",
    "validate_spdx3",
]
