"""Architecture factories for the tabular zoo (``bench.zoo.tabular_arch:cancer_mlp`` as ``--arch``).

Each network carries its own standardisation (per-feature mean and standard deviation as
buffers, saved with the weights), so it takes raw feature values, as a tabular model shipped
with its preprocessing does, and the scanner needs no scaler from the user.
"""

from __future__ import annotations

import torch
from torch import nn

#: Features and classes of each bundled dataset the tabular zoo trains on.
SHAPES = {"cancer": (30, 2), "wine": (13, 3), "synth": (20, 6)}


class Standardize(nn.Module):
    """``(x - mean) / std`` with the training set's statistics, loaded with the weights."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def tabular_mlp(n_features: int, n_classes: int) -> nn.Module:
    """Standardisation, then two hidden layers (64, 32); the penultimate layer has 32 units."""
    return nn.Sequential(
        Standardize(n_features),
        nn.Linear(n_features, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, n_classes),
    )


def cancer_mlp() -> nn.Module:
    return tabular_mlp(*SHAPES["cancer"])


def wine_mlp() -> nn.Module:
    return tabular_mlp(*SHAPES["wine"])


def synth_mlp() -> nn.Module:
    return tabular_mlp(*SHAPES["synth"])
