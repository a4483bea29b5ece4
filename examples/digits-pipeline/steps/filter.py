"""Filter step: drop faint scans (total ink below ``min_ink``). A filter only removes records,
and the pipeline declares that (``allow = ["removed"]``), so a filter that edited a record
would be refused."""

from __future__ import annotations

from typing import Any

DIGITS = "0123456789abcdefg"


def run(ctx: Any) -> None:
    with ctx.writer("digits") as out:
        for record, row in zip(
            ctx.input("digits").records(), ctx.input("digits").rows(), strict=True
        ):
            if sum(DIGITS.index(c) for c in row["pixels"]) >= ctx.params["min_ink"]:
                out.write(record)  # the record's bytes, unchanged
