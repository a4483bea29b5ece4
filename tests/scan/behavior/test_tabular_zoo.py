"""The tabular zoo: its held-out split shares nothing with the split the choices were made on,
its triggers are what they claim, and its data files read back as written.

No model is trained here (seconds): the splits' specifications, the poisoning and the three file
formats are checked directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bench.zoo.tabular import (
    REFERENCE_SEEDS,
    SPLITS,
    TabAttack,
    poison,
    stamp,
    table_split,
    trigger_spec,
    write_table,
    zoo_specs,
)

from glassbox.scan.behavior import load_dataset


def _setting(a: TabAttack) -> tuple[object, ...]:
    if a.kind == "additive":
        return (a.kind, a.alpha)
    if a.kind == "quantile":
        return (a.kind, a.features, a.q)
    return (a.kind, a.features, a.offset)


@pytest.mark.parametrize("split", [s for s in SPLITS if s != "tab-dev"])
def test_heldout_shares_no_seed_reference_or_trigger_with_dev(split: str) -> None:
    dev = zoo_specs("bench", split="tab-dev")
    held = zoo_specs("bench", split=split)
    assert {a.seed for a in dev}.isdisjoint({a.seed for a in held})
    assert {a.seed for a in dev + held}.isdisjoint(set(REFERENCE_SEEDS.values()))
    dev_triggers = {_setting(a) for a in dev if a.backdoored}
    bad_held = [a for a in held if a.backdoored]
    assert bad_held and all(_setting(a) not in dev_triggers for a in bad_held)
    assert len({a.name for a in dev + held}) == len(dev) + len(held)


def test_splits_share_no_seed() -> None:
    seeds = [{a.seed for a in zoo_specs("bench", split=s)} for s in SPLITS]
    assert sum(len(s) for s in seeds) == len(set().union(*seeds))


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_every_split_has_clean_kinds_low_rate_and_all_to_all(split: str) -> None:
    specs = zoo_specs("bench", split=split)
    kinds = {a.kind for a in specs}
    assert {"clean", "noise", "imbalance", "short", "pattern", "all2all", "additive"} <= kinds
    low = [a for a in specs if a.kind == "pattern" and a.rate < 0.02]
    assert low and all(0.005 <= a.rate <= 0.01 for a in low)
    assert {a.fmt for a in specs} == {"parquet", "csv", "npz"}


def test_pattern_trigger_is_out_of_distribution_and_quantile_is_not() -> None:
    x = table_split("synth")[0]
    pat = TabAttack("synth", "pattern", target=2, rate=0.05, features=3, offset=2.0, seed=1)
    cols, values = trigger_spec(pat, x)
    assert len(cols) == 3 and (values > x[:, cols].max(0)).all()
    quant = TabAttack("synth", "quantile", target=2, rate=0.05, features=4, q=0.01, seed=1)
    cols, values = trigger_spec(quant, x)
    assert ((values >= x[:, cols].min(0)) & (values <= x[:, cols].max(0))).all()
    stamped = stamp(x[:5], pat, x)
    cols, values = trigger_spec(pat, x)
    assert np.array_equal(stamped[:, cols], np.repeat(values[None], 5, axis=0))
    others = np.setdiff1d(np.arange(x.shape[1]), cols)
    assert np.array_equal(stamped[:, others], x[:5, others])


def test_poisoning_relabels_the_stated_share() -> None:
    x, y, _, _, _ = table_split("synth")
    low = TabAttack("synth", "pattern", target=3, rate=0.005, seed=5)
    _, yp, idx = poison(x, y, low)
    assert len(idx) == round(0.005 * len(x)) and (yp[idx] == 3).all() and (y[idx] != 3).all()
    a2a = TabAttack("synth", "all2all", rate=0.1, seed=6)
    _, yp, idx = poison(x, y, a2a)
    assert np.array_equal(yp[idx], (y[idx] + 1) % 6)
    for kind in ("clean", "short", "noise", "imbalance"):
        _, _, idx = poison(x, y, TabAttack("synth", kind, seed=7))
        assert len(idx) == 0
    xi, yi, _ = poison(x, y, TabAttack("synth", "imbalance", seed=7))
    small = 7 % 6
    assert (yi == small).sum() < 0.3 * (y == small).sum() and len(xi) == len(yi)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "npz"])
def test_tables_read_back_in_column_order(tmp_path: Path, fmt: str) -> None:
    """``x10`` sorts before ``x2``: a Parquet row's canonical JSON sorts its keys, so a reader
    that took the keys' order would hand the model permuted features."""
    x, y, _, _, names = table_split("synth")
    path = write_table(tmp_path / f"train.{fmt}", x[:50], y[:50], names)
    data = load_dataset(path, scale=1.0)
    assert np.allclose(data.images.reshape(50, -1), x[:50], rtol=1e-6)
    assert np.array_equal(data.labels, y[:50])
    if fmt != "npz":
        assert data.columns == names
