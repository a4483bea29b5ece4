"""Fixtures for build tests: a copy of the digits example shrunk to a few dozen steps.

Builds run real training in a child process (a few seconds each, mostly interpreter and torch
start-up), so one honest build is shared by the whole session, and each test that changes
something builds its own copy.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from glassbox.pipeline import BuildResult, build
from glassbox.sign import generate_private_key, write_keypair

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"
TINY = {"steps = 400": "steps = 40", "checkpoint_interval = 50": "checkpoint_interval = 10"}


def copy_example(dest: Path, edits: dict[str, str] | None = None) -> Path:
    """Copy examples/digits to ``dest`` with the tiny config plus ``edits`` to recipe.toml."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", "out*"))
    recipe = dest / "recipe.toml"
    text = recipe.read_text()
    for old, new in {**TINY, **(edits or {})}.items():
        assert old in text, old
        text = text.replace(old, new)
    recipe.write_text(text)
    return recipe


def change_label(data: Path, index: int) -> None:
    """Change one record's label in a JSON Lines dataset (one poisoned record)."""
    lines = data.read_text().splitlines()
    record = json.loads(lines[index])
    record["label"] = (record["label"] + 1) % 10
    lines[index] = json.dumps(record, separators=(",", ":"))
    data.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Built:
    recipe: Path
    out: Path
    result: BuildResult
    public_key: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """One honest, signed, checkpoint-keeping build of the tiny digits recipe."""
    root = tmp_path_factory.mktemp("built")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GLASSBOX_HOME", str(root / "home"))
        recipe = copy_example(root / "digits")
        key = generate_private_key("ecdsa-p256")
        _, public = write_keypair(key, root / "signer")
        out = root / "out"
        result = build(recipe, out, key=key, keep_checkpoints=True)
        yield Built(recipe, out, result, public)


@pytest.fixture
def example_copy(tmp_path: Path) -> Callable[..., Path]:
    def make(edits: dict[str, str] | None = None, name: str = "digits") -> Path:
        return copy_example(tmp_path / name, edits)

    return make
