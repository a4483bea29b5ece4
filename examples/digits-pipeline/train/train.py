"""Training code for the digits example: ``train:train`` in the recipe.

Everything random comes from the context (seeded, checkpointed), batches come from
``ctx.batch_indices`` (a pure function of seed and step), so the run rebuilds bit for bit and
any segment of it can be replayed from its checkpoint.
"""

from __future__ import annotations

import json
from typing import Any

import torch

DIGITS = "0123456789abcdefg"


def tensors(records: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = [[DIGITS.index(c) for c in r["pixels"]] for r in records]
    x = torch.tensor(pixels, dtype=torch.float32) / 16.0
    y = torch.tensor([int(r["label"]) for r in records], dtype=torch.int64)
    return x, y


def train(ctx: Any) -> None:
    params = ctx.params
    x_train, y_train = tensors(ctx.dataset("train").json())
    x_test, y_test = tensors(ctx.dataset("test").json())

    model = ctx.build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"])
    ctx.track(model, optimizer)
    loss_fn = torch.nn.CrossEntropyLoss()

    for step in ctx.steps(params["steps"]):
        batch = ctx.batch_indices(step, params["batch_size"], "train")
        optimizer.zero_grad()
        loss = loss_fn(model(x_train[batch]), y_train[batch])
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    (ctx.output_dir / "metrics.json").write_text(
        json.dumps({"test_accuracy": round(accuracy, 6), "steps": params["steps"]}) + "\n"
    )
    ctx.save_model(model)
