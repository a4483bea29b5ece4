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

#: ``hard-dev`` and ``hard2-dev`` are tuning splits (the record rules, early stopping and the
#: neighbours detector were set on them).
HELDOUT = [s for s in SPLITS if s not in ("dev", "hard-dev", "hard2-dev")]


def _trigger(a: Attack) -> tuple[object, ...]:
    if "blend" in a.kind:
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


def test_hard2_dev_tunes_nothing_the_hard2_split_evaluates() -> None:
    """The adaptive split's tuning half shares no seed, reference, blend pattern or
    (trigger, target) with the evaluation half, nor any seed with the older splits."""
    tune = zoo_specs("bench", split="hard2-dev")
    held = zoo_specs("bench", split="hard2")
    assert {a.seed for a in tune}.isdisjoint({a.seed for a in held})
    older = {
        a.seed for s in SPLITS if not s.startswith("hard2") for a in zoo_specs("bench", split=s)
    }
    assert older.isdisjoint({a.seed for a in tune + held})
    assert REFERENCE_SEEDS["hard2-dev"] != REFERENCE_SEEDS["hard2"]
    assert {REFERENCE_SEEDS["hard2-dev"], REFERENCE_SEEDS["hard2"]}.isdisjoint(
        {a.seed for a in tune + held}
    )
    patterns = {a.pattern_seed for a in tune if "blend" in a.kind}
    assert patterns.isdisjoint({a.pattern_seed for a in held if "blend" in a.kind})
    used = {(*_trigger(a), a.target) for a in tune if a.kind != "clean"}
    assert all((*_trigger(a), a.target) not in used for a in held if a.kind != "clean")
    # What the split is for: adaptive attacks, low rates, all-to-all, and enough clean models
    # of the kinds that trip detectors.
    kinds = {a.kind for a in held}
    assert {"adaptive-blend", "adaptive-patch", "tact", "all2all"} <= kinds
    assert sum(a.kind == "clean" for a in held) >= 10
    assert {a.variant for a in held if a.kind == "clean"} >= {"noise", "imbalance", "decoy"}
    assert sum(a.rate <= 0.01 and a.kind in ("patch", "checker", "blend") for a in held) >= 6


def test_adaptive_attacks_train_on_part_of_the_trigger_and_hide_cover_records() -> None:
    """Adaptive blend/patch: each poisoned record carries half the pieces, weaker than the
    test trigger; cover records carry it with their true label (Qi et al., ICLR 2023)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 9, size=(400, 64)).astype(np.float32)
    y = np.arange(400) % 10
    for kind in ("adaptive-patch", "adaptive-blend"):
        attack = Attack(kind, target=2, rate=0.05, cover=0.05, size=2, alpha=0.3, seed=3)
        xp, yp, idx = poison(x, y, attack)
        assert len(idx) == 20 and (yp[idx] == 2).all() and (y[idx] != 2).all()
        test = stamp(x[idx], attack)
        train = xp[idx]
        # The training trigger moves the record less than the test trigger does.
        assert np.abs(train - x[idx]).sum() < 0.8 * np.abs(test - x[idx]).sum()
        changed = (xp != x).any(1)
        cover = np.flatnonzero(changed & (yp == y))
        assert len(cover) == 20 and (yp[cover] != 2).all()
    tact = Attack("tact", target=1, source=7, rate=0.02, cover=0.02, size=2, corner="c", seed=4)
    xp, yp, idx = poison(x, y, tact)
    assert (y[idx] == 7).all() and (yp[idx] == 1).all()


def test_clean_variants_change_the_data_not_the_labels_they_keep() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 17, size=(500, 64)).astype(np.float32)
    y = np.arange(500) % 10
    noisy = poison(x, y, Attack("clean", variant="noise", seed=5))
    assert 0.05 < (noisy[1] != y).mean() < 0.1 and np.array_equal(noisy[0], x)
    small = poison(x, y, Attack("clean", variant="imbalance", seed=5))
    counts = np.bincount(small[1], minlength=10)
    assert sorted(counts)[0] == 50 // 4 and len(small[2]) == 0
    aug = poison(x, y, Attack("clean", variant="augment", seed=5))
    assert len(aug[0]) == 1000 and np.array_equal(aug[1][:500], aug[1][500:])
    decoy = poison(x, y, Attack("clean", variant="decoy", seed=5))
    assert np.array_equal(decoy[1], y) and 40 <= (decoy[0] != x).any(1).sum() <= 50
