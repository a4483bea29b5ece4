"""The tlog-witness protocol: cosign only consistent checkpoints; refuse rollbacks and forks.

Request/response formats follow c2sp.org/tlog-witness (C2SP/C2SP tlog-witness.md, see
tests/vectors/tlog/SOURCES.md for the C2SP snapshot the other vectors come from).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox.digest import merkle
from glassbox.errors import VerificationError
from glassbox.tlog.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer
from glassbox.tlog.witness import (
    Witness,
    WitnessError,
    WitnessPolicy,
    format_add_checkpoint,
    parse_add_checkpoint,
    parse_cosignature_lines,
)

LOG = Signer.generate("example.com/log")
LEAVES = [merkle.leaf_hash(str(i).encode()) for i in range(40)]


def cp(size: int, leaves: list[bytes] = LEAVES, signer: Signer = LOG) -> SignedCheckpoint:
    return sign_checkpoint(Checkpoint(signer.name, size, merkle.root_of(leaves[:size])), signer)


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    w = Witness(
        tmp_path / "w.db", Signer.generate("w1.example", ALG_COSIGNATURE_V1), [LOG.verifier]
    )
    yield w
    w.close()


def submit(w: Witness, old: int, new: int, leaves: list[bytes] = LEAVES) -> str:
    proof = merkle.consistency_proof(leaves[:new], old) if 0 < old < new else []
    return w.add_checkpoint(format_add_checkpoint(old, proof, cp(new, leaves).serialize()))


def test_cosigns_consistent_checkpoints(witness: Witness) -> None:
    lines = submit(witness, 0, 5)
    policy = WitnessPolicy.from_vkeys([witness.signer.vkey], k=1)
    signed = cp(5)
    cosigned = SignedCheckpoint(
        signed.checkpoint, signed.note.with_signatures(parse_cosignature_lines(lines))
    )
    assert policy.check(cosigned) == ["w1.example"]
    submit(witness, 5, 17)
    submit(witness, 17, 17)  # same checkpoint again is fine
    assert witness.latest(LOG.name) == (17, merkle.root_of(LEAVES[:17]))


def test_refuses_rollback_and_stale_old_size(witness: Witness) -> None:
    submit(witness, 0, 10)
    with pytest.raises(WitnessError) as exc:
        submit(witness, 0, 5)
    assert exc.value.status == 409 and exc.value.latest_size == 10
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(format_add_checkpoint(10, [], cp(5).serialize()))
    assert exc.value.status == 400
    assert witness.latest(LOG.name)[0] == 10


def test_refuses_fork(witness: Witness) -> None:
    submit(witness, 0, 10)
    forked = list(LEAVES)
    forked[3] = merkle.leaf_hash(b"evil")
    with pytest.raises(WitnessError) as exc:
        submit(witness, 10, 10, forked)
    assert exc.value.status == 409
    with pytest.raises(WitnessError) as exc:
        submit(witness, 10, 20, forked)  # honest-looking proof within the forked tree
    assert exc.value.status == 422
    assert witness.latest(LOG.name) == (10, merkle.root_of(LEAVES[:10]))


def test_refuses_unknown_log_and_bad_signature(witness: Witness) -> None:
    stranger = Signer.generate("other.example/log")
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(format_add_checkpoint(0, [], cp(3, signer=stranger).serialize()))
    assert exc.value.status == 404
    impostor = Signer.generate(LOG.name)
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(format_add_checkpoint(0, [], cp(3, signer=impostor).serialize()))
    assert exc.value.status == 403


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 1",
        b"old x\n\n",
        b"old 01\n\nx",
        b"new 1\n\n",
        b"old 1\n!!!\n\nx",
        b"\xff\n\n",
        b"old 1\nAAAA\n\nx",
        b"old 0\n" + b"A" * 70000,
    ],
)
def test_malformed_requests_are_400(body: bytes) -> None:
    with pytest.raises(WitnessError) as exc:
        parse_add_checkpoint(body)
    assert exc.value.status == 400


def test_policy_k_of_n(tmp_path: Path) -> None:
    ws = [
        Witness(
            tmp_path / f"{i}.db",
            Signer.generate(f"w{i}.example", ALG_COSIGNATURE_V1),
            [LOG.verifier],
        )
        for i in range(3)
    ]
    signed = cp(8)
    sigs = []
    for w in ws[:2]:
        sigs += parse_cosignature_lines(
            w.add_checkpoint(format_add_checkpoint(0, [], signed.serialize()))
        )
    cosigned = SignedCheckpoint(signed.checkpoint, signed.note.with_signatures(sigs))
    vkeys = [w.signer.vkey for w in ws]
    assert len(WitnessPolicy.from_vkeys(vkeys, k=2).check(cosigned)) == 2
    with pytest.raises(VerificationError, match="needs 3 of 3"):
        WitnessPolicy.from_vkeys(vkeys).check(cosigned)
    with pytest.raises(VerificationError):
        WitnessPolicy.from_vkeys(vkeys, k=1).check(signed)
    for w in ws:
        w.close()


def test_http_interface_status_codes(witness: Witness) -> None:
    from fastapi.testclient import TestClient

    from glassbox.tlog.server import create_witness_app

    with TestClient(create_witness_app(witness)) as http:
        ok = http.post("/add-checkpoint", content=format_add_checkpoint(0, [], cp(4).serialize()))
        assert ok.status_code == 200 and ok.text.startswith("\u2014 w1.example ")
        stale = http.post(
            "/add-checkpoint", content=format_add_checkpoint(0, [], cp(6).serialize())
        )
        assert stale.status_code == 409
        assert stale.headers["content-type"] == "text/x.tlog.size" and stale.text == "4\n"
        assert http.post("/add-checkpoint", content=b"old 0").status_code == 400
        big = http.post("/add-checkpoint", content=b"old 0\n\n" + b"x" * 70000)
        assert big.status_code == 413
