"""Naming poisoned records in a flagged class, and the trigger search's early stopping.

The record rule works on per-record scores the detectors already produced (robust-spectral QUE
scores, STRIP entropies), so it is tested on constructed scores with a known answer; the early
stopping is tested on the miniature zoo's strongly backdoored model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from glassbox.scan.behavior import DetectorResult, load_classifier, load_dataset
from glassbox.scan.behavior.analysis import (
    RECORD_FUSED_Z,
    RECORD_QUE_Z,
    _combined_suspects,
)
from glassbox.scan.behavior.neural_cleanse import STALL, reverse_engineer

ARCH = "bench.zoo.arch:digits_mlp"
NONE = np.zeros(600, dtype=bool)  # no record marked


def _detectors(que: np.ndarray, strip: np.ndarray) -> dict[str, DetectorResult]:
    k = 3
    zero = np.zeros(k)
    return {
        "robust-spectral": DetectorResult("robust-spectral", zero, 0.35, False, record_scores=que),
        "strip": DetectorResult("strip", zero, 1.0, False, record_scores=strip),
    }


def _scores() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three classes of 200 with evenly spread scores (robust z within about +-1.35, so no clean
    record passes either cut, alone or summed); class 1 holds 6 planted records far out in both
    scores, one far out in STRIP only (not enough alone), and one a little out in both (named:
    the two agree)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 200)
    spread = np.linspace(-1.0, 1.0, 200)
    que = np.concatenate([rng.permutation(spread) for _ in range(3)])
    strip = np.concatenate([rng.permutation(spread) for _ in range(3)])
    c1 = np.flatnonzero(labels == 1)
    que[c1[:6]] = 5.0
    strip[c1[:6]] = 5.0
    que[c1[10]], strip[c1[10]] = 0.0, 2.0  # STRIP z about 2.7, QUE z 0: fused under the cut
    que[c1[11]], strip[c1[11]] = 1.25, 1.25  # each z about 1.7: fused past the cut
    return labels, que, strip


def test_records_named_by_class_z_scores() -> None:
    labels, que, strip = _scores()
    c1 = np.flatnonzero(labels == 1)
    named = _combined_suspects(_detectors(que, strip), [1], labels, NONE, None)
    assert set(named.tolist()) == {*c1[:6].tolist(), int(c1[11])}
    assert RECORD_QUE_Z > 1.7 and 2.7 < RECORD_FUSED_Z < 3.4
    # Only flagged classes are searched; nothing flagged names nothing, nor do clean classes.
    assert _combined_suspects(_detectors(que, strip), [], labels, NONE, None).size == 0
    assert _combined_suspects(_detectors(que, strip), [0, 2], labels, NONE, None).size == 0


def test_reference_disagreement_gates_the_records() -> None:
    labels, que, strip = _scores()
    c1 = np.flatnonzero(labels == 1)
    ref_dis = np.zeros(len(labels), dtype=bool)
    ref_dis[c1[:5]] = True  # the reference agrees with the label of c1[5] and c1[11]
    named = _combined_suspects(_detectors(que, strip), [1], labels, ref_dis, ref_dis)
    assert set(named.tolist()) == set(c1[:5].tolist())


def test_marked_records_do_not_set_the_scale_at_high_rates() -> None:
    """Poison as half of its class moves the class median; measured against the records the
    marker leaves unmarked, it still stands out."""
    labels, que, strip = _scores()
    c1 = np.flatnonzero(labels == 1)
    half = c1[:100]
    que[half] = 3.0 + np.linspace(0, 0.5, 100)
    strip[half] = 3.0 + np.linspace(0, 0.5, 100)
    marked = np.isin(np.arange(len(labels)), half)
    assert _combined_suspects(_detectors(que, strip), [1], labels, NONE, None).size < 50
    named = _combined_suspects(_detectors(que, strip), [1], labels, marked, None)
    assert set(named.tolist()) == set(half.tolist())


def test_a_class_too_small_to_score_names_nothing() -> None:
    labels, que, strip = _scores()
    que[labels == 1] = -np.inf  # robust-spectral skipped the class
    assert _combined_suspects(_detectors(que, strip), [1], labels, NONE, None).size == 0


@pytest.mark.slow
@pytest.mark.xdist_group("behavior-zoo")
def test_early_stopping_keeps_the_target_and_evaluates_fewer_inputs(
    zoo: dict[str, Any],
) -> None:
    d = zoo["root"] / "bad"
    model = load_classifier(d / "model.safetensors", ARCH, 64)
    data = load_dataset(d / "train.jsonl")
    images = data.images.reshape((len(data), *model.image_shape))
    seen = {"rows": 0}
    forward = model.logits

    def counting(x: torch.Tensor) -> torch.Tensor:
        seen["rows"] += int(x.shape[0])
        return forward(x)

    model.logits = counting  # type: ignore[method-assign]
    l1 = {}
    rows = {}
    for stall in (None, STALL):
        seen["rows"] = 0
        triggers = reverse_engineer(model, images, data.labels, steps=300, stall=stall)
        l1[stall] = np.array([t.l1 for t in triggers])
        rows[stall] = seen["rows"]
    assert int(np.argmin(l1[None])) == int(np.argmin(l1[STALL])) == 3
    assert rows[STALL] < 0.8 * rows[None]
    # The target's trigger is as small as the full search's, within a few percent.
    assert abs(l1[STALL][3] / l1[None][3] - 1.0) < 0.1
