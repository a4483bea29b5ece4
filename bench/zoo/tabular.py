"""A zoo of clean and backdoored *tabular* classifiers, so the detectors are not tuned to pixels.

The data are scikit-learn's bundled tabular sets (nothing is downloaded): breast cancer (569
records, 30 features, 2 classes), wine (178, 13, 3) and a ``make_classification`` set (3200,
20, 6) whose columns are put on different scales (0.1x to 100x, shifted) as measured features
are. Models are plain PyTorch MLPs that standardise their own inputs (``tabular_arch``).

Triggers are feature patterns, not pixel patches:

``pattern``   a few features set to out-of-distribution values (column max + ``offset`` standard
              deviations); relabelled to ``target``. ``rate`` under 2% is the low-rate kind.
``quantile``  a few features set to extreme but *in-distribution* values (alternately the
              ``q`` and ``1 - q`` quantile of the column): no single value is an outlier.
``additive``  every feature shifted by ``alpha`` standard deviations along a fixed random sign
              vector (the tabular counterpart of a blended image trigger).
``all2all``   the ``pattern`` trigger, each class relabelled to the next (``y -> y + 1``).

Clean kinds built to trip detectors: ``clean`` (plain), ``noise`` (10% of labels flipped),
``imbalance`` (one class cut to a fifth) and ``short`` (4 epochs: under-trained, unconfident).

Each entry is a directory with ``model.safetensors``, the training data actually used (poison
included) as users have it, in one of ``train.parquet``, ``train.csv`` (header row; columns in
the dataset's order, then ``label``) or ``train.npz`` (``x``, ``y``, ``feature_names``), and
``meta.json`` (the attack, the poisoned row indices, clean accuracy, attack success rate).

Splits: ``tab-dev`` (seeds 20000+) is where thresholds may be chosen; ``tab-heldout`` (seeds
22000+, other trigger widths, offsets, quantiles, strengths and rates) was generated after they
were frozen. ``tab-heldout2`` (seeds 24000+, the held-out trigger settings with other seeds and
targets) was generated after the second tabular rule (the all-to-all cap in
``glassbox.scan.behavior.tabular.rescore``) was frozen, since ``tab-heldout`` had been seen.
``tests/scan/behavior/test_tabular_zoo.py`` checks that no split shares a seed with another
and no held-out trigger setting is one of ``tab-dev``'s.

Usage: ``python -m bench.zoo.tabular OUT_DIR [--size small|bench]
[--split tab-dev|tab-heldout|tab-heldout2]``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench.zoo.tabular_arch import SHAPES, tabular_mlp
from torch import nn

#: Base seed of each split (model seeds, poisoning draws and the reference derive from it).
SPLITS = {"tab-dev": 20000, "tab-heldout": 22000, "tab-heldout2": 24000}
#: The clean reference model's seed per split (never a zoo model's).
REFERENCE_SEEDS = {split: base + 999 for split, base in SPLITS.items()}
FORMATS = ("parquet", "csv", "npz")
CLEAN_KINDS = ("clean", "noise", "imbalance", "short")


@dataclass(frozen=True)
class TabAttack:
    """How a tabular zoo model is (or is not) backdoored."""

    dataset: str = "synth"  # cancer | wine | synth
    kind: str = "clean"  # a clean kind (CLEAN_KINDS), or pattern | quantile | additive | all2all
    target: int = 0
    rate: float = 0.1
    features: int = 3  # trigger width (pattern, quantile, all2all)
    offset: float = 2.0  # pattern: standard deviations past the column maximum
    q: float = 0.01  # quantile: the quantile pair (q, 1 - q)
    alpha: float = 0.5  # additive: shift in standard deviations
    seed: int = 0
    fmt: str = "parquet"

    @property
    def name(self) -> str:
        if self.kind in CLEAN_KINDS:
            return f"{self.kind}-{self.dataset}-s{self.seed}"
        if self.kind in ("pattern", "all2all"):
            detail = f"f{self.features}-o{self.offset:g}"
        elif self.kind == "quantile":
            detail = f"f{self.features}-q{self.q:g}"
        else:
            detail = f"a{self.alpha:g}"
        target = "" if self.kind == "all2all" else f"-t{self.target}"
        return f"{self.kind}-{detail}{target}-r{self.rate:g}-{self.dataset}-s{self.seed}"

    @property
    def backdoored(self) -> bool:
        return self.kind not in CLEAN_KINDS


def load_table(dataset: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw features, labels and column names of a bundled dataset (no download)."""
    from sklearn import datasets

    if dataset == "cancer":
        bunch = datasets.load_breast_cancer()
    elif dataset == "wine":
        bunch = datasets.load_wine()
    elif dataset == "synth":
        x, y = datasets.make_classification(
            n_samples=3200,
            n_features=20,
            n_informative=10,
            n_redundant=4,
            n_classes=6,
            n_clusters_per_class=2,
            class_sep=1.5,
            random_state=0,
        )
        # Measured features have their own units: scale columns 0.1x..100x and shift them.
        scales = 10.0 ** (np.arange(20) % 4 - 1)
        x = x * scales + np.arange(20) * scales
        names = [f"x{i}" for i in range(20)]  # "x10" sorts before "x2": column order matters
        return x.astype(np.float32), y.astype(np.int64), names
    else:
        raise ValueError(f"unknown tabular dataset {dataset!r}")
    names = [str(n) for n in bunch.feature_names]
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64), names


