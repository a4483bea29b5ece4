"""Corpus fixture: generated once per session (payloads harmless, never loaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.scan.make_corpus import build


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("scan-corpus")
    build(root)
    return root, json.loads((root / "corpus.json").read_text())
