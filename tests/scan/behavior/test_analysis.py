"""The combination rule and input checks of ``analyze`` (no training needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bench.zoo.arch import digits_mlp

from glassbox.errors import InputError
from glassbox.scan.behavior import LabeledData, analyze, wrap_module
from glassbox.scan.behavior.analysis import SOLO, combine, entropy_drop


def test_combine_needs_two_detectors_or_one_far_past() -> None:
    # rows: detectors; columns: classes (threshold units)
    normalized = np.array(
        [
            [1.5, 0.9, 2.5, 1.2],
            [1.1, 0.9, 0.1, 0.2],
            [0.2, 0.9, 0.0, 0.1],
        ]
    )
    out = combine(normalized)
    assert out[0] == pytest.approx(1.1)  # two agree
    assert out[1] == pytest.approx(0.9)  # three near misses are not a verdict
    assert out[2] == pytest.approx(2.5 / SOLO)  # one alone, far past its threshold
    assert out[3] < 1.0  # one alone, just past it


def test_entropy_drop_is_relative_to_the_typical_class() -> None:
    q = np.array([0.3, 0.31, 0.29, 0.0, 0.3])
    s = entropy_drop(q, None)
    assert s.argmax() == 3 and s[3] > np.log(100)
    assert np.allclose(entropy_drop(np.full(5, 0.2), None), 0)
    # a class that is confident in the reference too is not suspicious
    q_ref = np.array([0.3, 0.3, 0.3, 0.0, 0.3])
    assert abs(entropy_drop(q, q_ref)[3]) < 0.1


def _data(n: int, labels: np.ndarray) -> LabeledData:
    rng = np.random.default_rng(0)
    return LabeledData.from_arrays(rng.random((n, 64)).astype(np.float32), labels)


def test_labels_outside_the_model_are_refused() -> None:
    torch.manual_seed(0)
    model = wrap_module(digits_mlp(), 64)
    with pytest.raises(InputError, match=r"labels span 0\.\.11"):
        analyze(model, _data(40, np.arange(40) % 12))
    with pytest.raises(InputError, match="too few"):
        analyze(model, _data(5, np.arange(5)))
