"""Lineage attestations read back: verified with the signer's key (from a file or from a
bundle in memory), refused when tampered, signed by another key or not a lineage result."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from glassbox.errors import InputError, VerificationError
from glassbox.lm import (
    DERIVED,
    LineageResult,
    attest_lineage,
    read_lineage_attestation,
    verify_lineage_attestation,
    verify_lineage_bundle,
)
from glassbox.lm.probe_attest import model_root_digest
from glassbox.sign import generate_private_key, public_key_of, write_bundle


def model(path: Path, seed: int) -> Path:
    path.mkdir()
    data = struct.pack("<4f", *(float(seed + i) for i in range(4)))
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    header += b" " * (-len(header) % 8)
    (path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def test_lineage_attestation_round_trip_and_refusals(tmp_path: Path) -> None:
    key = generate_private_key()
    cand, base = model(tmp_path / "cand", 1), model(tmp_path / "base", 2)
    result = LineageResult(str(cand), str(base), 0.87, DERIVED, "aligned", [], {}, {}, 0.0)
    bundle = attest_lineage(result, key)
    path = tmp_path / "lineage.json"
    write_bundle(bundle, path)
    predicate = verify_lineage_attestation(path, public_key_of(key))
    assert predicate["verdict"] == DERIVED and predicate["score"] == 0.87
    assert predicate["candidateRoot"]["sha256"] == model_root_digest(cand)[0]
    assert predicate["base"]["digest"]["sha256"] == model_root_digest(base)[0]
    assert read_lineage_attestation(path) == predicate
    assert verify_lineage_bundle(bundle, public_key_of(key)) == predicate
    with pytest.raises(VerificationError):
        verify_lineage_bundle(bundle, public_key_of(generate_private_key()))
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["verdict"] = "not derived"
    forged = json.loads(json.dumps(bundle))
    forged["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError):
        verify_lineage_bundle(forged, public_key_of(key))
    result.verdict = "maybe"
    with pytest.raises(InputError, match="verdict 'maybe'"):
        verify_lineage_bundle(attest_lineage(result, key), public_key_of(key))
