"""The input-space neighbours that stand in for a clean reference model, and settling in the
trigger search. Fast: synthetic data and a small synthetic model, no zoo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glassbox.scan.behavior import neighbours
from glassbox.scan.behavior.neighbours import neighbour_disagreement
from glassbox.scan.behavior.neural_cleanse import _settled


def _blobs(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 8.0
    y = np.arange(3 * n) % 3
    x = centres[y] + rng.normal(size=(3 * n, 16))
    return x.astype(np.float32), y


def test_a_relabelled_record_is_marked_and_its_neighbours_are_not() -> None:
    x, y = _blobs()
    poisoned = np.array([0, 3, 6])  # class-0 inputs, a small trigger, labelled 2
    y = y.copy()
    y[poisoned] = 2
    x[poisoned, 15] += 1.5
    marked = neighbour_disagreement(x, y)
    assert set(np.flatnonzero(marked)) == set(poisoned.tolist())


def test_chunks_and_the_pool_do_not_change_small_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _blobs(n=200, seed=1)
    y = y.copy()
    y[:12] = (y[:12] + 1) % 3
    whole = neighbour_disagreement(x, y)
    assert whole[:12].all() and not whole[12:].any()
    monkeypatch.setattr(neighbours, "CHUNK", 37)  # rows split across uneven chunks
    assert np.array_equal(neighbour_disagreement(x, y), whole)
    monkeypatch.setattr(neighbours, "POOL", 300)  # neighbours from a seeded sample of 300 of 600
    pooled = neighbour_disagreement(x, y, seed=4)
    assert pooled[:12].mean() >= 0.9 and pooled[12:].mean() <= 0.02
    assert np.array_equal(pooled, neighbour_disagreement(x, y, seed=4))


def test_too_few_records_mark_nothing() -> None:
    assert not neighbour_disagreement(np.zeros((1, 4)), np.array([0])).any()


def test_settling_leaves_the_largest_masks_only_once_half_succeeded() -> None:
    l1 = torch.tensor([5.0, 9.0, 2.0, 7.0, 8.0, 6.0, 4.0, 3.0, 10.0, 1.0])
    assert _settled(l1, 0.3).nonzero().flatten().tolist() == [1, 4, 8]
    some = l1.clone()
    some[:6] = float("inf")  # six classes never reached the success rate
    assert not _settled(some, 0.3).any()
    assert not _settled(l1, 0.05).any()
