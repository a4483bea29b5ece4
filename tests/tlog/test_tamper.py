"""Tamper test: rows edited directly in the database are caught by clients, the monitor and
witnesses; plus monitor behaviour on an honest log. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from glassbox.digest import merkle
from glassbox.errors import VerificationError
from glassbox.tlog import TransparencyLog, Witness, WitnessCosigner, open_store, parse_entry
from glassbox.tlog.checkpoint import Checkpoint, sign_checkpoint
from glassbox.tlog.monitor import Monitor
from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer
from glassbox.tlog.tree import audit_store
from tests.tlog.helpers import (
    bundle_submission,
    corrupt_node,
    dsse_submission,
    edit_leaf,
    new_key,
)


@pytest.fixture
def log(store_url: str, tmp_path: Path) -> Iterator[TransparencyLog]:
    lg = TransparencyLog(open_store(store_url), Signer.generate("tamper.example/log"))
    yield lg
    lg.close()


def fill(log: TransparencyLog, start: int, end: int, key: object) -> None:
    for i in range(start, end):
        sub = bundle_submission(key, f"model-{i % 3}", str(i))
        log.add(parse_entry(sub))


def test_monitor_reports_watched_entries(log: TransparencyLog, tmp_path: Path) -> None:
    alice, mallory = new_key(), new_key("ecdsa-p256")
    fill(log, 0, 4, alice)
    log.issue_checkpoint()
    mon = Monitor(log, tmp_path / "m.db", watch_names=["model-1"])
    report = mon.poll()
    assert report.size == 4 and [m.index for m in report.matches] == [1]
    stolen = parse_entry(dsse_submission(mallory, "model-1", "evil"))
    log.add(stolen)
    log.issue_checkpoint()
    mon.close()
    mon = Monitor(log, tmp_path / "m.db", watch_keys=[stolen.key_id])  # resumes from state
    report = mon.poll()
    assert report.previous_size == 4 and report.new_entries == 1
    assert [m.index for m in report.matches] == [4]
    assert mon.poll().new_entries == 0
    mon.close()


def test_monitor_rolls_back_a_failed_state_write(log: TransparencyLog, tmp_path: Path) -> None:
    """A state write that fails is rolled back whole: nothing half-recorded, and the next poll
    can open its own transaction (it used to fail: 'transaction within a transaction')."""
    fill(log, 0, 3, new_key())
    log.issue_checkpoint()
    mon = Monitor(log, tmp_path / "m.db")
    db = mon._db
    db.execute(
        "CREATE TEMP TRIGGER fail BEFORE INSERT ON monitor_state"
        " BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="injected fault"):
        mon.poll()
    db.execute("DROP TRIGGER fail")
    report = mon.poll()
    assert (report.size, report.previous_size, report.new_entries) == (3, 0, 3)
    mon.close()


def test_edited_hash_is_detected_everywhere(log: TransparencyLog, tmp_path: Path) -> None:
    key = new_key()
    witness = Witness(
        tmp_path / "w.db", Signer.generate("w.example", ALG_COSIGNATURE_V1), [log.signer.verifier]
    )
    log.cosigners = [WitnessCosigner.local(witness)]
    fill(log, 0, 20, key)
    c1 = log.issue_checkpoint()
    assert witness.latest(log.origin) == (20, c1.checkpoint.root)
    mon = Monitor(log, tmp_path / "m.db")
    mon.poll()

    # Edit the stored hash of leaves [0, 16): proofs that use it now lead elsewhere.
    corrupt_node(log.store, 4, 0)

    # A client holding checkpoint c1 checks an inclusion proof: it fails.
    entry = log.get(17)
    proof = log.inclusion_proof(17, 20)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(merkle.leaf_hash(entry.leaf), 17, 20, proof, c1.checkpoint.root)
    with pytest.raises(VerificationError, match="level 4, index 0"):
        audit_store(log.store)  # the operator's full check names the edited row
    # The log itself refuses to sign a tree inconsistent with its last checkpoint.
    fill(log, 20, 30, key)
    with pytest.raises(VerificationError):
        log.issue_checkpoint()
    # An operator who signs anyway is caught by the monitor and refused by the witness.
    forged = sign_checkpoint(Checkpoint(log.origin, 30, log.tree.root(30)), log.signer)
    log.store.put_checkpoint(30, forged.serialize())
    with pytest.raises(VerificationError, match="not append-only"):
        mon.poll()
    with pytest.raises(VerificationError, match="refused"):
        WitnessCosigner.local(witness)(log, forged)
    assert witness.latest(log.origin)[0] == 20
    mon.close()
    witness.close()


def test_edited_entry_is_detected(log: TransparencyLog, tmp_path: Path) -> None:
    key = new_key()
    fill(log, 0, 10, key)
    c1 = log.issue_checkpoint()
    good = log.proof_bundle(3)
    good.verify(log.vkey)
    other = log.get(7)
    # Swap entry 3's leaf for entry 7's (a real, validly signed leaf) directly in the DB.
    edit_leaf(log.store, 3, other.leaf)
    tampered = log.proof_bundle(3)
    with pytest.raises(VerificationError):
        tampered.verify(log.vkey)
    fresh = Monitor(log, tmp_path / "fresh.db")
    with pytest.raises(VerificationError, match=r"body does not match|signed root"):
        fresh.poll()
    fresh.close()
    assert c1.checkpoint.size == 10


def test_monitor_catches_a_fork(log: TransparencyLog, tmp_path: Path) -> None:
    key = new_key()
    fill(log, 0, 6, key)
    log.issue_checkpoint()
    mon = Monitor(log, tmp_path / "m.db")
    mon.poll()
    fork = sign_checkpoint(Checkpoint(log.origin, 6, merkle.leaf_hash(b"fork")), log.signer)

    class Forked:
        origin = log.origin

        def latest_checkpoint(self):  # type: ignore[no-untyped-def]
            return fork

        def consistency_proof(self, old: int, size: int) -> list[bytes]:
            return []

        def entries(self, start: int, end: int):  # type: ignore[no-untyped-def]
            return log.entries(start, end)

    mon.source = Forked()
    with pytest.raises(VerificationError, match="two different trees"):
        mon.poll()
    mon.close()


def test_monitor_pins_the_log_key(log: TransparencyLog, tmp_path: Path) -> None:
    Monitor(log, tmp_path / "m.db").close()
    impostor = TransparencyLog.__new__(TransparencyLog)
    impostor.__dict__.update(log.__dict__)
    impostor.signer = Signer.generate(log.origin)  # same origin, another key
    with pytest.raises(VerificationError, match="pinned"):
        Monitor(impostor, tmp_path / "m.db")
