"""Signed spectral split, side resolution by marker, calibration: the pieces, on synthetic data."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from glassbox.scan.behavior.calibration import mad_index
from glassbox.scan.behavior.spectral import spectral_splits, top_directions
from glassbox.scan.behavior.splitting import Marker, resolve_side, split_contrast, two_means_1d


def half_poisoned(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One class, 200 records, half of them shifted along one direction (poison = half)."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(200, 16))
    poison = np.zeros(200, dtype=bool)
    poison[rng.choice(200, 100, replace=False)] = True
    feats[poison, 3] += 6.0
    return feats, np.zeros(200, dtype=np.int64), poison


def test_squared_score_is_at_chance_and_signed_separates() -> None:
    feats, _, poison = half_poisoned()
    proj = top_directions(feats)[0]
    assert abs(roc_auc_score(poison, proj**2) - 0.5) < 0.1
    signed = roc_auc_score(poison, proj)
    assert max(signed, 1 - signed) > 0.99


def test_marker_resolves_the_sign() -> None:
    feats, labels, poison = half_poisoned()
    rng = np.random.default_rng(1)
    # A marker that fires on 90% of poison and 5% of clean records (a reference's disagreement).
    flags = np.where(poison, rng.random(200) < 0.9, rng.random(200) < 0.05)
    for flip in (1.0, -1.0):  # the SVD sign is arbitrary; the resolved side must not be
        (split,) = spectral_splits(flip * feats, labels, marker=Marker("m", flags))
        assert roc_auc_score(poison, split.scores) > 0.99
        assert split.suspect[poison].mean() > 0.95 and split.suspect[~poison].mean() < 0.05
        assert split.cue == "m"


def test_naturally_bimodal_class_has_no_contrast() -> None:
    feats, labels, _ = half_poisoned(2)  # two genuine modes, the marker is noise
    flags = np.random.default_rng(3).random(200) < 0.05
    assert two_means_1d(top_directions(feats)[0])[1] > 20  # strongly bimodal ...
    (split,) = spectral_splits(feats, labels, marker=Marker("m", flags))
    assert abs(split_contrast(split.suspect, flags)) < 0.15  # ... but no evidence of poison


def test_without_marker_the_smaller_group_is_suspect() -> None:
    group = np.array([True] * 3 + [False] * 7)
    assert resolve_side(group, None, "none") == (True, "smaller-group")
    assert resolve_side(~group, None, "none") == (False, "smaller-group")
    assert resolve_side(np.ones(4, dtype=bool), None, "none")[1] == "degenerate"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=4, max_size=60))
def test_two_means_threshold_leaves_both_sides_populated(values: list[float]) -> None:
    v = np.array(values)
    thr, sep = two_means_1d(v)
    assert sep >= 0
    if np.ptp(v) > 1e-6:
        assert (v > thr).sum() >= 1 and (v <= thr).sum() >= 1


def test_two_means_on_a_single_normal_is_about_seven() -> None:
    v = np.random.default_rng(0).normal(size=20000)
    assert 6.0 < two_means_1d(v)[1] < 8.0


def test_mad_index_directions() -> None:
    v = np.array([10.0, 10.5, 9.5, 10.2, 9.8, 2.0])
    low = mad_index(v, low=True)
    assert low.argmax() == 5 and low[5] > 5
    assert mad_index(v)[5] < -5
    assert np.isfinite(mad_index(np.ones(5))).all()
