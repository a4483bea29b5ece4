"""The checkpoint trail: what lets a verifier re-run a few steps of a long training and check them.

Every N steps the build records the step, a digest of the *full* training state (weights,
optimizer state, every random number generator) and a digest of the data indices consumed since
the previous entry. This is the Proof-of-Learning idea (Jia et al. 2021): with the state at step
``a`` and the data indices, the steps up to ``b`` can be replayed and must land exactly on the
recorded digest at ``b``.

Digests are over a canonical, format-independent encoding (one JSON header with the metadata and
every tensor's name, dtype and shape in name order, then the raw bytes in that order), so a
checkpoint file is checked by loading it and recomputing the digest: a swapped or edited file
cannot match. The weights digest is the same encoding of the model's ``state_dict`` alone, which
is what links the last trail entry to the published ``model.safetensors``; the state digest
covers the weights through it. Checkpoint files are safetensors (no pickle), with the JSON in
one metadata field.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError, VerificationError

if TYPE_CHECKING:
    import torch

STATE_DOMAIN = b"glassbox-training-state-v1\x00"
WEIGHTS_DOMAIN = b"glassbox-weights-v1\x00"
DATA_DOMAIN = b"glassbox-data-indices-v1\x00"
META_KEY = "glassbox.state"
TRAIL_MEDIA_TYPE = "application/vnd.glassbox.checkpoint-trail+json"


@dataclass(frozen=True)
class TrailEntry:
    """The state after ``step`` steps, and the data indices consumed since the previous entry."""

    step: int
    state: str  # hex digest of the full training state
    weights: str  # hex digest of the model weights alone (links the trail to the output model)
    data: str  # hex digest of the data indices consumed since the previous entry
    samples: int  # how many indices that was

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "state": {"sha256": self.state},
            "weights": {"sha256": self.weights},
            "data": {"sha256": self.data},
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrailEntry:
        return cls(
            step=int(data["step"]),
            state=str(data["state"]["sha256"]),
            weights=str(data["weights"]["sha256"]),
            data=str(data["data"]["sha256"]),
            samples=int(data["samples"]),
        )


@dataclass(frozen=True)
class Trail:
    interval: int
    entries: tuple[TrailEntry, ...]

    @property
    def total_steps(self) -> int:
        return self.entries[-1].step if self.entries else 0

    def segments(self) -> list[tuple[TrailEntry, TrailEntry]]:
        """Consecutive entry pairs: the units a spot-check replays."""
        return list(zip(self.entries, self.entries[1:], strict=False))

    def to_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trail:
        try:
            entries = tuple(TrailEntry.from_dict(e) for e in data["entries"])
            trail = cls(int(data["interval"]), entries)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed checkpoint trail: {exc}") from None
        steps = [e.step for e in entries]
        if steps != sorted(set(steps)):
            raise InputError("malformed checkpoint trail: steps are not strictly increasing")
        return trail


def data_digest(indices: Iterable[int]) -> tuple[str, int]:
    """Digest of a sequence of record indices (order matters: it is the order data was used)."""
    hasher = hashlib.sha256(DATA_DOMAIN)
    count = 0
    for index in indices:
        hasher.update(int(index).to_bytes(8, "little", signed=False))
        count += 1
    return hasher.hexdigest(), count


def data_digest_tensors(chunks: Sequence[torch.Tensor]) -> tuple[str, int]:
    """``data_digest`` of the concatenated index tensors: one concatenation and one hash update
    per trail entry, no Python loop per index (this runs inside the training loop)."""
    import sys

    import torch

    hasher = hashlib.sha256(DATA_DOMAIN)
    if not chunks:
        return hasher.hexdigest(), 0
    flat = torch.cat([c.reshape(-1) for c in chunks]).to(torch.int64)
    if flat.numel() and int(flat.min()) < 0:
        raise ValueError("data indices must be non-negative")
    array = flat.numpy()
    if sys.byteorder != "little":
        array = array.byteswap()
    hasher.update(array.data)  # non-negative int64: the same bytes as little-endian u64
    return hasher.hexdigest(), int(flat.numel())


class DataIndexDigest:
    """``data_digest`` of the indices a training loop notes batch by batch, hashed as it goes.

    Batches cut from one permutation one after another (what ``batch_indices`` hands out) are
    kept as one run ``(permutation, start, stop)`` and hashed in one update when the run breaks
    or the trail entry is taken: per step that is a tuple and an identity check, where keeping
    every batch and concatenating them at each entry cost more than the digest itself.
    """

    def __init__(self) -> None:
        self._hasher = hashlib.sha256(DATA_DOMAIN)
        self._count = 0
        self._run: tuple[Any, int, int] | None = None

    def add_slice(self, source: torch.Tensor, start: int, stop: int) -> None:
        """Note ``source[start:stop]``; ``source`` is a 1-D int64 tensor of non-negative
        indices that is not modified afterwards (a cached permutation)."""
        run = self._run
        if run is not None and run[0] is source and run[2] == start:
            self._run = (source, run[1], stop)
            return
        self._flush()
        self._run = (source, start, stop)

    def add(self, indices: torch.Tensor) -> None:
        """Note a 1-D int64 tensor of indices (checked non-negative)."""
        if indices.numel() and int(indices.min()) < 0:
            raise ValueError("data indices must be non-negative")
        self._flush()
        self._update(indices)

    def finish(self) -> tuple[str, int]:
        """(digest, count) of everything noted since the last call; starts afresh."""
        self._flush()
        digest, count = self._hasher.hexdigest(), self._count
        self._hasher = hashlib.sha256(DATA_DOMAIN)
        self._count = 0
        return digest, count

    def reset(self) -> None:
        self._run = None
        self.finish()

    def _flush(self) -> None:
        if self._run is not None:
            source, start, stop = self._run
            self._run = None
            self._update(source[start:stop])

    def _update(self, indices: torch.Tensor) -> None:
        import sys

        if not indices.numel():
            return
        array = indices.contiguous().numpy()
        if sys.byteorder != "little":
            array = array.byteswap()
        self._hasher.update(array.data)
        self._count += int(indices.numel())


def _canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def tensors_digest(
    tensors: Mapping[str, torch.Tensor], meta: Any = None, *, domain: bytes = STATE_DOMAIN
) -> str:
    """Canonical digest of named tensors plus JSON metadata, independent of any file format.

    One JSON header (metadata, then every tensor's name, dtype and shape in name order) fixes
    how many bytes each tensor contributes, then the raw little-endian bytes follow in the same
    order: unambiguous, and one pass over the data.
    """
    fast = _plain_tensors_digest(tensors, meta, domain)
    return fast if fast is not None else _tensors_digest(tensors, meta, domain)


_SPEC_CACHE: dict[tuple[Any, ...], bytes] = {}


def _plain_tensors_digest(
    tensors: Mapping[str, torch.Tensor], meta: Any, domain: bytes
) -> str | None:
    """``tensors_digest`` where every tensor is a plain CPU array (contiguous, no gradient, a
    dtype numpy has), else ``None``: what a training loop's trail entries hash every interval.

    The same bytes are hashed; only the work around them is less. The tensor part of the
    header (names, dtypes, shapes) is the same from one entry to the next, so its JSON is kept
    per layout and joined to the metadata's (the canonical JSON of ``{"meta": m, "tensors":
    t}`` is exactly ``{"meta":`` + m + ``,"tensors":`` + t + ``}``; a test holds it to that).
    """
    names = sorted(tensors)
    items = [tensors[name] for name in names]
    buffers = []
    try:
        for tensor in items:
            if tensor.requires_grad or not tensor.is_contiguous():
                return None
            buffers.append(tensor.numpy().data)  # raises off the CPU and for numpy-less dtypes
    except (TypeError, RuntimeError):
        return None
    layout = tuple(zip(names, [t.dtype for t in items], [t.shape for t in items], strict=True))
    spec = _SPEC_CACHE.get(layout)
    if spec is None:
        spec = _canonical_json([[n, str(d), list(shape)] for n, d, shape in layout])
        if len(_SPEC_CACHE) < 256:
            _SPEC_CACHE[layout] = spec
    header = b'{"meta":' + _canonical_json(meta) + b',"tensors":' + spec + b"}"
    hasher = hashlib.sha256(domain)
    hasher.update(len(header).to_bytes(8, "little"))
    hasher.update(header)
    for buffer in buffers:
        hasher.update(buffer)
    return hasher.hexdigest()


def _tensors_digest(tensors: Mapping[str, torch.Tensor], meta: Any, domain: bytes) -> str:
    """``tensors_digest`` for any tensors (the reference the plain path is held to)."""
    import torch

    names = sorted(tensors)
    prepared = []
    for name in names:
        tensor = tensors[name]
        if tensor.requires_grad:
            tensor = tensor.detach()
        if not tensor.is_cpu:
            tensor = tensor.cpu()
        prepared.append(tensor if tensor.is_contiguous() else tensor.contiguous())
    header = _canonical_json(
        {
            "meta": meta,
            "tensors": [
                [n, str(t.dtype), list(t.shape)] for n, t in zip(names, prepared, strict=True)
            ],
        }
    )
    hasher = hashlib.sha256(domain)
    hasher.update(len(header).to_bytes(8, "little"))
    hasher.update(header)
    for tensor in prepared:
        if not tensor.numel():
            continue
        try:
            hasher.update(tensor.numpy().data)  # contiguous: its buffer is the raw bytes
        except (TypeError, RuntimeError):  # dtypes numpy lacks (bfloat16, float8): bytes view
            hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return hasher.hexdigest()


def weights_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Digest of model weights: equal for the live model and for its saved safetensors file."""
    return tensors_digest(state_dict, None, domain=WEIGHTS_DOMAIN)


