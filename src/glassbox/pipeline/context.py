"""The training API: the one object a recipe's entry point receives.

Everything that makes a run replayable goes through it: the datasets (as committed records),
seeded generators, the model factory, the step loop (which can start from a checkpoint and stop
at a step) and the data-index bookkeeping behind each checkpoint trail entry. Training code that
keeps to it can be rebuilt bit for bit and spot-checked segment by segment::

    def train(ctx):
        data = ctx.dataset("digits").json()
        model = ctx.build_model()
        opt = torch.optim.SGD(model.parameters(), lr=ctx.params["lr"])
        ctx.track(model, opt)
        for step in ctx.steps(ctx.params["steps"]):
            idx = ctx.batch_indices(step, 32)
            ...
        ctx.save_model(model)

Anything a step depends on must be tracked (model, optimizer, generators from ``ctx``) or be a
pure function of the step number; that is what lets a segment be replayed from its checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError
from glassbox.pipeline.trail import (
    DataIndexDigest,
    StateCapture,
    TrailEntry,
    TrainingState,
    checkpoint_name,
    restore_state,
)

if TYPE_CHECKING:
    import torch

MODEL_METADATA = {"format": "pt"}


class SegmentDone(BaseException):
    """Ends a replayed segment; a BaseException so ``except Exception`` in training code
    cannot swallow it."""


class TrainingAPIError(InputError):
    """The training code used the context in a way that cannot be recorded or replayed."""


@dataclass(frozen=True)
class DatasetView:
    """A declared dataset as its committed records (record ``i`` is commitment leaf ``i``).

    Nothing is read until the training code asks: ``len()`` comes from the commitment's record
    count, ``iter_records()`` streams, and ``take(indices)`` reads just those records (through
    an index of byte offsets for plain JSON Lines files, 8 bytes per record). Only
    ``records()`` and ``json()`` hold the whole dataset in memory, as their callers asked.
    """

    name: str
    path: Path
    format: str | None
    _records: tuple[bytes, ...] | None = None
    size: int | None = None

    def __len__(self) -> int:
        if self._records is not None:
            return len(self._records)
        if self.size is None:
            object.__setattr__(self, "size", sum(1 for _ in self.iter_records()))
        assert self.size is not None
        return self.size

    def records(self) -> tuple[bytes, ...]:
        if self._records is None:
            object.__setattr__(self, "_records", tuple(self.iter_records()))
        assert self._records is not None
        return self._records

    def iter_records(self) -> Iterator[bytes]:
        """The records in commitment order, streamed from the file (bounded memory)."""
        if self._records is not None:
            return iter(self._records)
        from glassbox.digest import iter_records

        return iter_records(self.path, self.format)

    def take(self, indices: Sequence[int] | Any) -> list[bytes]:
        """The records at ``indices`` (a list or a 1-D tensor), in that order."""
        wanted = [int(i) for i in indices]
        if self._records is not None:
            return [self._records[i] for i in wanted]
        offsets = self._offsets()
        if offsets is None:
            records = self.records()
            return [records[i] for i in wanted]
        out = []
        with self.path.open("rb") as handle:
            for i in wanted:
                if not 0 <= i < len(offsets) - 1:
                    raise TrainingAPIError(f"record {i} is not in dataset {self.name!r}")
                handle.seek(offsets[i])
                out.append(handle.read(offsets[i + 1] - offsets[i]).strip(b" \t\r\n"))
        return out

    def _offsets(self) -> Any:
        """Start offsets of each record (and the end), for plain JSON Lines; else ``None``."""
        cached = self.__dict__.get("_offset_index")
        if cached is not None or self.__dict__.get("_no_offsets"):
            return cached
        from array import array

        from glassbox.digest.records import detect_format

        if self.path.suffix.lower() == ".gz" or detect_format(self.path, self.format) != "jsonl":
            object.__setattr__(self, "_no_offsets", True)
            return None
        offsets = array("Q")
        end = 0
        with self.path.open("rb") as handle:
            for line in handle:
                if line.strip(b" \t\r\n") and not (end == 0 and line.strip() == b"\xef\xbb\xbf"):
                    offsets.append(
                        end + (3 if end == 0 and line.startswith(b"\xef\xbb\xbf") else 0)
                    )
                    last = end + len(line)
                end += len(line)
        if offsets:
            offsets.append(last)
        object.__setattr__(self, "_offset_index", offsets)
        return offsets

    def json(self) -> list[Any]:
        """Records parsed as JSON (for JSON Lines datasets)."""
        return [json.loads(r) for r in self.records()]


def derive_seed(seed: int, *labels: str | int) -> int:
    """An independent 63-bit seed per purpose, so named streams never share a sequence."""
    text = json.dumps([seed, *labels]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compile recipe code from its source, never from a ``__pycache__`` file.

    A ``.pyc`` is not part of the code manifest, and Python trusts one whose header matches the
    source's mtime and size; compiling from source means what runs is what was digested.
    """

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class _CodeDirFinder(importlib.abc.MetaPathFinder):
    """Finds modules under the recipe's code directory and gives them ``_SourceOnlyLoader``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        search = list(path) if path is not None else [self.root]
        spec = importlib.machinery.PathFinder.find_spec(fullname, search)
        if spec is None or spec.origin is None:
            return None
        if not spec.origin.startswith(self.root + os.sep):
            return None
        if isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _SourceOnlyLoader(fullname, spec.origin)
            spec.cached = None
        return spec


_IMPORT_LOCK = threading.RLock()


def _provided_names(root: str) -> set[str]:
    """Top-level module names a code directory provides (``x.py`` and ``x/`` packages)."""
    names = set()
    for entry in Path(root).iterdir():
        if entry.is_file() and entry.suffix == ".py" and entry.stem.isidentifier():
            names.add(entry.stem)
        elif entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
    return names


def import_callable(code_dir: Path, target: str, *, isolated: bool = False) -> Callable[..., Any]:
    """Resolve ``module:function`` from the recipe's code directory (compiled from source).

    The training child owns its process, so there the code directory stays importable. With
    ``isolated=True`` (loading a built model inside a longer-lived process: audit, behaviour
    scans) the modules the directory provides are imported fresh from it and taken out of
    ``sys.modules`` again afterwards: otherwise a second recipe's ``model`` module, already
    imported, would satisfy the import, and code other than the verified directory would run.
    Isolated code must import its sibling modules at import time, not lazily.
    """
    root = str(code_dir.resolve())
    module_name, _, attr = target.partition(":")
    with _IMPORT_LOCK:
        if isolated:
            provided = _provided_names(root)
            mine = [n for n in sys.modules if n.partition(".")[0] in provided]
            saved = {n: sys.modules.pop(n) for n in mine}
            finder = _CodeDirFinder(root)
            sys.meta_path.insert(0, finder)
        elif not any(isinstance(f, _CodeDirFinder) and f.root == root for f in sys.meta_path):
            sys.meta_path.insert(0, _CodeDirFinder(root))
            if root not in sys.path:
                sys.path.insert(0, root)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise InputError(f"cannot import {module_name!r} from {code_dir}: {exc}") from None
        finally:
            if isolated:
                sys.meta_path.remove(finder)
                for name in [n for n in sys.modules if n.partition(".")[0] in provided]:
                    del sys.modules[name]
                sys.modules.update(saved)
    func = getattr(module, attr, None)
    if not callable(func):
        raise InputError(f"{target}: {module_name} has no callable {attr!r}")
    return func  # type: ignore[no-any-return]


class TrainingContext:
    """Passed to the recipe's entry point. Construct through ``glassbox.pipeline.runner`` only."""

    def __init__(
        self,
        *,
        params: Mapping[str, Any],
        seed: int,
        code_dir: Path,
        factory: str,
        model_config: Mapping[str, Any],
        datasets: Mapping[str, DatasetView],
        output_dir: Path,
        checkpoint_interval: int,
        checkpoint_dir: Path | None = None,
        start: TrainingState | None = None,
        stop_step: int | None = None,
        base_model: Path | None = None,
    ) -> None:
        import numpy as np
        import torch

        self.params: Mapping[str, Any] = params
        self.seed = seed
        self.output_dir = output_dir
        #: The declared base model (file or directory, verified against its digest), or None.
        self.base_model = base_model
        self.model_config: Mapping[str, Any] = model_config
        self._code_dir = code_dir
        self._factory = factory
        self._datasets = datasets
        self._interval = checkpoint_interval
        self._checkpoint_dir = checkpoint_dir
        self._start = start
        self._stop = stop_step
        self._model: torch.nn.Module | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._generators: dict[str, torch.Generator] = {}
        self._data = DataIndexDigest()
        self._capture = StateCapture()
        self._sizes: dict[str, int] = {}
        self._torch = torch
        self._step = 0
        self._looping = False
        self._loop_used = False
        self._force = False
        self._perm_cache: dict[tuple[str, int, int], torch.Tensor] = {}
        self.trail: list[TrailEntry] = []
        self.start_step = 0
        import random

        random.seed(seed)
        np.random.seed(derive_seed(seed, "numpy") % (1 << 32))
        torch.manual_seed(seed)
        self.generator = self.new_generator("main")

    # data -------------------------------------------------------------------------------------
    def dataset(self, name: str) -> DatasetView:
        try:
            return self._datasets[name]
        except KeyError:
            declared = ", ".join(sorted(self._datasets)) or "none"
            raise TrainingAPIError(
                f"dataset {name!r} is not declared in the recipe (declared: {declared})"
            ) from None

    def record_data(self, indices: Sequence[int] | torch.Tensor) -> None:
        """Note record indices used by this step (``batch_indices`` does it for you)."""
        import torch

        if isinstance(indices, torch.Tensor):
            tensor = indices
            if tensor.dtype != torch.int64 or tensor.dim() != 1 or tensor.requires_grad:
                tensor = tensor.detach().reshape(-1).to(torch.int64)
            self._data.add(tensor)
        else:
            self._data.add(torch.tensor([int(i) for i in indices], dtype=torch.int64))

    def batch_indices(self, step: int, batch_size: int, dataset: str | None = None) -> torch.Tensor:
        """Indices of batch ``step``: a fresh seeded permutation each epoch, last partial batch
        dropped. A pure function of (seed, step), so a replay from any checkpoint sees the same
        batches without any sampler state."""
        name = dataset or next(iter(self._datasets), "")
        size = self._sizes.get(name)
        if size is None:  # a dataset's length never changes: looked up once, not per step
            size = self._sizes[name] = len(self.dataset(name))
        if batch_size < 1 or batch_size > size:
            raise TrainingAPIError(
                f"batch size {batch_size} does not fit dataset of {size} records"
            )
        epoch, position = divmod(step, size // batch_size)
        key = (name, epoch, size)
        perm = self._perm_cache.get(key)
        if perm is None:
            torch = self._torch
            gen = torch.Generator().manual_seed(derive_seed(self.seed, "batches", name, epoch))
            perm = torch.randperm(size, generator=gen)
            self._perm_cache = {key: perm}
        start = position * batch_size
        self._data.add_slice(perm, start, start + batch_size)  # non-negative by construction
        return perm[start : start + batch_size]

    # model ------------------------------------------------------------------------------------
    def build_model(self) -> torch.nn.Module:
        """Call the recipe's architecture factory with its declared config."""
        factory = import_callable(self._code_dir, self._factory)
        model = factory(**self.model_config)
        import torch

        if not isinstance(model, torch.nn.Module):
            raise TrainingAPIError(
                f"{self._factory} returned {type(model).__name__}, not an nn.Module"
            )
        return model

    def new_generator(self, name: str) -> torch.Generator:
        """A named, seeded generator that is part of the checkpointed state."""
        import torch

        if self._loop_used:
            raise TrainingAPIError(
                "create generators before ctx.steps(): later ones are not tracked"
            )
        if name in self._generators:
            raise TrainingAPIError(f"generator {name!r} already exists")
        gen = torch.Generator().manual_seed(derive_seed(self.seed, "generator", name))
        self._generators[name] = gen
        return gen

    def track(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Declare the objects whose state is the training state."""
        if self._loop_used:
            raise TrainingAPIError("call ctx.track() before ctx.steps()")
        self._model = model
        self._optimizer = optimizer

    def save_model(self, model: torch.nn.Module, name: str = "model.safetensors") -> Path:
        """Write weights as safetensors; the bytes depend only on the weights."""
        from safetensors.torch import save_file

        path = self.output_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(tensors, str(path), metadata=dict(MODEL_METADATA))
        return path

    # the loop ---------------------------------------------------------------------------------
    def steps(self, total: int) -> Iterator[int]:
        """Yield step numbers ``start..total-1``, recording a trail entry every interval.

        In a replay the tracked objects are first restored from the start checkpoint, and the
        loop ends (``SegmentDone``) once the stop step is reached and recorded.
        """
        if self._loop_used:
            raise TrainingAPIError("ctx.steps() may be used once per build")
        if self._model is None:
            raise TrainingAPIError("call ctx.track(model, optimizer) before ctx.steps()")
        self._loop_used = True
        if self._start is not None:
            self._step = restore_state(self._start, self._model, self._optimizer, self._generators)
            self.start_step = self._step
            self._data.reset()  # data noted before the loop belongs to no replayed segment
        else:
            self._record()
        return self._loop(total)

    def _loop(self, total: int) -> Iterator[int]:
        self._looping = True
        try:
            while self._step < total:
                if self._stop is not None and self._step >= self._stop:
                    raise SegmentDone
                yield self._step
                self._step += 1
                if self._force or self._step % self._interval == 0 or self._step == total:
                    self._record()
                if self._stop is not None and self._step >= self._stop:
                    raise SegmentDone
        finally:
            self._looping = False

    def checkpoint(self) -> None:
        """Record a trail entry now (between steps), in addition to the fixed interval."""
        if self._looping:
            self._force = True
        elif self._loop_used and (not self.trail or self.trail[-1].step != self._step):
            self._record()

    @property
    def step(self) -> int:
        return self._step

    def _record(self) -> None:
        assert self._model is not None
        self._force = False
        state = self._capture.capture(self._model, self._optimizer, self._generators, self._step)
        digest, count = self._data.finish()
        state_digest, weights = state.digests()
        entry = TrailEntry(
            step=self._step, state=state_digest, weights=weights, data=digest, samples=count
        )
        self.trail.append(entry)
        if self._checkpoint_dir is not None:
            state.save(self._checkpoint_dir / checkpoint_name(self._step))
