"""The log as users see it: verified admission, dedup, search, checkpoints, proof bundles.

Every test here runs against SQLite and PostgreSQL (``store_url`` fixture).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from glassbox.digest import merkle
from glassbox.errors import InputError, VerificationError
from glassbox.sign import (
    IN_TOTO_PAYLOAD_TYPE,
    dsse_sign,
    make_statement,
    public_key_id,
    subject,
)
from glassbox.sign.statement import statement_bytes
from glassbox.tlog import (
    LeafFields,
    ProofBundle,
    SeenCheckpoints,
    TransparencyLog,
    Witness,
    WitnessCosigner,
    WitnessPolicy,
    canonical_json,
    make_submission,
    open_store,
    parse_entry,
    verify_proof_bundle,
)
from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer
from tests.tlog.helpers import bundle_submission, dsse_submission, new_key

SLSA = "https://slsa.dev/provenance/v1"


@pytest.fixture
def log(store_url: str) -> TransparencyLog:
    lg = TransparencyLog(open_store(store_url), Signer.generate("test.example/log"))
    yield lg
    lg.close()


def test_entry_leaf_is_compact_and_documented() -> None:
    key = new_key()
    entry = parse_entry(bundle_submission(key))
    fields = LeafFields.decode(entry.leaf)
    assert len(entry.leaf) == 97 and entry.leaf[0] == 0
    assert fields.key_hash.hex() == public_key_id(key.public_key())
    assert ("name", "model-a") in entry.terms() and ("key", entry.key_id) in entry.terms()


def test_bad_signatures_are_refused() -> None:
    key, other = new_key(), new_key("ecdsa-p256")
    sub = bundle_submission(key)
    sub["public_key"] = bundle_submission(other)["public_key"]
    with pytest.raises(VerificationError):
        parse_entry(sub)
    env = dsse_submission(key)
    env["public_key"] = sub["public_key"]
    with pytest.raises(VerificationError):
        parse_entry(env)
    for bad in [
        {},
        {"bundle": "x", "public_key": sub["public_key"]},
        {"envelope": {"payload": "!!", "payloadType": "x", "signatures": []}},
        {"bundle": bundle_submission(key)["bundle"], "public_key": "-----BEGIN PRIVATE KEY-----"},
        {"bundle": bundle_submission(key)["bundle"], "public_key": 5},
    ]:
        with pytest.raises(InputError):
            parse_entry(bad)


def test_add_dedup_get_search(log: TransparencyLog) -> None:
    k1, k2 = new_key(), new_key("ecdsa-p256")
    a = log.add(parse_entry(bundle_submission(k1, "model-a", "1")))
    b = log.add(parse_entry(dsse_submission(k2, "prov-b", "2")))
    again = log.add(parse_entry(bundle_submission(k1, "model-a", "1")))
    assert (a.index, b.index) == (0, 1) and again.index == 0 and again.duplicate
    entry = log.get(1).entry()
    assert entry.kind == "dsse" and entry.summary()["subjects"][0]["name"] == "prov-b"
    assert log.search("name", "model-a") == [0]
    assert log.search("key", public_key_id(k2.public_key())) == [1]
    digest = entry.summary()["subjects"][0]["digest"]["sha256"]
    assert log.search("digest", f"sha256:{digest}") == [1]
    with pytest.raises(InputError):
        log.search("colour", "x")
    with pytest.raises(InputError):
        log.get(99)


def test_search_takes_what_the_other_commands_print(log: TransparencyLog) -> None:
    """A bare hex digest (no ``sha256:``), the 16-digit key id ``verify`` prints, a digest
    prefix, and the release name a build's provenance records all find their entries."""
    k1, k2 = new_key("ecdsa-p256"), new_key("ecdsa-p256")
    log.add(parse_entry(bundle_submission(k1, "model-a", "1")))
    predicate = {"buildDefinition": {"externalParameters": {"name": "digits-mlp"}}}
    statement = make_statement(
        [subject("model.safetensors", bytes.fromhex("ab" * 32))], SLSA, predicate
    )
    envelope = dsse_sign(statement_bytes(statement), IN_TOTO_PAYLOAD_TYPE, k2)
    log.add(parse_entry(make_submission(envelope.to_dict(), k2.public_key())))
    digest = log.get(0).entry().summary()["subjects"][0]["digest"]["sha256"]
    assert log.search("digest", digest) == [0]
    assert log.search("digest", digest.upper()) == [0]
    assert log.search("digest", digest[:16]) == [0]
    assert log.search("digest", f"sha256:{digest[:16]}") == [0]
    assert log.search("digest", "ab" * 32) == [1]
    k2_id = public_key_id(k2.public_key())
    assert log.search("key", k2_id[:16]) == [1]
    assert log.search("key", k2_id) == [1]
    assert log.search("key", public_key_id(k1.public_key())[:16]) == [0]
    assert log.search("name", "digits-mlp") == [1]
    assert log.search("name", "model.safetensors") == [1]
    assert log.search("key", "0" * 16) == []
    for kind, bad in (("key", "zz"), ("key", "abc"), ("digest", "sha256:xyz"), ("digest", "%")):
        with pytest.raises(InputError, match="hex digits"):
            log.search(kind, bad)


