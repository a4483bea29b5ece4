"""Glassbox: make AI models as trustworthy as open-source software.

Parts (each a subpackage, depending downward only):
``cli -> hub -> audit -> {pipeline, lm, bom} -> trust -> {scan, tlog} -> sign -> digest``
(``pipeline`` is DESIGN.md's ``build`` part: recipes, hermetic builds, provenance, pipelines).
"""

__version__ = "0.1.0"

from typing import Any as _Any

# Verify-then-load, as ``glassbox.load_pretrained(...)``: resolved on first use, so
# ``import glassbox`` stays free of torch, transformers and the gate itself.
_LOADERS = ("load_gguf", "load_pretrained", "load_safetensors", "load_torch", "open_verified")


def __getattr__(name: str) -> _Any:
    if name in _LOADERS:
        from glassbox.trust import loaders

        value = getattr(loaders, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'glassbox' has no attribute {name!r}")
