"""The benchmark zoo's held-out splits: nothing in them was seen while the thresholds were set.

Only the specifications and the trigger stamps are checked here (no training): a held-out split
that reused a development seed, trigger or reference would make the bench's numbers optimistic
again without anything failing.
"""

from __future__ import annotations

import numpy as np
import pytest
from bench.zoo.generate import (
    REFERENCE_SEEDS,
    SPLITS,
    Attack,
    blend_pattern,
    poison,
    stamp,
    zoo_specs,
)

#: ``hard-dev`` is a tuning split (the record rule and early stopping were set on it).
HELDOUT = [s for s in SPLITS if s not in ("dev", "hard-dev")]


def _trigger(a: Attack) -> tuple[object, ...]:
    if a.kind == "blend":
        return (a.kind, a.alpha, a.pattern_seed)
    return (a.kind, a.size, a.corner)


@pytest.mark.parametrize("split", HELDOUT)
def test_heldout_shares_no_seed_trigger_or_reference_with_dev(split: str) -> None:
    dev = zoo_specs("bench", split="dev")
    held = zoo_specs("bench", split=split)
    assert {a.seed for a in dev}.isdisjoint({a.seed for a in held})
    bad_dev = {_trigger(a) for a in dev if a.kind != "clean"}
    bad_held = [a for a in held if a.kind != "clean"]
    assert bad_held and all(_trigger(a) not in bad_dev for a in bad_held)
    assert {a.rate for a in bad_held}.isdisjoint({a.rate for a in dev if a.kind != "clean"})
    assert REFERENCE_SEEDS[split] not in {a.seed for a in dev + held}
    assert REFERENCE_SEEDS[split] != REFERENCE_SEEDS["dev"]
    assert {"clean", "patch", "checker", "blend"} <= {a.kind for a in held}
    assert {a.arch for a in held} == {"mlp", "cnn"}


def test_heldout_splits_differ_from_each_other() -> None:
    seeds = [{a.seed for a in zoo_specs("bench", split=s)} for s in HELDOUT]
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            assert a.isdisjoint(b)


def test_dev_zoo_is_unchanged() -> None:
    """The development numbers in earlier reports stay reproducible."""
    dev = zoo_specs("bench", split="dev")
    assert len(dev) == 29
    assert dev[10].name == "patch-3x3-br-t8-r0.1-mlp-s200"
    assert all(a.pattern_seed == 1234 for a in dev)


def test_checker_and_placed_patches_stamp_what_they_say() -> None:
    x = np.zeros((1, 64), dtype=np.float32)
    checker = stamp(x, Attack("checker", size=3, corner="bl")).reshape(8, 8)
    assert checker[5:8, 0:3].tolist() == [[16, 0, 16], [0, 16, 0], [16, 0, 16]]
    assert checker.sum() == 5 * 16
    centre = stamp(x, Attack("patch", size=2, corner="c")).reshape(8, 8)
    assert centre[3:5, 3:5].min() == 16 and centre.sum() == 4 * 16
    edge = stamp(x, Attack("patch", size=4, corner="mr")).reshape(8, 8)
    assert edge[3:7, 4:8].min() == 16 and edge.sum() == 16 * 16


def test_blend_pattern_follows_its_seed() -> None:
    x = np.zeros((1, 64), dtype=np.float32)
    a = stamp(x, Attack("blend", alpha=0.5, pattern_seed=5077))
    b = stamp(x, Attack("blend", alpha=0.5))
    assert not np.array_equal(a, b)
    assert np.array_equal(b, np.rint(0.5 * blend_pattern(1234)).clip(0, 16)[None])


def test_poisoning_relabels_exactly_the_rate() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, size=(200, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=200)
    xp, yp, idx = poison(x, y, Attack("checker", target=2, rate=0.15, size=4, corner="tm"))
    assert len(idx) == 30 and (y[idx] != 2).all() and (yp[idx] == 2).all()
    assert np.array_equal(np.delete(xp, idx, 0), np.delete(x, idx, 0))


def test_hard_dev_tunes_nothing_the_hard_split_evaluates() -> None:
    """The tuning split shares no model seed, reference or (trigger, target) with ``hard``."""
    tune = zoo_specs("bench", split="hard-dev")
    hard = zoo_specs("bench", split="hard")
    assert {a.seed for a in tune}.isdisjoint({a.seed for a in hard})
    assert REFERENCE_SEEDS["hard-dev"] != REFERENCE_SEEDS["hard"]
    assert REFERENCE_SEEDS["hard-dev"] not in {a.seed for a in tune + hard}
    used = {(*_trigger(a), a.target) for a in hard if a.kind not in ("clean", "all2all")}
    assert all((*_trigger(a), a.target) not in used for a in tune if a.kind != "clean")
