"""Shared CLI plumbing: error-to-exit-code mapping, JSON output, terminal-only progress."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import click

from glassbox.errors import GlassboxError

P = ParamSpec("P")
R = TypeVar("R")


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a ``GlassboxError`` into a one-line message on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except GlassboxError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(exc.exit_code) from None

    return wrapper


def emit_json(obj: Any) -> None:
    """Print ``obj`` as stable, sorted, indented JSON on stdout."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


class Progress:
    """A progress sink the library parts accept: ``advance(n)`` with a known ``total``.

    Parts take an optional ``Callable[[int], None]``; this wraps a rich bar when stderr is a
    terminal and does nothing otherwise, so CI logs and ``--json`` output stay clean.
    """

    def __init__(self, advance: Callable[[int], None]) -> None:
        self.advance = advance


@contextlib.contextmanager
def progress(description: str, total: int | None, *, enabled: bool = True) -> Iterator[Progress]:
    if not enabled or not sys.stderr.isatty():
        yield Progress(lambda _n: None)
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as RichProgress

    with RichProgress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=None,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield Progress(lambda n: bar.advance(task, n))


class ModelPath(click.ParamType):  # type: ignore[type-arg]
    """A MODEL argument: a path, or ``hf:org/name[@REVISION]`` looked up in the local Hugging
    Face cache (never downloaded) and replaced by its snapshot directory.

    A bad ``hf:`` name is a usage error (exit 2, one line); a path is passed on unchecked, as
    ``click.Path`` would, so each command reports a missing file in its own words.
    """

    name = "model"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from pathlib import Path

        if isinstance(value, Path):
            return value
        text = str(value)
        if not text.startswith("hf:"):
            return Path(text)
        from glassbox.trust import resolve_model  # only for hf: names

        try:
            return resolve_model(text).path
        except GlassboxError as exc:
            self.fail(str(exc), param, ctx)


MODEL_PATH = ModelPath()
