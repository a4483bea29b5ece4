"""Labelled training data for the record-level detectors, read in commitment order.

Suspect records are named by their index in the dataset commitment, so the data must be read
through ``glassbox.digest.iter_records`` (record ``i`` is leaf ``i``) rather than re-parsed by a
second reader that could disagree about order or about what a record is.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.errors import InputError

LABEL_KEYS = ("label", "labels", "target", "y", "class")
FEATURE_KEYS = ("pixels", "image", "x", "features", "input", "data")


@dataclass
class LabeledData:
    """Images ``(N, C, H, W)`` scaled to the model's input range, integer labels ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray
    path: Path | None = None
    fmt: str | None = None
    commitment: Any = None  # glassbox.digest.DatasetCommitment of ``path``, when read from one
    sha256: str | None = None  # of the whole file, for array files (records named by row)
    classes: list[str] | None = None  # class names by label, for an image directory
    divisor: float = 1.0  # what the loader divided the raw values by (raw = images * divisor)
    columns: list[str] | None = None  # feature names in column order (CSV header, Parquet)

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_arrays(
        cls,
        x: np.ndarray,
        y: Sequence[int] | np.ndarray,
        *,
        image_shape: tuple[int, int, int] | None = None,
        path: Path | None = None,
    ) -> LabeledData:
        arr = np.asarray(x, dtype=np.float32)
        flat = arr.reshape(len(arr), -1)
        if image_shape is None and arr.ndim == 4:
            image_shape = (int(arr.shape[1]), int(arr.shape[2]), int(arr.shape[3]))
        shape = image_shape or square_image_shape(flat.shape[1])
        labels = np.asarray(y, dtype=np.int64)
        if len(labels) != len(flat):
            raise InputError(f"{len(flat)} inputs but {len(labels)} labels")
        return cls(flat.reshape((len(flat), *shape)), labels, path)