def test_checkpoints_are_scheduled_not_per_entry(log: TransparencyLog) -> None:
    key = new_key()
    log.add(parse_entry(bundle_submission(key, seed="a")))
    first = log.maybe_checkpoint(3600)
    assert first is not None and first.checkpoint.size == 1
    log.add(parse_entry(bundle_submission(key, seed="b")))
    assert log.maybe_checkpoint(3600).checkpoint.size == 1  # not yet due
    assert log.issue_checkpoint().checkpoint.size == 2
    assert [s for s, _ in log.store.checkpoints()] == [1, 2]


def test_proof_bundle_offline_with_witnesses(log: TransparencyLog, tmp_path: Path) -> None:
    witnesses = [
        Witness(
            tmp_path / f"w{i}.db",
            Signer.generate(f"w{i}.example", ALG_COSIGNATURE_V1),
            [log.signer.verifier],
        )
        for i in range(2)
    ]
    log.cosigners = [WitnessCosigner.local(w) for w in witnesses]
    key = new_key()
    for i in range(5):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    log.issue_checkpoint()
    for i in range(5, 9):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    bundle = log.proof_bundle(7)  # forces a new checkpoint, witnesses see 5 -> 9 consistency
    assert [w.latest(log.origin)[0] for w in witnesses] == [9, 9]
    path = tmp_path / "proof.json"
    bundle.write(path)
    loaded = ProofBundle.read(path)
    policy = WitnessPolicy.from_vkeys([w.signer.vkey for w in witnesses], k=2)
    seen = SeenCheckpoints(tmp_path / "seen.db")
    result, status = verify_proof_bundle(loaded, log.vkey, policy, seen)
    assert result.index == 7 and result.tree_size == 9 and status == "first"
    assert sorted(result.witnesses) == ["w0.example", "w1.example"]
    assert result.entry is not None and result.entry.summary()["subjects"][0]["name"] == "model-a"
    # An untrusted log key, a tampered leaf/body/proof: all fail.
    with pytest.raises(VerificationError):
        loaded.verify(Signer.generate(log.origin).vkey)
    doc = loaded.to_dict()
    doc["entry"]["index"] = 6
    with pytest.raises(VerificationError):
        ProofBundle.from_dict(doc).verify(log.vkey)
    doc = loaded.to_dict()
    doc["entry"]["body"] = base64.b64encode(log.get(3).body).decode()  # a real, other entry
    with pytest.raises(VerificationError, match="does not match its leaf"):
        ProofBundle.from_dict(doc).verify(log.vkey)
    body = json.loads(loaded.body)
    payload = json.loads(base64.b64decode(body["signed"]["dsseEnvelope"]["payload"]))
    payload["subject"][0]["name"] = "model-evil"
    body["signed"]["dsseEnvelope"]["payload"] = base64.b64encode(
        json.dumps(payload).encode()
    ).decode()
    doc["entry"]["body"] = base64.b64encode(canonical_json(body)).decode()
    with pytest.raises(VerificationError, match="does not verify"):
        ProofBundle.from_dict(doc).verify(log.vkey)
    with pytest.raises(VerificationError, match="needs 3"):
        loaded.verify(
            log.vkey,
            WitnessPolicy.from_vkeys(
                [w.signer.vkey for w in witnesses]
                + [Signer.generate("w9", ALG_COSIGNATURE_V1).vkey]
            ),
        )
    for w in witnesses:
        w.close()


