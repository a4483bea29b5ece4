"""Content digests: OMS-compatible model manifests, dataset commitments, RFC 9162 Merkle core."""

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

__all__ = [
    "ALGORITHMS",
    "DEFAULT_IGNORES",
    "DEFAULT_SIGNATURE_NAME",
    "Algorithm",
    "HashMethod",
    "Manifest",
    "ManifestDiff",
    "ManifestItem",
    "ProofError",
]
