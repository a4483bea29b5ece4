"""Content digests: OMS-compatible model manifests, dataset commitments, RFC 9162 Merkle core.

Dataset support (``csv``, ``json``, ``decimal``...) is imported on first use, so commands that
only hash models (``glassbox sign``, ``verify``, ``digest``) start faster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from glassbox.digest.hashing import hash_file
from glassbox.digest.manifest import (
    ALGORITHMS,
    DEFAULT_IGNORES,
    DEFAULT_SIGNATURE_NAME,
    Algorithm,
    HashMethod,
    Manifest,
    ManifestDiff,
    ManifestItem,
)
from glassbox.digest.merkle import ProofError
from glassbox.digest.model import hash_model
from glassbox.digest.walk import hf_snapshot_repo, is_model_file, storage_link_stat

if TYPE_CHECKING:
    from glassbox.digest.dataset import (
        AbsenceProof,
        DatasetCommitment,
        RecordProof,
        commit_dataset,
        load_proof,
        prove_absence,
        prove_record,
        prove_records,
        verify_absence,
        verify_record,
    )
    from glassbox.digest.diff import DatasetDiff, RecordChange, diff_datasets
    from glassbox.digest.known import manifest_from_json, read_manifest_file
    from glassbox.digest.records import canonical_json, iter_records

_LAZY = {
    "AbsenceProof": "glassbox.digest.dataset",
    "DatasetCommitment": "glassbox.digest.dataset",
    "RecordProof": "glassbox.digest.dataset",
    "commit_dataset": "glassbox.digest.dataset",
    "load_proof": "glassbox.digest.dataset",
    "prove_absence": "glassbox.digest.dataset",
    "prove_record": "glassbox.digest.dataset",
    "prove_records": "glassbox.digest.dataset",
    "verify_absence": "glassbox.digest.dataset",
    "verify_record": "glassbox.digest.dataset",
    "DatasetDiff": "glassbox.digest.diff",
    "RecordChange": "glassbox.digest.diff",
    "diff_datasets": "glassbox.digest.diff",
    "canonical_json": "glassbox.digest.records",
    "iter_records": "glassbox.digest.records",
    "manifest_from_json": "glassbox.digest.known",
    "read_manifest_file": "glassbox.digest.known",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'glassbox.digest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ALGORITHMS",
    "DEFAULT_IGNORES",
    "DEFAULT_SIGNATURE_NAME",
    "AbsenceProof",
    "Algorithm",
    "DatasetCommitment",
    "DatasetDiff",
    "HashMethod",
    "Manifest",
    "ManifestDiff",
    "ManifestItem",
    "ProofError",
    "RecordChange",
    "RecordProof",
    "canonical_json",
    "commit_dataset",
    "diff_datasets",
    "hash_file",
    "hash_model",
    "hf_snapshot_repo",
    "is_model_file",
    "iter_records",
    "load_proof",
    "manifest_from_json",
    "prove_absence",
    "prove_record",
    "prove_records",
    "read_manifest_file",
    "storage_link_stat",
    "verify_absence",
    "verify_record",
]
