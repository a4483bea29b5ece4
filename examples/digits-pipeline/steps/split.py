"""Split step: every ``test_every``-th record (by id) is held out for evaluation; the split is
decided by the data, not by a random state."""

from __future__ import annotations

from typing import Any


def run(ctx: Any) -> None:
    every = int(ctx.params["test_every"])
    source = ctx.input("digits")
    with ctx.writer("train") as train, ctx.writer("test") as test:
        for record, row in zip(source.records(), source.rows(), strict=True):
            (test if row["id"] % every == every - 1 else train).write(record)
