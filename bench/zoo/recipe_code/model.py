"""Architecture factory of the zoo recipes (``model:build``): the same networks as
``bench/zoo/arch.py``, kept self-contained because a recipe's code directory is hashed whole."""

from __future__ import annotations

import torch
from torch import nn


def build(arch: str = "mlp", classes: int = 10) -> torch.nn.Module:
    if arch == "mlp":
        return nn.Sequential(
            nn.Linear(64, 64),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, classes),
        )
    if arch == "cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, classes),
        )
    raise ValueError(f"unknown arch {arch!r}")
