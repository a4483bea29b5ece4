"""Training entry of the zoo recipes (``train:train``): Adam on pixels scaled to [0, 1].

The data files decide everything about the attack (the poisoned records are in them); this code
is the same for clean and backdoored models, as it would be for an honest trainer handed
poisoned data. It is a near-copy of ``examples/digits/train.py`` (Adam here, SGD there) rather
than an import of it: a recipe's code directory is hashed whole into its provenance, so it must
not reach outside itself.
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
    optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
    ctx.track(model, optimizer)
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in ctx.steps(params["steps"]):
        batch = ctx.batch_indices(step, params["batch_size"], "train")
        optimizer.zero_grad()
        loss_fn(model(x_train[batch]), y_train[batch]).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    (ctx.output_dir / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy}) + "\n")
    ctx.save_model(model)
