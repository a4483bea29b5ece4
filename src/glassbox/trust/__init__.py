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

from glassbox.trust.locations import HF_PREFIX, ModelLocation, hf_hub_cache, resolve_model

__all__ = ["HF_PREFIX", "ModelLocation", "hf_hub_cache", "resolve_model"]
