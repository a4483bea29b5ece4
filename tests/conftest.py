"""Suite-wide fixtures: every test gets its own GLASSBOX_HOME so no user state is touched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path_factory.mktemp("glassbox-home")))


def load_vector(name: str) -> Any:
    """Load a known-answer vector file from tests/vectors (see tests/vectors/tlog/SOURCES.md)."""
    return json.loads((VECTORS / name).read_text())