def square_image_shape(n: int) -> tuple[int, int, int]:
    side = math.isqrt(n)
    return (1, side, side) if side * side == n else (1, 1, n)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_number(value: Any) -> float | None:
    """Numbers, and numeric strings (a CSV record's canonical bytes are a JSON string array)."""
    if _numeric(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _label(value: float, where: str) -> int:
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise InputError(f"{where}: label {value!r} is not a class index")
    return int(value)


def _from_json(
    obj: Any, where: str, columns: Sequence[str] | None = None
) -> tuple[list[float], int]:
    if isinstance(obj, list) and len(obj) >= 2:
        values = [_as_number(v) for v in obj]
        if any(v is None for v in values):
            raise InputError(f"{where}: non-numeric field in an array record")
        nums = [float(v) for v in values if v is not None]
        return nums[:-1], _label(nums[-1], where)
    if not isinstance(obj, dict):
        raise InputError(f"{where}: a record must be a JSON object or a numeric array")
    label_key = next((k for k in LABEL_KEYS if k in obj), None)
    if label_key is None or not _numeric(obj[label_key]):
        raise InputError(f"{where}: no integer label field ({', '.join(LABEL_KEYS)})")
    for key in FEATURE_KEYS:
        value = obj.get(key)
        if isinstance(value, list):
            try:
                flat = np.asarray(value, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise InputError(f"{where}: field {key!r} is not a numeric array") from None
            return flat.tolist(), _label(obj[label_key], where)
        if isinstance(value, str) and value.isascii() and value.isalnum():
            # One character per value (the digits example writes pixels 0..16 in base 17).
            return [float(int(ch, 36)) for ch in value], _label(obj[label_key], where)
    keys: Iterable[Any] = obj
    if columns is not None and set(columns) == set(obj):
        keys = columns
    scalars = [float(obj[k]) for k in keys if k != label_key and _numeric(obj[k])]
    if not scalars:
        raise InputError(f"{where}: no numeric features in the record")
    return scalars, _label(obj[label_key], where)


def decode_records(
    records: Iterable[bytes],
    where: str,
    *,
    header: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn canonical record bytes (JSON object, or array as CSV rows are) into features, labels.

    For array records the ``header`` (a CSV commitment's metadata) names the label column; a
    non-numeric first record is read as a header too; otherwise the last column is the label.
    ``columns`` orders the scalar fields of object records (a Parquet schema's order; canonical
    JSON sorts keys).
    """
    xs: list[list[float]] = []
    ys: list[int] = []
    label_col = _label_column(header) if header else -1
    for i, raw in enumerate(records):
        try:
            text = raw.decode("utf-8", errors="strict").strip()
        except UnicodeDecodeError:
            raise InputError(f"{where} record {i}: not UTF-8 text") from None
        if not text:
            continue
        if text[0] in "{[":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where} record {i}: malformed JSON: {exc.msg}") from None
            if isinstance(obj, list) and label_col != -1 and 0 <= label_col < len(obj):
                obj = [*obj[:label_col], *obj[label_col + 1 :], obj[label_col]]
            feats, label = _from_json(obj, f"{where} record {i}", columns)
        else:
            row = next(csv.reader(io.StringIO(text)))
            try:
                values = [float(v) for v in row]
            except ValueError:
                if i == 0 and not xs:
                    label_col = _label_column(row)
                    continue
                raise InputError(f"{where} record {i}: non-numeric CSV field") from None
            label = _label(values.pop(label_col), f"{where} record {i}")
            feats = values
        xs.append(feats)
        ys.append(label)
    if not xs:
        raise InputError(f"{where}: no records")
    width = len(xs[0])
    if any(len(r) != width for r in xs):
        raise InputError(f"{where}: records have different numbers of features")
    x = np.asarray(xs, dtype=np.float64)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise InputError(f"{where} record {bad}: non-finite feature value")
    return x, np.asarray(ys, dtype=np.int64)


def _label_column(header: Sequence[str]) -> int:
    names = [str(c).strip().lower() for c in header]
    return next((names.index(k) for k in LABEL_KEYS if k in names), -1)


def _divisor(path: Path, x: np.ndarray, scale: float | None) -> float:
    divisor = scale if scale is not None else max(float(x.max()), 1.0)
    if divisor <= 0:
        raise InputError(f"{path}: scale must be positive")
    return divisor


def load_inputs(
    path: Path,
    *,
    fmt: str | None = None,
    scale: float | None = None,
    keys: tuple[str, str] | None = None,
) -> tuple[LabeledData, bool]:
    """Like ``load_dataset``, but labels may be missing (a clean sample need not have them).

    Returns the data and whether it is labelled; unlabelled data carries ``-1`` labels, which
    the caller replaces (with the model's own predictions, for a clean sample).
    """
    from glassbox.scan.behavior.arrays import ARRAY_SUFFIXES, read_arrays

    if path.suffix.lower() in ARRAY_SUFFIXES:
        x, y = read_arrays(path, keys=keys, labelled=False)
        if y is None:
            divisor = _divisor(path, x, scale)
            data = LabeledData.from_arrays(x / divisor, np.full(len(x), -1), path=path)
            data.divisor = divisor
            return _with_digest(data, path), False
        return _array_dataset(path, x, y, scale), True
    return load_dataset(path, fmt=fmt, scale=scale, keys=keys), True


def _with_digest(data: LabeledData, path: Path) -> LabeledData:
    from glassbox.scan.behavior.arrays import file_sha256

    data.fmt = path.suffix.lower().lstrip(".")
    data.sha256 = file_sha256(path)
    return data


def _array_dataset(path: Path, x: np.ndarray, y: np.ndarray, scale: float | None) -> LabeledData:
    divisor = _divisor(path, x, scale)
    data = LabeledData.from_arrays(x / divisor, y, path=path)
    data.divisor = divisor
    return _with_digest(data, path)


def _image_directory(
    path: Path, fmt: str | None, scale: float | None, keys: tuple[str, str] | None
) -> LabeledData:
    """A directory of class folders of images (see ``images``), named by commitment index."""
    from glassbox.scan.behavior.images import read_image_directory

    if fmt not in (None, "files"):
        raise InputError(f"{path}: a directory is read as class folders of images, not {fmt}")
    if keys is not None:
        raise InputError(f"{path}: --data-keys applies to .npz and tensor files only")
    x, y, classes, commitment = read_image_directory(path, scale)
    data = LabeledData(x, y, path, "files", commitment, classes=classes)
    return data


def load_dataset(
    path: Path,
    *,
    fmt: str | None = None,
    scale: float | None = None,
    keys: tuple[str, str] | None = None,
) -> LabeledData:
    """Read a labelled dataset and scale it into ``[0, 1]``.

    A committed dataset (JSONL, CSV, ..., or a directory of class folders of images: see
    ``images``) is read in commitment order; NumPy ``.npy``/``.npz``
    and PyTorch tensor files go through ``arrays`` (safe loaders; records named by row, ``keys``
    names the inputs and labels arrays). ``scale`` divides every feature; by default the data's
    own maximum, so raw digits pixels (0..16) become what a model trained on ``x / 16`` expects.
    """
    from glassbox.digest import commit_dataset, iter_records
    from glassbox.scan.behavior.arrays import ARRAY_SUFFIXES, read_arrays

    if path.suffix.lower() in ARRAY_SUFFIXES:
        x, y = read_arrays(path, keys=keys)
        assert y is not None
        return _array_dataset(path, x, y, scale)
    if path.is_dir():
        return _image_directory(path, fmt, scale, keys)
    if keys is not None:
        raise InputError(f"{path}: --data-keys applies to .npz and tensor files only")

    commitment = commit_dataset(path, fmt=fmt)
    header = commitment.metadata.get("header") if isinstance(commitment.metadata, dict) else None
    columns = _parquet_columns(path) if commitment.fmt == "parquet" else header
    x, y = decode_records(
        iter_records(path, commitment.fmt), str(path), header=header, columns=columns
    )
    divisor = _divisor(path, x, scale)
    data = LabeledData.from_arrays((x / divisor).astype(np.float32), y, path=path)
    data.fmt = commitment.fmt
    data.commitment = commitment
    data.divisor = divisor
    if columns is not None:
        label = _label_column(columns)
        data.columns = [str(c) for i, c in enumerate(columns) if i != label]
    return data


def _parquet_columns(path: Path) -> list[str] | None:
    """The Parquet schema's column order: a record's canonical JSON sorts its keys, so without
    this ``x10`` would come before ``x2`` and features would reach the model out of order."""
    try:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except Exception:  # the commitment already read the file; no schema means no order
        return None
