"""Load a classifier to probe it, without running anything that came with the weights.

The architecture is code the *user* names (``module:function``, from a recipe or ``--arch``);
the weights are data, read only through safetensors or ``torch.load(weights_only=True)``, which
refuse to construct arbitrary objects. Nothing from the model directory is imported.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from glassbox.errors import InputError

#: Weight files we accept, in order of preference (safetensors cannot carry code at all).
SAFE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def resolve_factory(spec: str, *, search_path: Path | None = None) -> Callable[[], nn.Module]:
    """Import the architecture factory ``module:function`` the user (or the recipe) declared.

    ``search_path`` (a recipe directory; by default the working directory, as ``python -m``
    would) is put first on ``sys.path`` only for the import, so the user's own module is found
    without leaving the path changed for the rest of the process.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"--arch {spec!r}: expected module:function")
    if search_path is None:
        search_path = Path.cwd()
    added = False
    if search_path is not None and str(search_path) not in sys.path:
        sys.path.insert(0, str(search_path))
        added = True
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"--arch {spec!r}: cannot import {module_name}: {exc}") from None
    finally:
        if added:
            sys.path.remove(str(search_path))
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"--arch {spec!r}: {module_name} has no callable {attr}")
    return factory  # type: ignore[no-any-return]


def find_weights(model_path: Path) -> Path:
    """The single weight file of a model directory (or the file itself)."""
    if model_path.is_file():
        return model_path
    if not model_path.is_dir():
        raise InputError(f"{model_path}: no such model file or directory")
    for suffix in SAFE_SUFFIXES:
        candidates = sorted(p for p in model_path.iterdir() if p.suffix == suffix and p.is_file())
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            names = ", ".join(p.name for p in candidates)
            raise InputError(f"{model_path}: several weight files ({names}); name one")
    raise InputError(f"{model_path}: no weight file ({', '.join(SAFE_SUFFIXES)})")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read tensors through a loader that cannot execute code."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except Exception as exc:  # any parse failure is a malformed input, named by file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read weights safely: {first}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise InputError(f"{path}: not a flat mapping of tensor names to tensors")
    return obj


@dataclass
class ProbedModel:
    """A classifier in eval mode plus how to feed it and where its features are read.

    ``input_shape`` is the per-sample shape the network takes (``(64,)`` for an MLP on digits,
    ``(1, 8, 8)`` for a CNN); detectors work on images ``(C, H, W)`` and reshape on the way in.
    The feature layer is the input of the last ``nn.Linear`` (the penultimate representation),
    never the logits: poison shows as a separate cluster there and is squashed in the logits.
    """

    module: nn.Module
    input_shape: tuple[int, ...]
    image_shape: tuple[int, int, int]
    num_classes: int
    feature_module: nn.Module
    modality: str = "image"  # or "tabular": feature vectors in a per-feature unit box

    def _to_input(self, images: torch.Tensor) -> torch.Tensor:
        return images.reshape((images.shape[0], *self.input_shape))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for images ``(N, C, H, W)``; gradients flow (trigger search needs them)."""
        out: torch.Tensor = self.module(self._to_input(images))
        return out

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch: int = 512) -> np.ndarray:
        outs = [
            torch.softmax(self.logits(torch.from_numpy(images[i : i + batch])), dim=1).numpy()
            for i in range(0, len(images), batch)
        ]
        return np.concatenate(outs) if outs else np.zeros((0, self.num_classes), np.float32)

    @torch.no_grad()
    def features(self, images: np.ndarray, batch: int = 512) -> np.ndarray:
        """Penultimate activations (the input of the last linear layer), as float64."""
        chunks: list[np.ndarray] = []
        for i in range(0, len(images), batch):
            with _capture_input(self.feature_module) as seen:
                self.logits(torch.from_numpy(images[i : i + batch]))
            chunks.append(seen[0].reshape(seen[0].shape[0], -1).double().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0))


@contextmanager
def _capture_input(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    seen: list[torch.Tensor] = []

    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen.append(args[0].detach())

    handle = module.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _last_linear(module: nn.Module) -> nn.Linear:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise InputError("the architecture has no nn.Linear head to read features before")
    return linears[-1]


def _candidate_shapes(n: int) -> list[tuple[int, ...]]:
    side = math.isqrt(n)
    shapes: list[tuple[int, ...]] = [(n,)]
    if side * side == n:
        shapes += [(1, side, side), (side, side)]
    return shapes


def infer_features(module: nn.Module, input_shape: tuple[int, ...] | None) -> int:
    """Inputs per record when no data says so: the given shape, else the first layer's width.

    Only a network that starts with ``nn.Linear`` declares its input size; a convolutional one
    accepts many image sizes, so its shape must be given (``--input-shape``).
    """
    if input_shape is not None:
        return int(np.prod(input_shape))
    first = next((m for m in module.modules() if any(True for _ in m.parameters(False))), None)
    if isinstance(first, nn.Linear):
        return int(first.in_features)
    raise InputError(
        "without data the input shape is unknown for this architecture: give --input-shape C,H,W"
    )


def wrap_module(
    module: nn.Module, n_features: int | None, input_shape: tuple[int, ...] | None = None
) -> ProbedModel:
    """Find the input shape the network accepts and the layer to read features from.

    ``n_features`` is the data's width; ``None`` (no data) infers it (``infer_features``).
    """
    if n_features is None:
        n_features = infer_features(module, input_shape)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    shapes = [input_shape] if input_shape is not None else _candidate_shapes(n_features)
    for shape in shapes:
        try:
            with torch.no_grad():
                out = module(torch.zeros((2, *shape)))
        except (RuntimeError, ValueError):
            continue
        if out.ndim == 2 and out.shape[0] == 2 and out.shape[1] >= 2:
            side = math.isqrt(n_features)
            image: tuple[int, int, int] = (
                (1, side, side) if side * side == n_features else (1, 1, n_features)
            )
            if len(shape) == 3:  # a declared (C, H, W) is the image shape itself
                image = (int(shape[0]), int(shape[1]), int(shape[2]))
            return ProbedModel(module, shape, image, int(out.shape[1]), _last_linear(module))
    raise InputError(
        f"the architecture accepts none of the input shapes {shapes} for {n_features} features"
    )


def load_classifier(
    model_path: Path,
    arch: str | Callable[[], nn.Module],
    n_features: int | None,
    *,
    input_shape: tuple[int, ...] | None = None,
    search_path: Path | None = None,
) -> ProbedModel:
    """Build the declared architecture and fill it with weights read safely from ``model_path``."""
    factory = resolve_factory(arch, search_path=search_path) if isinstance(arch, str) else arch
    module = factory()
    if not isinstance(module, nn.Module):
        raise InputError(f"architecture factory returned {type(module).__name__}, not a Module")
    weights = find_weights(model_path)
    state = load_state_dict(weights)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{weights}: weights do not fit the architecture: {first}") from None
    return wrap_module(module, n_features, input_shape)
