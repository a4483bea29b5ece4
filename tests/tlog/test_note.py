"""Signed notes and checkpoints against published vectors, plus a parser property test.

Vectors (see tests/vectors/tlog/SOURCES.md):
* signed_notes.json: C2SP signed-note.md example and golang.org/x/mod sumdb/note tests;
* tessera_posix_testlog.json: transparency-dev/tessera testdata/build_log.sh log (checkpoints
  0..15 signed with its published test key, re-signed here byte for byte);
* sunlight_skylight_testdata.json: FiloSottile/sunlight cmd/skylight/testdata (tlog-cosignature
  type 0x04 with timestamps).
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from glassbox.digest import merkle
from glassbox.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from glassbox.tlog.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    NoteVerificationError,
    Signer,
    open_note,
    parse_note,
    parse_vkey,
)
from tests.conftest import load_vector

NOTES = load_vector("tlog/signed_notes.json")
TESSERA = load_vector("tlog/tessera_posix_testlog.json")
SKYLIGHT = load_vector("tlog/sunlight_skylight_testdata.json")


@pytest.mark.parametrize("case", NOTES["verify"], ids=lambda c: c["desc"])
def test_signed_note_verify_vectors(case: dict) -> None:
    verifiers = [parse_vkey(v) for v in case["vkeys"]]
    if not case["expect_ok"]:
        with pytest.raises((NoteError, NoteVerificationError)):
            open_note(case["note"], verifiers)
        return
    note, good = open_note(case["note"], verifiers)
    assert sorted(k.split("+")[0] for k in good) == sorted(case["expect_verified"])
    assert note.serialize() == case["note"]


@pytest.mark.parametrize("case", NOTES["vkey_parse"], ids=lambda c: c["vkey"][:30])
def test_vkey_vectors(case: dict) -> None:
    if not case["expect_ok"]:
        with pytest.raises(NoteError):
            parse_vkey(case["vkey"])
        return
    v = parse_vkey(case["vkey"])
    assert (v.name, f"{v.key_id:08x}") == (case["name"], case["key_id_hex"])
    assert v.vkey == case["vkey"]


def test_sign_vector_is_byte_identical() -> None:
    case = NOTES["sign"][0]
    signer = Signer.from_skey(case["skey"])
    assert signer.skey == case["skey"]
    note = parse_note(case["expect_note"])
    assert Signer.from_skey(case["skey"]).sign(case["text"]).line() == note.signatures[0].line()


def test_sumdb_tree_note_body() -> None:
    for case in NOTES["checkpoint_bodies"]:
        text = case["body"]
        if "root_is_leaf_hash_of_ascii" not in case:
            continue
        lines = text.split("\n")
        assert int(lines[1]) == case["size"]
        import base64

        assert base64.b64decode(lines[2]) == merkle.leaf_hash(
            case["root_is_leaf_hash_of_ascii"].encode()
        )


def test_tessera_checkpoints_resign_byte_for_byte() -> None:
    signer = Signer.from_skey(TESSERA["log_skey"])
    assert signer.vkey == TESSERA["log_vkey"]
    verifier = parse_vkey(TESSERA["log_vkey"])
    leaves = [merkle.leaf_hash(e.encode()) for e in TESSERA["entries_ascii"]]
    for size_s, note in TESSERA["checkpoints_by_size"].items():
        size = int(size_s)
        signed = open_checkpoint(note, verifier)
        assert signed.checkpoint.size == size
        assert signed.checkpoint.root == merkle.root_of(leaves[:size])
        assert sign_checkpoint(signed.checkpoint, signer).serialize() == note
    latest = open_checkpoint(TESSERA["latest_checkpoint"], verifier)
    assert latest.checkpoint.root == merkle.root_of(leaves)


def test_tessera_checkpoint_with_wrong_key_is_rejected() -> None:
    other = Signer.generate(TESSERA["origin"])
    with pytest.raises(NoteVerificationError):
        open_checkpoint(TESSERA["latest_checkpoint"], other.verifier)


@pytest.mark.parametrize("who", ["witness", "witness2", "mirror"])
def test_sunlight_cosignature_vectors(who: str) -> None:
    case = SKYLIGHT[who]
    verifier = parse_vkey(case["vkeys"][0])
    assert verifier.alg == ALG_COSIGNATURE_V1
    note, good = open_note(case["cosigned_checkpoint"], [verifier])
    assert list(good.values()) == [SKYLIGHT["cosignature_timestamp"]]
    # Re-derive the witness key as gen.go does and re-sign byte for byte.
    seed_text = case["seed_derivation"].split("SHA-256(")[1].rstrip(")").strip("'")
    seed = hashlib.sha256(seed_text.encode()).digest()
    signer = Signer(verifier.name, Ed25519PrivateKey.from_private_bytes(seed), ALG_COSIGNATURE_V1)
    assert signer.vkey == case["vkeys"][0]
    mine = next(s for s in note.signatures if s.name == verifier.name)
    assert signer.sign(note.text, SKYLIGHT["cosignature_timestamp"]) == mine
    # A cosignature over a different checkpoint (size changed) does not verify.
    bad = case["cosigned_checkpoint"].replace("\n300\n", "\n301\n", 1)
    with pytest.raises(NoteVerificationError):
        open_note(bad, [verifier])


def test_checkpoint_parser_rejects_ambiguity() -> None:
    good = Checkpoint("o", 5, b"\x01" * 32).text()
    assert Checkpoint.parse(good) == Checkpoint("o", 5, b"\x01" * 32)
    for bad in [
        good.replace("\n5\n", "\n05\n"),
        good.replace("\n5\n", "\n-5\n"),
        good.replace("\n5\n", "\n99999999999999999999999\n"),
        "o\n5\nAAAA\n",
        "\n5\n" + good.split("\n")[2] + "\n",
        good[:-1],
        good + "\n",
    ]:
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)


def test_note_hostile_inputs() -> None:
    signer = Signer.generate("example.com/log")
    note = signer.sign("hello\n")
    good = "hello\n\n" + note.line()
    assert parse_note(good).text == "hello\n"
    for bad in [
        b"\xff\xfe\n\n",
        "hello\n\n",
        "hello\n\n\u2014 example.com/log !!!!\n",
        "hello\n\n\u2014 example.com/log AAAA\n",
        good + good,
        "x" * (2 << 20),
        "hello\n\n" + note.line() * 101,
    ]:
        with pytest.raises(NoteError):
            parse_note(bad)
    with pytest.raises(NoteError):
        Signer.from_skey("PRIVATE+KEY+x+00000000+AAAA")


@given(st.text(max_size=200))
def test_note_parser_never_crashes(text: str) -> None:
    try:
        note = parse_note(text)
    except NoteError:
        return
    assert note.serialize() == text


@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"),
        max_size=80,
    )
)
def test_sign_then_open_round_trips(line: str) -> None:
    signer = Signer.generate("example.org/prop")
    text = line + "\n"
    sig = signer.sign(text)
    note, good = open_note(text + "\n" + sig.line(), [signer.verifier])
    assert note.text == text and list(good) == [f"{signer.name}+{signer.key_id:08x}"]
    flipped = bytearray(sig.signature)
    flipped[0] ^= 1
    from glassbox.tlog.note import Note, NoteSignature

    forged = Note(text, (NoteSignature(sig.name, sig.key_id, bytes(flipped)),))
    with pytest.raises(NoteVerificationError):
        open_note(forged.serialize(), [signer.verifier])
