"""Training loops of the LM zoo: pre-training, full and LoRA fine-tuning, distillation.

Pure functions of (model, data, step iterator, batch function), so the same code runs inside a
Glassbox build (``train.py`` passes ``ctx.steps`` and ``ctx.batch_indices``) and in the tests'
in-process miniature zoo (a ``range`` and a seeded sampler).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

PAD = 0


def encode(texts: list[str], seq_len: int) -> torch.Tensor:
    """Byte tokens, one row per record, cut or padded (``PAD``, masked out) to ``seq_len``."""
    rows = torch.full((len(texts), seq_len), PAD, dtype=torch.int64)
    for i, text in enumerate(texts):
        data = list(text.encode("utf-8"))[:seq_len]
        rows[i, : len(data)] = torch.tensor(data, dtype=torch.int64)
    return rows


def _labels(batch: torch.Tensor) -> torch.Tensor:
    labels = batch.clone()
    labels[batch == PAD] = -100
    return labels


class LoRA(nn.Module):
    """``W + (alpha / r) B A`` as a parametrization, so merging is removing it."""

    def __init__(
        self, out_features: int, in_features: int, rank: int, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.a = nn.Parameter(
            torch.randn(rank, in_features, generator=generator) / in_features**0.5
        )
        self.b = nn.Parameter(torch.zeros(out_features, rank))
        self.scale = 2.0 / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * (self.b @ self.a)


def add_lora(model: nn.Module, rank: int, generator: torch.Generator) -> list[nn.Parameter]:
    """LoRA on every attention and MLP projection; only the adapters train."""
    from torch.nn.utils import parametrize

    for p in model.parameters():
        p.requires_grad_(False)
    params: list[nn.Parameter] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.split(".")[-1].endswith("_proj"):
            lora = LoRA(module.out_features, module.in_features, rank, generator)
            parametrize.register_parametrization(module, "weight", lora)
            params += [lora.a, lora.b]
    return params


def merge_lora(model: nn.Module) -> None:
    from torch.nn.utils import parametrize

    for module in list(model.modules()):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    for p in model.parameters():
        p.requires_grad_(True)


def train(
    model: nn.Module,
    data: torch.Tensor,
    steps: Callable[[], Iterable[int]],
    batch: Callable[[int], torch.Tensor],
    *,
    lr: float,
    teacher: nn.Module | None = None,
    temperature: float = 2.0,
    params: list[nn.Parameter] | None = None,
    on_optimizer: Callable[[torch.optim.Optimizer], None] | None = None,
) -> float:
    """AdamW on next-byte prediction (or on the teacher's softened distribution); the last
    loss. ``on_optimizer`` sees the optimizer before ``steps()`` is called (a build tracks
    it there, since ``ctx.steps`` must come after ``ctx.track``)."""
    optimizer = torch.optim.AdamW(
        params if params is not None else model.parameters(), lr=lr, weight_decay=0.0
    )
    if on_optimizer is not None:
        on_optimizer(optimizer)
    model.train()
    loss = torch.tensor(0.0)
    for step in steps():
        rows = data[batch(step)]
        optimizer.zero_grad()
        if teacher is None:
            loss = model(input_ids=rows, labels=_labels(rows)).loss
        else:
            with torch.no_grad():
                target = F.softmax(teacher(input_ids=rows).logits / temperature, dim=-1)
            logp = F.log_softmax(model(input_ids=rows).logits / temperature, dim=-1)
            mask = (rows != PAD).unsqueeze(-1)
            loss = -(target * logp * mask).sum() / mask.sum() * temperature**2
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())


def evaluate(model: nn.Module, data: torch.Tensor) -> float:
    with torch.no_grad():
        return float(model(input_ids=data, labels=_labels(data)).loss)


def load_state(model: nn.Module, state: dict[str, Any]) -> None:
    model.load_state_dict(state, strict=True)
