"""Trust: where models live (plain directories, Hugging Face cache snapshots, ``hf:`` names),
the user's trust policy, and the gate that runs before a model is loaded."""

from glassbox.trust.locations import HF_PREFIX, ModelLocation, hf_hub_cache, resolve_model

__all__ = ["HF_PREFIX", "ModelLocation", "hf_hub_cache", "resolve_model"]
