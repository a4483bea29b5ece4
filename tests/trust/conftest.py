"""Signed, logged releases of tiny Hugging Face style models, and policies that trust them.

Everything is real: a tiny random BERT from ``transformers`` (``save_pretrained``, no
download), OMS signatures, the embedded transparency log with an offline proof bundle, and
policy files written as a user would write them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from glassbox.sign import (
    generate_private_key,
    load_public_key,
    read_bundle,
    sign_model,
    write_keypair,
)
from glassbox.tlog import make_submission, open_log, parse_entry
from tests.trust.hfcache import save_tiny_model


@dataclass
class Keys:
    acme_key: Path
    acme_pub: Path
    other_key: Path
    other_pub: Path


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny BERT per test session (transformers is slow to import); tests copy it."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    acme = write_keypair(generate_private_key(), tmp_path / "acme")
    other = write_keypair(generate_private_key(), tmp_path / "other")
    return Keys(acme[0], acme[1], other[0], other[1])


def log_release(model: Path, signature: Path, pub: Path) -> Path:
    """Record the signature in the embedded log; write ``MODEL.proof.json`` beside the model."""
    proof = model.with_name(model.name + ".proof.json")
    log = open_log()
    try:
        submission = make_submission(read_bundle(signature), load_public_key(pub))
        index = log.add(parse_entry(submission)).index
        log.proof_bundle(index).write(proof)
    finally:
        log.close()
    return proof


def release(
    source: Path, dest: Path, key: Path, pub: Path, *, ignore: tuple[str, ...] = ()
) -> Path:
    """Copy ``source`` to ``dest``, sign it with ``key`` and log it; returns ``dest``."""
    from glassbox.sign import load_private_key

    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        shutil.copyfile(source, dest)
    signed = sign_model(dest, load_private_key(key), ignore_paths=ignore)
    log_release(dest, signed.signature_path, pub)
    return dest


@pytest.fixture
def model(tmp_path: Path, tiny_source: Path, keys: Keys) -> Path:
    """The tiny BERT, signed by Acme and logged in the embedded log."""
    return release(tiny_source, tmp_path / "tiny-bert", keys.acme_key, keys.acme_pub)


def write_policy(
    path: Path,
    pub: Path,
    *,
    models: str = '["*"]',
    log: str = 'require = true\nkeys = ["embedded"]',
    extra: str = "",
    publisher: str = "Acme AI",
) -> Path:
    path.write_text(
        f"""# what this user trusts
version = 1

[[publisher]]
name = "{publisher}"
models = {models}
keys = ["{pub}"]

[log]
{log}

[scan]
fail-on = "high"

{extra}
"""
    )
    return path


@pytest.fixture
def policy(tmp_path: Path, keys: Keys) -> Path:
    return write_policy(tmp_path / "policy.toml", keys.acme_pub)