def test_seen_checkpoints_detect_fork(log: TransparencyLog, tmp_path: Path) -> None:
    seen = SeenCheckpoints(tmp_path / "seen.db")
    key = new_key()
    for i in range(3):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    c3 = log.issue_checkpoint()
    assert seen.update(c3, None) == "first"
    for i in range(3, 6):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    c6 = log.issue_checkpoint()
    assert seen.update(c6, None) == "unverified"
    assert seen.update(c6, log.consistency_proof(3, 6)) == "newer"
    assert seen.update(c3, log.consistency_proof(3, 6)) == "older"
    from glassbox.tlog.checkpoint import Checkpoint, sign_checkpoint

    fork = sign_checkpoint(Checkpoint(log.origin, 6, merkle.leaf_hash(b"x")), log.signer)
    with pytest.raises(VerificationError, match="fork"):
        seen.update(fork, None)


def test_store_is_bound_to_its_key(store_url: str) -> None:
    lg = TransparencyLog(open_store(store_url), Signer.generate("a.example/log"))
    lg.close()
    with pytest.raises(InputError, match="created with key"):
        TransparencyLog(open_store(store_url), Signer.generate("a.example/log"))


def test_remember_checkpoint_fetches_consistency(log: TransparencyLog, tmp_path: Path) -> None:
    from glassbox.tlog import remember_checkpoint
    from glassbox.tlog.checkpoint import Checkpoint, sign_checkpoint

    seen = SeenCheckpoints(tmp_path / "seen.db")
    key = new_key()
    for i in range(4):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    assert remember_checkpoint(seen, log, log.issue_checkpoint()) == "first"
    for i in range(4, 7):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    assert remember_checkpoint(seen, log, log.issue_checkpoint()) == "newer"
    # A log that later shows a tree of size 9 not extending the one seen at size 7:
    rewritten = sign_checkpoint(Checkpoint(log.origin, 9, merkle.leaf_hash(b"x")), log.signer)

    class Liar:
        def consistency_proof(self, old: int, size: int) -> list[bytes]:
            return [merkle.leaf_hash(b"y")] * 3

    with pytest.raises(VerificationError, match="not consistent"):
        remember_checkpoint(seen, Liar(), rewritten)
    assert seen.get(log.origin).size == 7


