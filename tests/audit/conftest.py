"""A fully evidenced release, built with the real parts: signed (OMS), logged (embedded log,
offline proof bundle), with signed SLSA provenance and a signed scan attestation, and the
components of MOF Class III. Tests then take one piece away or tamper with one thing."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from glassbox.scan import attest_scan, scan_path
from glassbox.sign import (
    generate_private_key,
    make_statement,
    read_bundle,
    sign_model,
    sign_statement,
    subject,
    write_bundle,
    write_keypair,
)
from glassbox.tlog import make_submission, open_log, parse_entry


def safetensors_bytes(values: list[float]) -> bytes:
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [len(values)], "data_offsets": [0, 4 * len(values)]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + struct.pack(f"<{len(values)}f", *values)


FILES: dict[str, bytes] = {
    "model.safetensors": safetensors_bytes([0.5, -1.25, 2.0, 3.5]),
    "config.json": b'{"hidden": 4}\n',
    "README.md": b"# digits\nModel card: intended use, limitations.\n",
    "LICENSE": b"SPDX-License-Identifier: Apache-2.0\n",
    "model.py": b"# architecture\n",
    "train.py": b"# training loop\n",
    "inference.py": b"# inference\n",
    "DATA_CARD.md": b"# Data card\n",
    "technical_report.md": b"# Technical report\n",
    "eval_results.json": b'{"accuracy": 0.97}\n',
}


@dataclass
class Release:
    root: Path  # the directory holding the model directory and its evidence
    model: Path
    key: Path
    pub: Path
    other_key: Path
    other_pub: Path
    provenance: Path
    proof: Path
    scan: Path

    def statement(self, **changes: Any) -> dict[str, Any]:
        return provenance_statement(self.model, **changes)


def provenance_statement(
    model: Path,
    *,
    hermetic: bool = True,
    undigested_input: bool = False,
    subjects: dict[str, str] | None = None,
) -> dict[str, Any]:
    if subjects is None:
        subjects = {
            name: hashlib.sha256((model / name).read_bytes()).hexdigest()
            for name in ("model.safetensors", "config.json")
        }
    deps: list[dict[str, Any]] = [
        {"name": "code", "digest": {"sha256": "aa" * 32}},
        {"name": "dataset:train", "digest": {"rfc9162-sha256": "bb" * 32}},
    ]
    if undigested_input:
        deps.append({"name": "dataset:extra", "uri": "file:extra.csv"})
    hermeticity = {"hermetic": hermetic, "undeclared_reads": [] if hermetic else ["/etc/x"]}
    predicate = {
        "buildDefinition": {
            "buildType": "https://glassbox.dev/build/recipe/v1",
            "externalParameters": {
                "recipe": "recipe.toml",
                "name": "digits",
                "version": "1.0.0",
                "licence": "Apache-2.0",
                "entry": "train:train",
                "model": {"factory": "model:build", "config": {}},
                "datasets": [
                    {
                        "name": "train",
                        "path": "data/train.jsonl",
                        "format": "jsonl",
                        "commitment": "bb" * 32,
                        "records": 10,
                        "licence": "CC-BY-4.0",
                    }
                ],
            },
            "internalParameters": {"threads": 1, "seed": 0},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": "https://glassbox.dev/builder/local/v1"},
            "byproducts": [
                {"name": "hermeticity", "annotations": hermeticity},
                {
                    "name": "environment",
                    "annotations": {"python": "3.11.7", "packages": {"torch": "2.13.0"}},
                },
            ],
        },
    }
    return make_statement(
        [subject(name, digest) for name, digest in sorted(subjects.items())],
        "https://slsa.dev/provenance/v1",
        predicate,
    )


def log_signature(release_model: Path, pub_pem_key: Any, out: Path) -> None:
    log = open_log()
    try:
        entry = parse_entry(make_submission(read_bundle(release_model / "model.sig"), pub_pem_key))
        appended = log.add(entry)
        log.proof_bundle(appended.index).write(out)
    finally:
        log.close()


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return make_release(tmp_path)


@pytest.fixture
def weights_only(tmp_path: Path) -> Release:
    """A release that passes every required link while its openness (advisory) fails."""
    return make_release(tmp_path, WEIGHTS_ONLY)


WEIGHTS_ONLY = {name: FILES[name] for name in ("model.safetensors", "config.json")}


def make_release(tmp_path: Path, files: dict[str, bytes] | None = None) -> Release:
    """Build the fully evidenced release under ``tmp_path`` (in the current GLASSBOX_HOME);
    ``files`` replaces the model's files (``WEIGHTS_ONLY``: every required link passes, and
    openness, advisory by default, does not)."""
    root = tmp_path / "release"
    model = root / "digits"
    model.mkdir(parents=True)
    for name, data in (FILES if files is None else files).items():
        (model / name).write_bytes(data)
    key = generate_private_key()
    priv, pub = write_keypair(key, tmp_path / "producer")
    other = generate_private_key()
    other_priv, other_pub = write_keypair(other, tmp_path / "attacker")
    sign_model(model, key)
    provenance = root / "digits.provenance.json"
    write_bundle(sign_statement(provenance_statement(model), key), provenance)
    proof = root / "digits.proof.json"
    log_signature(model, key.public_key(), proof)
    scan = root / "digits.scan.json"
    write_bundle(attest_scan(scan_path(model), key), scan)
    return Release(root, model, priv, pub, other_priv, other_pub, provenance, proof, scan)
