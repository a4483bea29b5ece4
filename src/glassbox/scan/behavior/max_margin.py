"""Data-free maximum-margin statistics, after MM-BD (Wang, Miller and Kesidis, IEEE S&P 2024).

A backdoor teaches the network a shortcut to its target class that overrides everything else in
the input, so the largest *margin* (target logit minus the best other logit) that any input in
the valid domain can reach is abnormally large for a target class. Finding that maximum needs no
data: gradient ascent on the input from random starts, projected to the input box ``[0, 1]``.
All classes and restarts are optimised in one batch (``K * R`` inputs), so it costs one short
optimisation per model whatever the number of classes.

Two statistics come out of the same search:

* per class, the maximum margin, ranked robustly across classes: one (or a few) classes far
  above the rest are targets of one-to-one or many-to-one attacks;
* per model, how much the margin reachable *near real inputs* exceeds what is needed to flip
  them. An all-to-all backdoor makes every class a target, so no class stands out in the first
  statistic; but then a small input change moves any class's inputs to another class with a
  large margin. This part needs a few inputs (the training data or a clean sample).
"""

from __future__ import annotations

import numpy as np
import torch

from glassbox.scan.behavior.loading import ProbedModel


def _margin(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Target logit minus the largest other logit, per row."""
    tgt = logits.gather(1, targets[:, None])[:, 0]
    other = logits.scatter(1, targets[:, None], float("-inf")).max(1).values
    return tgt - other


def max_margins(
    model: ProbedModel,
    *,
    restarts: int = 8,
    steps: int = 150,
    lr: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Per class, the largest margin gradient ascent reaches over inputs in ``[0, 1]``."""
    gen = torch.Generator().manual_seed(seed)
    k = model.num_classes
    shape = model.image_shape
    targets = torch.arange(k).repeat_interleave(restarts)
    # Optimise in logit space of the box (a sigmoid keeps every step inside [0, 1]).
    z = torch.randn((k * restarts, *shape), generator=gen).mul_(1.5).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        margin = _margin(model.logits(torch.sigmoid(z)), targets)
        opt.zero_grad()
        (-margin.sum()).backward()  # type: ignore[no-untyped-call]
        opt.step()
    with torch.no_grad():
        final = _margin(model.logits(torch.sigmoid(z)), targets)
    return np.asarray(final.reshape(k, restarts).max(1).values.double().numpy())


def local_flip_margins(
    model: ProbedModel,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    budget: float = 0.1,
    steps: int = 60,
    lr: float = 0.05,
    per_class: int = 16,
    seed: int = 0,
) -> np.ndarray:
    """Per class ``c``: the best margin into ``c + 1`` reachable within an L1 budget per pixel.

    Inputs of each class get a perturbation ``delta`` with mean absolute value at most
    ``budget`` (a share of the input range); the statistic is the median, over inputs, of the
    largest margin into *any* other class that ascent reaches. A clean model needs large
    changes to move an input across a class boundary, so this stays low; an all-to-all
    backdoor gives every class a nearby shortcut into another.
    """
    rng = np.random.default_rng(seed)
    k = model.num_classes
    picked: list[np.ndarray] = []
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        if len(idx):
            picked.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    if not picked:
        return np.zeros(k)
    sel = np.concatenate(picked)
    x = torch.from_numpy(np.ascontiguousarray(images[sel], dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels[sel], dtype=np.int64))
    n = len(sel)
    # One perturbation per (input, candidate class): K-1 targets per input, batched.
    tgt = torch.stack([(y + j) % k for j in range(1, k)], 1).reshape(-1)
    xs = x.repeat_interleave(k - 1, 0)
    delta = torch.zeros_like(xs).requires_grad_(True)
    opt = torch.optim.Adam([delta], lr=lr)
    d = float(np.prod(xs.shape[1:]))
    for _ in range(steps):
        adv = (xs + delta).clamp(0.0, 1.0)
        margin = _margin(model.logits(adv), tgt)
        opt.zero_grad()
        (-margin.sum()).backward()  # type: ignore[no-untyped-call]
        opt.step()
        with torch.no_grad():  # project onto the L1 ball of radius budget * d (per input)
            flat = delta.reshape(len(delta), -1)
            norm = flat.abs().sum(1, keepdim=True)
            flat.mul_(torch.clamp(budget * d / norm.clamp(min=1e-12), max=1.0))
    with torch.no_grad():
        final = _margin(model.logits((xs + delta).clamp(0.0, 1.0)), tgt).reshape(n, k - 1)
    best = final.max(1).values.double().numpy()
    out = np.zeros(k)
    yn = y.numpy()
    for c in range(k):
        if (yn == c).any():
            out[c] = float(np.median(best[yn == c]))
    return out
