"""Trust: where models live, the user's policy, the gate that enforces it, and loaders that run
the gate first.

Locations: plain directories, Hugging Face cache snapshots and ``hf:org/name@REV`` names.
``glassbox verify MODEL --policy FILE`` and the ``load_*`` functions share one gate: a
signature by a publisher the policy trusts for this model name, the files exactly as signed, a
transparency-log proof with the witness cosignatures the policy asks for and consistent with
what this machine saw, signed provenance if required, and a scan with no finding at or above
the policy's level (pickles refused unless allowed). Loaders then deserialise exactly the bytes
that were verified. torch, transformers and gguf are imported only by the loaders that need
them, so the gate and the policy work without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from glassbox.trust.errors import (
    ChangedFiles,
    LogProofMissing,
    PickleRefused,
    PolicyError,
    ProvenanceMissing,
    Reason,
    RemoteCodeRefused,
    ScanFindings,
    StoreTampered,
    TrustRefused,
    UnknownPublisher,
)
from glassbox.trust.locations import HF_PREFIX, ModelLocation, hf_hub_cache, resolve_model

if TYPE_CHECKING:
    from glassbox.trust.gate import GateResult, verify_model_with_policy
    from glassbox.trust.loaders import (
        VerifiedModel,
        load_gguf,
        load_pretrained,
        load_safetensors,
        load_torch,
        open_verified,
    )
    from glassbox.trust.policy import Publisher, TrustPolicy, load_policy, parse_policy
    from glassbox.trust.store import store_root

# The policy, the gate and the loaders are imported on first use (the scanner and the log
# come with them; torch and transformers only inside a loader call).
_LAZY = {
    "GateResult": "glassbox.trust.gate",
    "verify_model_with_policy": "glassbox.trust.gate",
    "VerifiedModel": "glassbox.trust.loaders",
    "load_gguf": "glassbox.trust.loaders",
    "load_pretrained": "glassbox.trust.loaders",
    "load_safetensors": "glassbox.trust.loaders",
    "load_torch": "glassbox.trust.loaders",
    "open_verified": "glassbox.trust.loaders",
    "store_root": "glassbox.trust.store",
    "Publisher": "glassbox.trust.policy",
    "TrustPolicy": "glassbox.trust.policy",
    "load_policy": "glassbox.trust.policy",
    "parse_policy": "glassbox.trust.policy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'glassbox.trust' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "HF_PREFIX",
    "ChangedFiles",
    "GateResult",
    "LogProofMissing",
    "ModelLocation",
    "PickleRefused",
    "PolicyError",
    "ProvenanceMissing",
    "Publisher",
    "Reason",
    "RemoteCodeRefused",
    "ScanFindings",
    "StoreTampered",
    "TrustPolicy",
    "TrustRefused",
    "UnknownPublisher",
    "VerifiedModel",
    "hf_hub_cache",
    "load_gguf",
    "load_policy",
    "load_pretrained",
    "load_safetensors",
    "load_torch",
    "open_verified",
    "parse_policy",
    "resolve_model",
    "store_root",
    "verify_model_with_policy",
]
