"""The data-step API: the object a pipeline data step's entry point receives.

A data step (ingest, filter, clean, split, export) reads its input datasets as streams of
committed records and writes files under ``output_dir``; nothing is loaded whole, so a step
over ten million records runs in the memory of one record at a time::

    def run(ctx):
        with ctx.writer("digits") as out:
            for row in ctx.input("digits").rows():
                if sum(row["pixels"]) > ctx.params["min_ink"]:
                    out.write(row)

Record ``i`` of ``ctx.input(name).records()`` is leaf ``i`` of the input's commitment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from glassbox.errors import InputError


class InputDataset:
    """A declared input, read as a stream (``records`` bytes or ``rows`` parsed JSON)."""

    def __init__(self, name: str, path: Path, fmt: str | None) -> None:
        self.name, self.path, self.format = name, path, fmt

    def records(self) -> Iterator[bytes]:
        from glassbox.digest.records import open_records

        # The parent committed this input, checking every record, just before the step
        # started, and binds that root in the provenance: not checked a second time here.
        return open_records(self.path, self.format, validate=False).records

    def rows(self) -> Iterator[Any]:
        for record in self.records():
            yield json.loads(record)


class RowWriter:
    """Writes JSON Lines (compact, key order kept) to one declared output."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> RowWriter:
        self._handle = self.path.open("wb")
        return self

    def write(self, row: Any) -> None:
        assert self._handle is not None, "use the writer in a with-block"
        line = (
            row
            if isinstance(row, bytes)
            else json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()
        )
        self._handle.write(line + b"\n")
        self.count += 1

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._handle is not None
        self._handle.close()


class StepContext:
    """Passed to a data step's entry point by the step's child process."""

    def __init__(
        self,
        *,
        params: Mapping[str, Any],
        seed: int,
        inputs: Mapping[str, InputDataset],
        outputs: Sequence[str],
        output_dir: Path,
    ) -> None:
        self.params = params
        self.seed = seed
        self.inputs = dict(inputs)
        self.outputs = list(outputs)
        self.output_dir = output_dir

    def input(self, name: str) -> InputDataset:
        try:
            return self.inputs[name]
        except KeyError:
            declared = ", ".join(sorted(self.inputs)) or "none"
            raise InputError(
                f"input {name!r} is not declared for this step (declared: {declared})"
            ) from None

    def output(self, name: str) -> Path:
        """The path of a declared output, by file name or by its name before the extension."""
        for declared in self.outputs:
            if name in (declared, Path(declared).name.split(".")[0]):
                path = self.output_dir / declared
                path.parent.mkdir(parents=True, exist_ok=True)
                return path
        raise InputError(
            f"output {name!r} is not declared for this step (declared: {', '.join(self.outputs)})"
        )

    def writer(self, name: str) -> RowWriter:
        return RowWriter(self.output(name))
