"""Shared fixtures for the sign tests: a small model and a key pair on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox.sign import generate_private_key, write_keypair
from tests.sign.helpers import make_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path / "tiny-model")


@pytest.fixture
def ec_keys(tmp_path: Path) -> tuple[Path, Path]:
    """(private, public) PEM paths of a fresh ECDSA P-256 key."""
    (tmp_path / "keys").mkdir(exist_ok=True)
    return write_keypair(generate_private_key("ecdsa-p256"), tmp_path / "keys" / "signer")