def test_add_signed_and_index_of(log: TransparencyLog) -> None:
    from glassbox.sign import make_statement, sign_statement

    key = new_key()
    st = make_statement([{"name": "m", "digest": {"sha256": "ab" * 32}}], "https://x/v1", {})
    bundle = sign_statement(st, key)
    log.add(parse_entry(bundle_submission(key, "other", "z")))
    assert log.add_signed(bundle, key.public_key()).index == 1
    from glassbox.tlog import make_submission

    entry = parse_entry(make_submission(bundle, key.public_key()))
    assert log.index_of(entry) == 1
    assert log.index_of(parse_entry(bundle_submission(key, "never", "logged"))) is None


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_proof_bundle_carries_consistency(log: TransparencyLog, tmp_path: Path) -> None:
    """A bundle made ``since`` an earlier checkpoint proves offline that the log only appended
    since: against the log's own signed checkpoint there, and against a verifier's memory of
    it (``newer`` instead of ``unverified``). A forged proof fails both ways."""
    key = new_key()
    for i in range(5):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    old = log.issue_checkpoint()
    seen = SeenCheckpoints(tmp_path / "seen.db")
    assert seen.update(old, None) == "first"
    for i in range(5, 11):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    plain = ProofBundle.read(_write(log.proof_bundle(8), tmp_path / "plain.json"))
    assert plain.consistency is None
    assert verify_proof_bundle(plain, log.vkey, None, seen)[1] == "unverified"

    bundle = ProofBundle.read(_write(log.proof_bundle(8, since=5), tmp_path / "since.json"))
    assert bundle.consistency is not None and bundle.consistency.old_checkpoint is not None
    result = bundle.verify(log.vkey)
    assert result.consistent_from == 5 and result.to_dict()["consistent_from"] == 5
    result, status = verify_proof_bundle(bundle, log.vkey, None, seen)
    assert status == "newer" and seen.get(log.origin).size == 11  # type: ignore[union-attr]

    # Forged: one flipped hash in the consistency proof. The bundle alone fails (its old
    # checkpoint is signed), and so does relating it to a remembered checkpoint.
    doc = bundle.to_dict()
    hashes = doc["consistency"]["hashes"]
    hashes[0] = base64.b64encode(_flip(base64.b64decode(hashes[0]))).decode()
    forged = ProofBundle.from_dict(doc)
    with pytest.raises(VerificationError, match="not consistent"):
        forged.verify(log.vkey)
    doc["consistency"]["old_checkpoint"] = None  # the forger drops the signed old checkpoint
    forged = ProofBundle.from_dict(doc)
    assert forged.verify(log.vkey).consistent_from is None
    memory = SeenCheckpoints(tmp_path / "seen2.db")
    memory.update(old, None)
    with pytest.raises(VerificationError, match="not consistent"):
        verify_proof_bundle(forged, log.vkey, None, memory)
    assert memory.get(log.origin).size == 5  # type: ignore[union-attr]  # nothing recorded
    # An old checkpoint from another size than the proof claims, or a proof from outside
    # the tree, is refused; so is asking for one.
    doc = bundle.to_dict()
    doc["consistency"]["old_size"] = 4
    with pytest.raises(VerificationError):
        ProofBundle.from_dict(doc).verify(log.vkey)
    doc["consistency"]["old_size"] = 12
    doc["consistency"]["old_checkpoint"] = None
    with pytest.raises(VerificationError, match="not inside"):
        ProofBundle.from_dict(doc).verify(log.vkey)
    for bad in ({"hashes": "x"}, {"old_size": -1, "hashes": []}, {"old_size": 1, "hashes": [1]}):
        doc["consistency"] = bad
        with pytest.raises(InputError):
            ProofBundle.from_dict(doc)
    with pytest.raises(InputError, match="consistency"):
        log.proof_bundle(8, since=50)


def test_consistency_without_an_old_checkpoint(log: TransparencyLog, tmp_path: Path) -> None:
    """From a size the log never signed, the proof is only usable against a remembered root:
    a verifier that saw that tree head gets ``newer``, one that saw a forked head a failure."""
    key = new_key()
    for i in range(3):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    seen_at_3 = log.issue_checkpoint()
    for i in range(3, 7):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    log.issue_checkpoint()
    for i in range(7, 9):
        log.add(parse_entry(bundle_submission(key, seed=str(i))))
    bundle = log.proof_bundle(1, since=7)  # the log signed a checkpoint at 7: it is carried
    assert bundle.consistency is not None and bundle.consistency.old_checkpoint is not None
    bundle = log.proof_bundle(1, since=4)  # never signed at size 4
    assert bundle.consistency is not None and bundle.consistency.old_checkpoint is None
    assert bundle.verify(log.vkey).consistent_from is None
    seen = SeenCheckpoints(tmp_path / "seen.db")
    seen.update(seen_at_3, None)
    assert verify_proof_bundle(bundle, log.vkey, None, seen)[1] == "unverified"  # 3 != 4
    assert verify_proof_bundle(log.proof_bundle(1, since=3), log.vkey, None, seen)[1] == "newer"


def _write(bundle: ProofBundle, path: Path) -> Path:
    bundle.write(path)
    return path
