"""Labelled data as arrays: NumPy ``.npy``/``.npz`` and PyTorch tensor files, read safely.

This is the form most PyTorch users keep their training set in. Nothing here can execute code:
NumPy files are read with ``allow_pickle=False`` (an object array is refused, not unpickled) and
tensor files only through ``torch.load(weights_only=True)``.

Records are named by their **row index** in the file (row ``i`` of the inputs array). These
files have no record commitment (``glassbox.digest`` commits JSONL/CSV/Parquet/file trees), so
no inclusion proof can be given for a suspect row; instead the findings carry the SHA-256 of the
whole file, which binds the row indices to the exact bytes that were scanned.

Layouts:

* ``.npz`` / tensor file (a dict of arrays): one inputs array and one labels array, found by
  common names (``x``/``y``, ``X``/``y``, ``inputs``/``labels``, ``images``/``targets``,
  ``data``/``target``, ...) or named by the user (``keys=("train_x", "train_y")``). A labels
  key may be absent (``keys=("x", "")``, or a file with a single array): then the data is
  unlabelled, which only a clean sample (``--clean``) may be.
* ``.npy``: one 2-D numeric array, the last column the label (as a headerless CSV), or
  unlabelled inputs when ``labelled=False``.
* a tensor file may also hold a 2-tuple/list ``(inputs, labels)``.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.errors import InputError

#: Suffixes read by this module (everything else goes to the committed-dataset reader).
ARRAY_SUFFIXES = (".npy", ".npz", ".pt", ".pth")
INPUT_NAMES = ("x", "inputs", "input", "images", "image", "data", "features", "pixels", "x_train")
LABEL_NAMES = ("y", "labels", "label", "targets", "target", "classes", "y_train")
#: Refuse absurd files before reading them whole (an array file is loaded into memory).
MAX_BYTES = 4 << 30
OBJECT_REFUSED = "holds an object array (refused: loading it would unpickle)"


def file_sha256(path: Path) -> str:
    """Streamed SHA-256 of the file the row indices refer to."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError(f"{path}: {OBJECT_REFUSED}") from None
        raise InputError(f"{path}: not a readable .npz: {_first_line(exc)}") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise InputError(f"{path}: not a readable .npz: {_first_line(exc)}") from None


def _read_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError(f"{path}: {OBJECT_REFUSED}") from None
        raise InputError(f"{path}: not a readable .npy: {_first_line(exc)}") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy: {_first_line(exc)}") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{path}: not a single .npy array")
    return arr


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any parse failure or refused global is a malformed input
        raise InputError(f"{path}: cannot read tensors safely: {_first_line(exc)}") from None
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        obj = {"x": obj[0], "y": obj[1]}
    if isinstance(obj, torch.Tensor):
        obj = {"x": obj}
    if not isinstance(obj, Mapping) or not obj:
        raise InputError(f"{path}: expected a dict of tensors or an (inputs, labels) pair")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if isinstance(key, str) and isinstance(value, torch.Tensor):
            out[key] = value.detach().cpu().numpy()
    if not out:
        raise InputError(f"{path}: no named tensors in the file")
    return out


def _pick(
    arrays: Mapping[str, np.ndarray], names: tuple[str, ...], path: Path, what: str
) -> str | None:
    by_lower = {k.lower(): k for k in arrays}
    found = [by_lower[n] for n in names if n in by_lower]
    return found[0] if found else None


def _choose_keys(
    arrays: Mapping[str, np.ndarray], keys: tuple[str, str] | None, path: Path
) -> tuple[str, str | None]:
    available = ", ".join(sorted(arrays)) or "none"
    if keys is not None:
        for k in keys:
            if k and k not in arrays:
                raise InputError(f"{path}: no array named {k!r} (arrays: {available})")
        return keys[0], keys[1] or None
    if len(arrays) == 1:
        return next(iter(arrays)), None
    found = _pick(arrays, INPUT_NAMES, path, "inputs")
    if found is None:
        raise InputError(
            f"{path}: cannot tell which array holds the inputs (arrays: {available}); "
            "name them with --data-keys INPUTS,LABELS"
        )
    return found, _pick(arrays, LABEL_NAMES, path, "labels")


def _inputs(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{path}: array {key!r} has dtype {arr.dtype}, not numeric inputs")
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise InputError(f"{path}: array {key!r} has shape {arr.shape}, not (records, ...)")
    x = arr.astype(np.float32)
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        raise InputError(f"{path}: row {int(np.flatnonzero(~finite)[0])} of {key!r} is not finite")
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # NHWC -> NCHW
    elif x.ndim == 3:
        x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
    return x


def _labels(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    if arr.ndim == 2 and arr.shape[1] > 1 and arr.dtype.kind in "biuf":
        arr = arr.argmax(axis=1)  # one-hot
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr
    if arr.ndim != 1 or arr.dtype.kind not in "biuf":
        raise InputError(
            f"{path}: array {key!r} ({arr.dtype}, shape {arr.shape}) is not integer class labels"
        )
    y = arr.astype(np.float64)
    bad = ~np.isfinite(y) | (y < 0) | (y != np.round(y))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}: label {arr[i]!r} at row {i} of {key!r} is not a class index")
    return y.astype(np.int64)


def read_arrays(
    path: Path, *, keys: tuple[str, str] | None = None, labelled: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs ``(N, ...)`` as float32 and labels ``(N,)`` (``None`` when the file has none)."""
    if not path.is_file():
        raise InputError(f"{path}: no such data file")
    if path.stat().st_size > MAX_BYTES:
        raise InputError(f"{path}: {path.stat().st_size} bytes is more than the array limit")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if keys is not None:
            raise InputError(f"{path}: --data-keys names arrays of an .npz or tensor file")
        arr = _read_npy(path)
        if not labelled:
            return _inputs(arr, path, "array"), None
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise InputError(
                f"{path}: a .npy dataset is one 2-D array, the last column the label "
                f"(got shape {arr.shape}); use .npz for separate inputs and labels"
            )
        return _inputs(arr[:, :-1], path, "array"), _labels(arr[:, -1], path, "last column")
    arrays: dict[str, Any] = _read_npz(path) if suffix == ".npz" else _read_tensors(path)
    x_key, y_key = _choose_keys(arrays, keys, path)
    x = _inputs(arrays[x_key], path, x_key)
    if y_key is None:
        if labelled:
            names = ", ".join(sorted(arrays))
            raise InputError(
                f"{path}: no labels array (arrays: {names}); name it with --data-keys INPUTS,LABELS"
            )
        return x, None
    y = _labels(arrays[y_key], path, y_key)
    if len(y) != len(x):
        raise InputError(f"{path}: {len(x)} rows in {x_key!r} but {len(y)} labels in {y_key!r}")
    return x, y


def parse_keys(spec: str | None) -> tuple[str, str] | None:
    """``--data-keys INPUTS,LABELS`` (``INPUTS`` alone: unlabelled)."""
    if spec is None:
        return None
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) == 1:
        parts.append("")
    if len(parts) != 2 or not parts[0]:
        raise InputError(f"--data-keys {spec!r}: expected INPUTS,LABELS (array names)")
    return parts[0], parts[1]
