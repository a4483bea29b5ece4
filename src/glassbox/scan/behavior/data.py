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
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
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


def _from_json(obj: Any, where: str) -> tuple[list[float], int]:
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
    scalars = [float(v) for k, v in obj.items() if k != label_key and _numeric(v)]
    if not scalars:
        raise InputError(f"{where}: no numeric features in the record")
    return scalars, _label(obj[label_key], where)


def decode_records(
    records: Iterable[bytes], where: str, *, header: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Turn canonical record bytes (JSON object, or array as CSV rows are) into features, labels.

    For array records the ``header`` (a CSV commitment's metadata) names the label column; a
    non-numeric first record is read as a header too; otherwise the last column is the label.
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
            feats, label = _from_json(obj, f"{where} record {i}")
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


def load_dataset(path: Path, *, fmt: str | None = None, scale: float | None = None) -> LabeledData:
    """Read a committed dataset in commitment order and scale it into ``[0, 1]``.

    ``scale`` divides every feature; by default the dataset's own maximum, so raw digits pixels
    (0..16) become what a model trained on ``x / 16`` expects.
    """
    from glassbox.digest import commit_dataset, iter_records

    commitment = commit_dataset(path, fmt=fmt)
    header = commitment.metadata.get("header") if isinstance(commitment.metadata, dict) else None
    x, y = decode_records(iter_records(path, commitment.fmt), str(path), header=header)
    divisor = scale if scale is not None else max(float(x.max()), 1.0)
    if divisor <= 0:
        raise InputError(f"{path}: scale must be positive")
    data = LabeledData.from_arrays((x / divisor).astype(np.float32), y, path=path)
    data.fmt = commitment.fmt
    data.commitment = commitment
    return data
