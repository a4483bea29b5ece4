"""Architecture factory for the digits example: ``model:build`` in the recipe.

Kept apart from the training code so that anyone holding the weights can rebuild the module
(the factory is recorded in the provenance) without running training.
"""

from __future__ import annotations

import torch


def build(hidden: int = 32, classes: int = 10) -> torch.nn.Module:
    """An 8x8-pixel MLP classifier."""
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, classes),
    )
