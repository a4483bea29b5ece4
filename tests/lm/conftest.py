"""The miniature LM zoo, built once per test session in-process (about 20 s on one core).

The zoo code lives in ``bench/lm_zoo`` (shared with the benchmark); the repository root is put
on ``sys.path`` so ``bench.lm_zoo`` imports as a namespace package.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("scipy")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lm_zoo import mini  # noqa: E402


@dataclass
class MiniZoo:
    root: Path
    config: Any
    states: dict[str, Any]

    def __getitem__(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> MiniZoo:
    root = tmp_path_factory.mktemp("lm-zoo")
    prose = mini.corpus("prose", 256, 0)
    base = mini.pretrain(0, prose, steps=40)
    cfg = base.config
    other = mini.pretrain(1, prose, steps=40)  # same data, another seed: unrelated weights
    ft = mini.finetune(base, mini.corpus("qa", 256, 1), steps=30, lr=3e-3)
    lora = mini.finetune(base, mini.corpus("code", 256, 2), steps=30, lr=3e-3, lora=4)
    t = mini.transforms
    ft_state = mini.state_of(ft)
    states = {
        "base": mini.state_of(base),
        "other": mini.state_of(other),
        "ft": ft_state,
        "lora": mini.state_of(lora),
        "permuted": t.permute_residual(
            t.permute_heads(t.permute_mlp(ft_state, cfg, 1), cfg, 1), cfg, 1
        ),
        "rescaled": t.rescale(ft_state, cfg, 2),
        "pruned": t.prune(ft_state, 0.5),
        "fp16": t.fp16(ft_state),
        "int8": t.int8(ft_state),
    }
    for name, state in states.items():
        mini.save(state, cfg, root / name)
    t.to_gguf(ft_state, cfg, str(root / "ft.gguf"))
    return MiniZoo(root, cfg, states)