@dataclass
class TrainingState:
    """The full training state as tensors plus JSON-able metadata (one canonical form)."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    def digests(self) -> tuple[str, str]:
        """(state digest, weights digest). The state digest covers the weights through their
        digest, so the weights are hashed once."""
        weights = weights_digest(self.weights())
        rest = {k: v for k, v in self.tensors.items() if not k.startswith("model/")}
        return tensors_digest(rest, {"weights": weights, **self.meta}), weights

    def digest(self) -> str:
        return self.digests()[0]

    def weights(self) -> dict[str, torch.Tensor]:
        prefix = "model/"
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def save(self, path: Path) -> None:
        """Write a safetensors checkpoint (no pickle, so loading it never runs code)."""
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self.tensors.items()}
        save_file(tensors, str(path), metadata={META_KEY: _canonical_json(self.meta).decode()})

    @classmethod
    def load(cls, path: Path) -> TrainingState:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except FileNotFoundError:
            raise InputError(f"{path}: checkpoint not found") from None
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable safetensors checkpoint: {exc}") from None
        try:
            meta = json.loads(metadata[META_KEY])
        except (KeyError, ValueError):
            raise InputError(f"{path}: checkpoint has no Glassbox state metadata") from None
        if not isinstance(meta, dict):
            raise InputError(f"{path}: checkpoint metadata is not a JSON object")
        return cls(dict(tensors), meta)


def capture_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    generators: Mapping[str, torch.Generator],
    step: int,
) -> TrainingState:
    """Everything that determines the next step: weights, optimizer, all RNG streams."""
    return StateCapture().capture(model, optimizer, generators, step)


class StateCapture:
    """``capture_state`` for a training loop that captures again and again (one per run).

    Reading the two global RNGs that training rarely touches was most of a trail entry's cost:
    numpy's ``get_state`` copies its 624-word key one element at a time (~100 us) and Python's
    640-int state tuple has to become an array. Both are re-used while unchanged:

    * Python's ``random``: the state tuple is compared with the last one (a C loop) and the last
      array reused when equal.
    * numpy's global ``RandomState``: its MT19937 key and position are read straight from the
      bit generator's state struct (``ctypes.state_address``, public numpy API; the layout is
      checked against ``get_state`` once, else this path stays off). Unchanged key and position
      with no cached Gaussian at the last full read mean no draw at all since, so the last
      state stands; anything else takes the full ``get_state``.

    What is captured is exactly ``capture_state``'s result (the tests hold it to that).
    """

    def __init__(self) -> None:
        self._py_state: tuple[int, ...] | None = None
        self._py_tensor: Any = None
        self._np_raw: Any = None  # (key bytes, pos) at the last full read, or None
        self._np_full: tuple[Any, dict[str, Any]] | None = None
        self._np_reader: Any = _numpy_state_reader()

    def capture(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        generators: Mapping[str, torch.Generator],
        step: int,
    ) -> TrainingState:
        import torch

        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"step": step}
        for name, value in model.state_dict().items():
            tensors[f"model/{name}"] = value
        if optimizer is not None:
            opt = optimizer.state_dict()
            scalars: dict[str, Any] = {}
            for pid, pstate in opt["state"].items():
                for key, value in pstate.items():
                    if isinstance(value, torch.Tensor):
                        tensors[f"optim/{pid}/{key}"] = value
                    else:
                        scalars[f"{pid}/{key}"] = value
            meta["optim"] = {"param_groups": opt["param_groups"], "scalars": scalars}
        tensors["rng/torch"] = torch.get_rng_state()
        for name, gen in generators.items():
            tensors[f"rng/gen/{name}"] = gen.get_state()
        py_version, py_state, py_gauss = random.getstate()
        if py_state != self._py_state:
            import numpy as np

            self._py_state = py_state
            self._py_tensor = torch.from_numpy(
                np.fromiter(py_state, dtype=np.int64, count=len(py_state))
            )
        tensors["rng/python"] = self._py_tensor
        meta["python_rng"] = {"version": py_version, "gauss_next": py_gauss}
        np_tensor, np_meta = self._numpy_state()
        tensors["rng/numpy"] = np_tensor
        meta["numpy_rng"] = dict(np_meta)
        return TrainingState(tensors, meta)

    def _numpy_state(self) -> tuple[Any, dict[str, Any]]:
        raw = self._np_reader() if self._np_reader is not None else None
        if raw is not None and raw == self._np_raw and self._np_full is not None:
            # (``set_state`` back to the very same key and position with a cached Gaussian
            # would pass unseen; a replay then diverges and the spot-check fails, loudly.)
            return self._np_full
        import numpy as np
        import torch

        np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
        full = (
            torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            {
                "name": np_name,
                "pos": int(np_pos),
                "has_gauss": int(np_has_gauss),
                "gauss": float(np_gauss),
            },
        )
        # A cached Gaussian is used up without moving the key: only a state without one can be
        # known unchanged from the key and position alone.
        self._np_raw = raw if not np_has_gauss else None
        self._np_full = full
        return full


def _numpy_state_reader() -> Any:
    """A function returning numpy's global MT19937 (key bytes, position) read from its state
    struct, or ``None`` where that cannot be done and checked (then ``get_state`` is used)."""
    try:
        import ctypes

        import numpy as np

        get_bit_generator = np.random.get_bit_generator  # type: ignore[attr-defined]
        generator = get_bit_generator()
        address = generator.ctypes.state_address
        key_type = ctypes.c_uint32 * 624

        def read() -> tuple[bytes, int] | None:
            if get_bit_generator() is not generator:  # replaced: its struct is gone
                return None
            return (
                bytes(key_type.from_address(address)),
                ctypes.c_int.from_address(address + ctypes.sizeof(key_type)).value,
            )

        _, keys, pos, _, _ = np.random.get_state(legacy=True)
        if read() != (np.asarray(keys, dtype=np.uint32).tobytes(), int(pos)):
            return None
        return read
    except Exception:  # any other numpy: fall back to get_state, never guess
        return None


def restore_state(
    state: TrainingState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    generators: Mapping[str, torch.Generator],
) -> int:
    """Put a captured state back into live objects; returns its step."""
    import numpy as np
    import torch

    tensors, meta = state.tensors, state.meta
    try:
        model.load_state_dict(state.weights(), strict=True)
        if optimizer is not None:
            opt_meta = meta["optim"]
            per_param: dict[int, dict[str, Any]] = {}
            for name, value in tensors.items():
                if name.startswith("optim/"):
                    _, pid, key = name.split("/", 2)
                    per_param.setdefault(int(pid), {})[key] = value
            for name, value in opt_meta["scalars"].items():
                pid, key = name.split("/", 1)
                per_param.setdefault(int(pid), {})[key] = value
            optimizer.load_state_dict(
                {"state": per_param, "param_groups": opt_meta["param_groups"]}
            )
        torch.set_rng_state(tensors["rng/torch"])
        for name, gen in generators.items():
            gen.set_state(tensors[f"rng/gen/{name}"])
        py = meta["python_rng"]
        random.setstate(
            (py["version"], tuple(int(x) for x in tensors["rng/python"].tolist()), py["gauss_next"])
        )
        npm = meta["numpy_rng"]
        keys = tensors["rng/numpy"].numpy().astype(np.uint32)
        np.random.set_state((npm["name"], keys, npm["pos"], npm["has_gauss"], npm["gauss"]))
        return int(meta["step"])
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise VerificationError(f"checkpoint does not fit this training code: {exc}") from None


def checkpoint_name(step: int) -> str:
    return f"step-{step:010d}.safetensors"
