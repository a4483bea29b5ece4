"""Turn a built model back into a live ``torch.nn.Module`` (for behavioural scans, evaluation).

Weights alone do not say which architecture they belong to; the provenance records the recipe's
architecture factory (``module:function`` plus its config). Loading checks that the code is the
code the provenance names and that the weights file is the subject it names, before importing
anything, so what runs is exactly the declared source and the declared bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from glassbox.digest import Manifest, hash_file, hash_model
from glassbox.errors import InputError, VerificationError
from glassbox.pipeline.compare import load_safetensors
from glassbox.pipeline.context import import_callable
from glassbox.pipeline.provenance import MODEL_DIR, load_provenance

if TYPE_CHECKING:
    import torch


def load_built_model(
    provenance_path: str | Path,
    *,
    model_dir: str | Path | None = None,
    code_dir: str | Path | None = None,
    weights: str = "model.safetensors",
    public_key: Path | None = None,
) -> torch.nn.Module:
    """Build the recorded architecture from the recipe's code and load the recorded weights."""
    import torch

    prov = load_provenance(provenance_path, public_key)
    models = Path(model_dir) if model_dir else prov.path.parent / MODEL_DIR
    code = Path(code_dir) if code_dir else prov.code_dir
    if code is None:
        raise InputError(f"{prov.path}: provenance does not say where the code is; pass code_dir")
    subjects = prov.subjects()
    if weights not in subjects:
        raise InputError(f"{prov.path}: {weights!r} is not an output of this build")
    path = models / weights
    if hash_file(path).hex() != subjects[weights]:
        raise VerificationError(f"{path}: weights are not the bytes the provenance names")
    dep = prov.dependency("code")
    if dep is None:
        raise InputError(f"{prov.path}: provenance records no code")
    recorded = Manifest.from_dict(dep["annotations"]["manifest"])
    current = hash_model(code, ignore_paths=recorded.ignore_paths, use_cache=False)
    diff = recorded.diff(current)
    if diff:
        raise VerificationError(f"{code}: code differs from the provenance ({diff.describe()})")
    model_spec = prov.external["model"]
    factory = import_callable(code, str(model_spec["factory"]), isolated=True)
    module = factory(**dict(model_spec.get("config", {})))
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"{model_spec['factory']} did not return a torch.nn.Module")
    module.load_state_dict(load_safetensors(path), strict=True)
    return module