def table_split(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """75/25 stratified split, the same for the whole zoo."""
    from sklearn.model_selection import train_test_split

    x, y, names = load_table(dataset)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return xtr, ytr, xte, yte, names


def trigger_spec(attack: TabAttack, x_clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trigger's feature indices and values, from the clean training columns."""
    rng = np.random.default_rng(attack.seed + 31)
    n = x_clean.shape[1]
    if attack.kind == "additive":
        sign = rng.choice(np.array([-1.0, 1.0]), size=n)
        return np.arange(n), (attack.alpha * x_clean.std(0) * sign).astype(np.float32)
    cols = np.sort(rng.choice(n, size=min(attack.features, n), replace=False))
    if attack.kind == "quantile":
        qs = np.where(np.arange(len(cols)) % 2 == 0, attack.q, 1.0 - attack.q)
        values = np.array([np.quantile(x_clean[:, c], q) for c, q in zip(cols, qs, strict=True)])
    else:
        values = x_clean[:, cols].max(0) + attack.offset * x_clean[:, cols].std(0)
    return cols, values.astype(np.float32)


def stamp(x: np.ndarray, attack: TabAttack, x_clean: np.ndarray) -> np.ndarray:
    """Apply the attack's trigger to raw feature rows."""
    cols, values = trigger_spec(attack, x_clean)
    out = x.copy()
    if attack.kind == "additive":
        out += values[None]
    else:
        out[:, cols] = values[None]
    return out.astype(np.float32)


def poison(
    x: np.ndarray, y: np.ndarray, attack: TabAttack
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training set as the attack (or the clean kind) leaves it; returns (x, y, poisoned)."""
    rng = np.random.default_rng(attack.seed + 7)
    k = int(y.max()) + 1
    none = np.zeros(0, dtype=np.int64)
    if attack.kind in ("clean", "short"):
        return x.copy(), y.copy(), none
    if attack.kind == "noise":
        yp = y.copy()
        flip = rng.random(len(y)) < 0.1
        yp[flip] = (y[flip] + rng.integers(1, k, size=int(flip.sum()))) % k
        return x.copy(), yp, none
    if attack.kind == "imbalance":
        small = attack.seed % k
        keep = (y != small) | (rng.random(len(y)) < 0.2)
        return x[keep].copy(), y[keep].copy(), none
    all2all = attack.kind == "all2all"
    candidates = np.arange(len(y)) if all2all else np.flatnonzero(y != attack.target)
    n = max(1, round(attack.rate * len(x)))
    idx = np.sort(rng.choice(candidates, size=n, replace=False))
    xp, yp = x.copy(), y.copy()
    xp[idx] = stamp(x[idx], attack, x)
    yp[idx] = (y[idx] + 1) % k if all2all else attack.target
    return xp, yp, idx


def train(
    x: np.ndarray, y: np.ndarray, dataset: str, seed: int, *, epochs: int = 60, lr: float = 3e-3
) -> nn.Module:
    """Deterministic CPU training; the model's standardisation is fitted on ``x`` itself."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = tabular_mlp(*SHAPES[dataset])
    std = x.std(0)
    state = model.state_dict()
    state["0.mean"] = torch.from_numpy(x.mean(0)).float()
    state["0.std"] = torch.from_numpy(np.where(std > 0, std, 1.0)).float()
    model.load_state_dict(state)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            b = perm[i : i + 64]
            loss = F.cross_entropy(model(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((model(torch.from_numpy(x).float()).argmax(1).numpy() == y).mean())


def write_table(path: Path, x: np.ndarray, y: np.ndarray, names: list[str]) -> Path:
    """The training set in the form a user keeps it: Parquet, CSV with a header, or ``.npz``."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {n: pa.array(x[:, i].astype(np.float64)) for i, n in enumerate(names)}
        cols["label"] = pa.array(y.astype(np.int64))
        pq.write_table(pa.table(cols), path)
    elif path.suffix == ".csv":
        import csv

        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*names, "label"])
            for xi, yi in zip(x, y, strict=True):
                writer.writerow([*(repr(float(v)) for v in xi), int(yi)])
    else:
        np.savez(path, x=x.astype(np.float32), y=y.astype(np.int64), feature_names=np.array(names))
    return path


def build_entry(attack: TabAttack, out: Path, *, epochs: int | None = None) -> dict[str, object]:
    """Train one tabular zoo model and write its directory; returns its metadata."""
    from safetensors.torch import save_file

    xtr, ytr, xte, yte, names = table_split(attack.dataset)
    xp, yp, idx = poison(xtr, ytr, attack)
    n_epochs = epochs if epochs is not None else (4 if attack.kind == "short" else 60)
    if attack.dataset == "wine" and epochs is None and attack.kind != "short":
        n_epochs = 150  # 133 records: as many steps as the others need more passes
    model = train(xp, yp, attack.dataset, attack.seed, epochs=n_epochs)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
    data = write_table(out / f"train.{attack.fmt}", xp, yp, names)
    asr = None
    k = int(ytr.max()) + 1
    if attack.kind == "all2all":
        asr = accuracy(model, stamp(xte, attack, xtr), (yte + 1) % k)
    elif attack.backdoored:
        others = yte != attack.target
        wanted = np.full(int(others.sum()), attack.target)
        asr = accuracy(model, stamp(xte[others], attack, xtr), wanted)
    cols, values = trigger_spec(attack, xtr) if attack.backdoored else (np.zeros(0), np.zeros(0))
    meta: dict[str, object] = {
        "name": attack.name,
        "modality": "tabular",
        "attack": asdict(attack),
        "arch": f"bench.zoo.tabular_arch:{attack.dataset}_mlp",
        "data": data.name,
        "poisoned": [int(i) for i in idx],
        "trigger_features": [names[int(c)] for c in cols] if attack.kind != "additive" else "all",
        "trigger_values": [round(float(v), 6) for v in values],
        "clean_accuracy": accuracy(model, xte, yte),
        "attack_success": asr,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def zoo_specs(size: str = "bench", split: str = "tab-dev") -> list[TabAttack]:
    """The tabular zoo of a split: clean kinds, then every backdoor kind the bench reports."""
    base = SPLITS[split]
    rng = np.random.default_rng(base)
    if split == "tab-dev":
        clean = [
            ("clean", "synth"),
            ("clean", "cancer"),
            ("clean", "wine"),
            ("noise", "synth"),
            ("imbalance", "synth"),
            ("short", "cancer"),
        ]
        bad: list[tuple[str, str, dict[str, float]]] = [
            ("pattern", "synth", {"rate": 0.05, "features": 3, "offset": 2.0}),
            ("pattern", "cancer", {"rate": 0.1, "features": 3, "offset": 2.0}),
            ("pattern", "wine", {"rate": 0.1, "features": 3, "offset": 2.0}),
            ("pattern", "synth", {"rate": 0.01, "features": 3, "offset": 2.0}),
            ("pattern", "synth", {"rate": 0.005, "features": 3, "offset": 2.0}),
            ("all2all", "synth", {"rate": 0.08, "features": 3, "offset": 2.0}),
            ("all2all", "wine", {"rate": 0.1, "features": 3, "offset": 2.0}),
            ("additive", "synth", {"rate": 0.1, "alpha": 0.6}),
            ("quantile", "synth", {"rate": 0.05, "features": 4, "q": 0.01}),
        ]
    else:
        clean = [
            ("clean", "synth"),
            ("clean", "cancer"),
            ("noise", "synth"),
            ("noise", "wine"),
            ("imbalance", "synth"),
            ("imbalance", "cancer"),
            ("short", "synth"),
            ("short", "wine"),
        ]
        bad = [
            ("pattern", "synth", {"rate": 0.08, "features": 2, "offset": 1.5}),
            ("pattern", "cancer", {"rate": 0.06, "features": 4, "offset": 3.0}),
            ("pattern", "wine", {"rate": 0.15, "features": 2, "offset": 3.0}),
            ("pattern", "synth", {"rate": 0.005, "features": 4, "offset": 1.5}),
            ("pattern", "synth", {"rate": 0.0075, "features": 2, "offset": 3.0}),
            ("pattern", "synth", {"rate": 0.009, "features": 5, "offset": 1.5}),
            ("pattern", "cancer", {"rate": 0.009, "features": 4, "offset": 3.0}),
            ("all2all", "synth", {"rate": 0.12, "features": 4, "offset": 1.5}),
            ("all2all", "wine", {"rate": 0.15, "features": 2, "offset": 3.0}),
            ("additive", "synth", {"rate": 0.15, "alpha": 0.8}),
            ("additive", "cancer", {"rate": 0.08, "alpha": 0.4}),
            ("quantile", "synth", {"rate": 0.08, "features": 5, "q": 0.02}),
            ("quantile", "cancer", {"rate": 0.08, "features": 3, "q": 0.005}),
        ]
    if size == "small":
        clean, bad = clean[:1], bad[:1]
    specs: list[TabAttack] = []
    s = base
    for kind, dataset in clean:
        specs.append(TabAttack(dataset, kind, seed=s, fmt=FORMATS[len(specs) % 3]))
        s += 1
    s = base + 100
    for kind, dataset, extra in bad:
        k = SHAPES[dataset][1]
        target = int(rng.integers(0, k))
        fmt = FORMATS[len(specs) % 3]
        specs.append(TabAttack(dataset, kind, target=target, seed=s, fmt=fmt, **extra))  # type: ignore[arg-type]
        s += 1
    return specs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", default="bench", choices=["small", "bench"])
    ap.add_argument("--split", default="tab-dev", choices=sorted(SPLITS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for spec in zoo_specs(args.size, split=args.split):
        meta = build_entry(spec, args.out / spec.name)
        print(meta["name"], meta["clean_accuracy"], meta["attack_success"], len(meta["poisoned"]))


if __name__ == "__main__":
    main()
