"""Small zoo for the behavioural tests: plain PyTorch models trained on digits in about a second.

The zoo generator lives in ``bench/zoo`` (shared with the benchmark); the repository root is put
on ``sys.path`` so ``bench.zoo`` imports as a namespace package.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.zoo.generate import Attack, build_entry, digits_split, train  # noqa: E402

from glassbox.scan.behavior import wrap_module  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One clean and one strongly backdoored MLP (3x3 patch, 10% poison), plus a clean reference."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("zoo")
    clean = build_entry(Attack("clean", seed=11), root / "clean", epochs=30)
    bad = build_entry(Attack("patch", target=3, rate=0.1, size=3, seed=12), root / "bad", epochs=30)
    xtr, ytr, _, _ = digits_split()
    reference = wrap_module(train(xtr, ytr, "mlp", 999, epochs=30), 64)
    return {"root": root, "clean": clean, "bad": bad, "reference": reference}


@pytest.fixture(scope="session")
def hard_zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The attacks the older detectors missed: low-rate (1%) poisoning and all-to-all."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hard-zoo")
    low = Attack("patch", target=5, rate=0.01, size=3, seed=13)
    a2a = Attack("all2all", rate=0.1, size=3, seed=14)
    return {
        "root": root,
        "low": build_entry(low, root / "low", epochs=30),
        "a2a": build_entry(a2a, root / "a2a", epochs=30),
    }
