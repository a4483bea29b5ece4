"""Read a language model's weights one tensor at a time, whatever the file format.

Lineage compares two models tensor by tensor, so it never needs a whole model in memory: a
reader lists the tensor names and hands out one tensor (as float32 numpy) on request.
Formats: safetensors (one file, or shards with a ``model.safetensors.index.json``), PyTorch
state dicts (``torch.load(weights_only=True, mmap=True)``: the restricted unpickler, never
plain pickle), and GGUF (``gguf``'s memory-mapped reader, quantised blocks dequantised on
request). Names are mapped to a canonical ``(layer, role)`` so a Hugging Face checkpoint and a
GGUF export of it line up.

Nothing here imports or executes anything from the model: no config-driven code, no pickle
beyond torch's weights-only allowlist.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError
from glassbox.files import read_json_file

if TYPE_CHECKING:
    import numpy as np

MAX_INDEX_BYTES = 64 << 20
MAX_CONFIG_BYTES = 4 << 20
_SAFETENSORS_INDEX = "model.safetensors.index.json"
_TORCH_NAMES = ("pytorch_model.bin", "model.pt", "model.pth", "pytorch_model.pt")
_TORCH_SUFFIXES = (".bin", ".pt", ".pth")


@dataclass(frozen=True)
class Role:
    """What a tensor is, independent of the checkpoint's naming scheme.

    ``layer`` is the block index (``None`` for embeddings, head and final norm);
    ``residual_axis`` is the axis that indexes the residual stream (``None`` when the tensor
    has none, or it is 1-D), in the orientation the reader returns.
    """

    layer: int | None
    kind: str
    residual_axis: int | None

    @property
    def key(self) -> str:
        return self.kind if self.layer is None else f"layers.{self.layer}.{self.kind}"


# (pattern, kind, residual axis of the returned array). Linear weights are [out, in]; GPT-2's
# Conv1D weights are [in, out]; GGUF tensors come back in numpy (row-major) order, which for
# llama.cpp's converters is the Linear orientation.
_PATTERNS: list[tuple[re.Pattern[str], str, int | None]] = [
    (re.compile(p), kind, axis)
    for p, kind, axis in [
        # Hugging Face Llama / Mistral / Qwen2 style
        (r"^(?:model\.)?embed_tokens\.weight$", "embed", 1),
        (r"^lm_head\.weight$", "lm_head", 1),
        (r"^(?:model\.)?norm\.weight$", "final_norm", 0),
        (r"^(?:model\.)?layers\.(\d+)\.self_attn\.q_proj\.weight$", "attn_q", 1),
        (r"^(?:model\.)?layers\.(\d+)\.self_attn\.k_proj\.weight$", "attn_k", 1),
        (r"^(?:model\.)?layers\.(\d+)\.self_attn\.v_proj\.weight$", "attn_v", 1),
        (r"^(?:model\.)?layers\.(\d+)\.self_attn\.o_proj\.weight$", "attn_o", 0),
        (r"^(?:model\.)?layers\.(\d+)\.mlp\.gate_proj\.weight$", "mlp_gate", 1),
        (r"^(?:model\.)?layers\.(\d+)\.mlp\.up_proj\.weight$", "mlp_up", 1),
        (r"^(?:model\.)?layers\.(\d+)\.mlp\.down_proj\.weight$", "mlp_down", 0),
        (r"^(?:model\.)?layers\.(\d+)\.input_layernorm\.weight$", "norm_attn", 0),
        (r"^(?:model\.)?layers\.(\d+)\.post_attention_layernorm\.weight$", "norm_mlp", 0),
        # Hugging Face GPT-2 (Conv1D: [in, out])
        (r"^(?:transformer\.)?wte\.weight$", "embed", 1),
        (r"^(?:transformer\.)?wpe\.weight$", "pos_embed", 1),
        (r"^(?:transformer\.)?ln_f\.weight$", "final_norm", 0),
        (r"^(?:transformer\.)?h\.(\d+)\.attn\.c_attn\.weight$", "attn_qkv", 0),
        (r"^(?:transformer\.)?h\.(\d+)\.attn\.c_proj\.weight$", "attn_o", 1),
        (r"^(?:transformer\.)?h\.(\d+)\.mlp\.c_fc\.weight$", "mlp_up", 0),
        (r"^(?:transformer\.)?h\.(\d+)\.mlp\.c_proj\.weight$", "mlp_down", 1),
        (r"^(?:transformer\.)?h\.(\d+)\.ln_1\.weight$", "norm_attn", 0),
        (r"^(?:transformer\.)?h\.(\d+)\.ln_2\.weight$", "norm_mlp", 0),
        # GGUF (llama.cpp names)
        (r"^token_embd\.weight$", "embed", 1),
        (r"^position_embd\.weight$", "pos_embed", 1),
        (r"^output\.weight$", "lm_head", 1),
        (r"^output_norm\.weight$", "final_norm", 0),
        (r"^blk\.(\d+)\.attn_q\.weight$", "attn_q", 1),
        (r"^blk\.(\d+)\.attn_k\.weight$", "attn_k", 1),
        (r"^blk\.(\d+)\.attn_v\.weight$", "attn_v", 1),
        (r"^blk\.(\d+)\.attn_qkv\.weight$", "attn_qkv", 1),
        (r"^blk\.(\d+)\.attn_output\.weight$", "attn_o", 0),
        (r"^blk\.(\d+)\.ffn_gate\.weight$", "mlp_gate", 1),
        (r"^blk\.(\d+)\.ffn_up\.weight$", "mlp_up", 1),
        (r"^blk\.(\d+)\.ffn_down\.weight$", "mlp_down", 0),
        (r"^blk\.(\d+)\.attn_norm\.weight$", "norm_attn", 0),
        (r"^blk\.(\d+)\.ffn_norm\.weight$", "norm_mlp", 0),
    ]
]


def canonical_role(name: str) -> Role | None:
    """The role of a tensor name, or ``None`` for tensors lineage does not use (biases, ...)."""
    for pattern, kind, axis in _PATTERNS:
        match = pattern.match(name)
        if match:
            layer = int(match.group(1)) if match.groups() else None
            return Role(layer, kind, axis)
    return None


class WeightReader(ABC):
    """One model's tensors, read lazily. Subclasses implement ``names`` and ``_read``."""

    path: Path
    format: str

    @abstractmethod
    def names(self) -> list[str]:
        """Every tensor name in the file(s), in storage order."""

    @abstractmethod
    def _read(self, name: str) -> np.ndarray:
        """Tensor ``name`` as stored (any dtype); ``read`` upcasts and checks it."""

    def read(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a float32 numpy array (dequantised / upcast as needed)."""
        import numpy as np

        try:
            array = self._read(name)
        except InputError:
            raise
        except Exception as exc:  # every format library has its own error types
            raise InputError(f"{self.path}: cannot read tensor {name!r}: {exc}") from None
        out = np.asarray(array, dtype=np.float32)
        if not np.all(np.isfinite(out)):
            raise InputError(f"{self.path}: tensor {name!r} holds NaN or infinite values")
        return out

    def roles(self) -> dict[str, tuple[str, Role]]:
        """Canonical key -> (tensor name, role) for every tensor lineage understands."""
        out: dict[str, tuple[str, Role]] = {}
        for name in self.names():
            role = canonical_role(name)
            if role is not None and role.key not in out:
                out[role.key] = (name, role)
        return out

    def close(self) -> None:  # noqa: B027 - a reader with nothing open has nothing to release
        """Release file handles (memory maps); the reader is unusable afterwards."""

    def __enter__(self) -> WeightReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SafetensorsReader(WeightReader):
    """One or more safetensors files; each tensor read alone through ``safe_open``."""

    def __init__(self, path: Path, files: list[Path]) -> None:
        from safetensors import safe_open

        self.path = path
        self.format = "safetensors" if len(files) == 1 else f"safetensors ({len(files)} shards)"
        self._handles: dict[str, Any] = {}
        self._where: dict[str, Any] = {}
        for file in files:
            try:
                handle = safe_open(str(file), framework="pt")
            except FileNotFoundError:
                raise InputError(f"{file}: safetensors shard not found") from None
            except Exception as exc:
                raise InputError(f"{file}: not a readable safetensors file ({exc})") from None
            self._handles[str(file)] = handle
            for name in handle.keys():  # type: ignore[no-untyped-call]  # noqa: SIM118
                if name in self._where:
                    raise InputError(f"{file}: tensor {name!r} appears in two shards")
                self._where[name] = handle

    def names(self) -> list[str]:
        return list(self._where)

    def _read(self, name: str) -> np.ndarray:
        tensor = self._where[name].get_tensor(name)
        return tensor.float().numpy()  # type: ignore[no-any-return]

    def close(self) -> None:
        self._handles.clear()
        self._where.clear()


class TorchReader(WeightReader):
    """A PyTorch state dict, loaded by torch's weights-only unpickler (memory-mapped when the
    file is in the zip format, so tensors are paged in as they are read)."""

    def __init__(self, path: Path) -> None:
        import pickle

        import torch

        self.path = path
        self.format = "pytorch"
        try:
            try:
                state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc):
                    raise
                # The legacy (non-zip) format cannot be memory-mapped.
                state = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused"
            raise InputError(f"{path}: refused by the weights-only loader ({first})") from None
        except Exception as exc:
            raise InputError(f"{path}: not a readable PyTorch state dict ({exc})") from None
        if (
            isinstance(state, dict)
            and "state_dict" in state
            and isinstance(state["state_dict"], dict)
        ):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise InputError(f"{path}: holds a {type(state).__name__}, not a state dict")
        self._state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
        if not self._state:
            raise InputError(f"{path}: state dict holds no tensors")

    def names(self) -> list[str]:
        return list(self._state)

    def _read(self, name: str) -> np.ndarray:
        return self._state[name].detach().float().numpy()

    def close(self) -> None:
        self._state = {}


class GGUFReader(WeightReader):
    """A GGUF file through ``gguf``'s memory-mapped reader; quantised tensors dequantised."""

    def __init__(self, path: Path) -> None:
        try:
            import gguf
        except ModuleNotFoundError:
            raise InputError(
                f"{path}: reading GGUF needs the 'gguf' package (the 'formats' extra)"
            ) from None
        self.path = path
        self.format = "gguf"
        try:
            self._reader = gguf.GGUFReader(str(path), "r")
        except Exception as exc:
            raise InputError(f"{path}: not a readable GGUF file ({exc})") from None
        self._tensors = {t.name: t for t in self._reader.tensors}
        types = sorted({t.tensor_type.name for t in self._reader.tensors})
        self.format = f"gguf ({', '.join(types)})" if types else "gguf"

    def names(self) -> list[str]:
        return list(self._tensors)

    def _read(self, name: str) -> np.ndarray:
        import numpy as np
        from gguf import quants

        tensor = self._tensors[name]
        data = quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)
        shape = [int(n) for n in reversed(tensor.shape.tolist())]
        return data.reshape(shape)

    def close(self) -> None:
        self._tensors = {}


