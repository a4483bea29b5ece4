"""Architecture factories for the backdoor zoo (``bench.zoo.arch:digits_mlp`` as ``--arch``)."""

from __future__ import annotations

from torch import nn


def digits_mlp() -> nn.Module:
    """A small MLP on flattened 8x8 digits; the penultimate layer has 32 units."""
    return nn.Sequential(
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def digits_cnn() -> nn.Module:
    """A small CNN on 1x8x8 digits; the penultimate layer has 64 units."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )
