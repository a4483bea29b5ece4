"""Data-free maximum-margin statistics, after MM-BD (Wang, Miller and Kesidis, IEEE S&P 2024).

A backdoor teaches the network a shortcut to its target class that overrides everything else in
the input, so the largest *margin* (target logit minus the best other logit) that any input in
the valid domain can reach is abnormally large for a target class. Finding that maximum needs no
data: gradient ascent on the input from random starts, projected to the input box ``[0, 1]``.
All classes and restarts are optimised in one batch (``K * R`` inputs), so it costs one short
optimisation per model whatever the number of classes.

The per-class maxima are ranked robustly across classes (``analysis``): one or a few classes
far above the rest are targets of one-to-one or many-to-one attacks. An all-to-all backdoor
makes every class a target, so no class stands out here; that case is left to the cross-class
check in ``robust_spectral`` (which needs the training data). A margin-near-real-inputs
variant and an untargeted universal trigger were tried for all-to-all on the development
models and did not separate them from clean ones.
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