def _inside(root: Path, name: str, where: Path) -> Path:
    """``root / name`` for a shard name from an index file, refusing anything that leaves
    ``root`` (absolute paths, ``..``, symlinks pointing out)."""
    if not name or "\\" in name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise InputError(f"{where}: shard name {name!r} leaves the model directory")
    candidate = root / name
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise InputError(f"{where}: shard {name!r} not found") from None
    except OSError as exc:
        raise InputError(f"{where}: shard {name!r}: {exc.strerror or exc}") from None
    if not resolved.is_relative_to(root.resolve()):
        raise InputError(f"{where}: shard {name!r} is a symlink out of the model directory")
    return resolved


def _sharded(root: Path, index: Path) -> list[Path]:
    data = read_json_file(index, MAX_INDEX_BYTES, "safetensors index")
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise InputError(f"{index}: no 'weight_map' object in the safetensors index")
    shards: list[str] = []
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not isinstance(tensor, str):
            raise InputError(f"{index}: weight_map must map tensor names to file names")
        if shard not in shards:
            shards.append(shard)
    return [_inside(root, s, index) for s in shards]


def open_weights(path: str | Path) -> WeightReader:
    """A reader for a model file or directory.

    A directory is read, in this order of preference, as sharded safetensors (its index
    JSON), a single ``*.safetensors``, a PyTorch state dict or a ``*.gguf`` file; anything
    ambiguous (two unrelated weight files) is refused rather than guessed.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: model not found")
    if path.is_file():
        return _open_file(path)
    index = path / _SAFETENSORS_INDEX
    if index.is_file():
        return SafetensorsReader(path, _sharded(path, index))
    for pattern, label in (("*.safetensors", "safetensors"), ("*.gguf", "GGUF")):
        found = sorted(p for p in path.glob(pattern) if p.is_file())
        if len(found) == 1:
            return _open_file(_inside(path, found[0].name, path))
        if len(found) > 1:
            names = ", ".join(p.name for p in found[:4])
            raise InputError(
                f"{path}: {len(found)} {label} files ({names}) and no index; name one file"
            )
    for name in _TORCH_NAMES:
        if (path / name).is_file():
            return TorchReader(_inside(path, name, path))
    raise InputError(f"{path}: no weights found (safetensors, PyTorch state dict or GGUF)")


def _open_file(path: Path) -> WeightReader:
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if head[:4] == b"GGUF":
        return GGUFReader(path)
    if path.suffix == ".safetensors" or head[8:9] == b"{":
        return SafetensorsReader(path, [path])
    if path.suffix in _TORCH_SUFFIXES or head[:2] == b"PK":
        return TorchReader(path)
    raise InputError(f"{path}: unknown weight format (expected safetensors, PyTorch or GGUF)")


def read_config(path: str | Path) -> dict[str, Any] | None:
    """The model directory's ``config.json`` as data (never as code), or ``None``."""
    root = Path(path)
    config = (root if root.is_dir() else root.parent) / "config.json"
    if not config.is_file():
        return None
    data = read_json_file(config, MAX_CONFIG_BYTES, "model config")
    if not isinstance(data, dict):
        raise InputError(f"{config}: model config is not a JSON object")
    return data


_VECTOR_KINDS = frozenset({"final_norm", "norm_attn", "norm_mlp"})


def iter_matrices(reader: WeightReader) -> Iterator[tuple[str, str, Role]]:
    """``(key, name, role)`` for the 2-D tensors lineage compares, in a stable order."""
    for key, (name, role) in sorted(reader.roles().items()):
        if role.kind not in _VECTOR_KINDS:
            yield key, name, role


__all__ = [
    "GGUFReader",
    "Role",
    "SafetensorsReader",
    "TorchReader",
    "WeightReader",
    "canonical_role",
    "iter_matrices",
    "open_weights",
    "read_config",
]
