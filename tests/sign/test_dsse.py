"""DSSE PAE and envelopes, in-toto statements."""

from __future__ import annotations

import base64

import pytest

from glassbox.errors import InputError, VerificationError
from glassbox.sign import (
    IN_TOTO_PAYLOAD_TYPE,
    STATEMENT_TYPE,
    Envelope,
    Signature,
    dsse_sign,
    dsse_verify,
    generate_private_key,
    make_statement,
    pae,
    parse_statement,
    subject,
)


def test_pae_matches_the_dsse_spec_example() -> None:
    # secure-systems-lab/dsse protocol.md, "Test vectors".
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    # Lengths are byte lengths, not character counts.
    assert pae("t\u00e9", b"\xff") == b"DSSEv1 3 t\xc3\xa9 1 \xff"


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519"])
def test_sign_verify_round_trip(kind: str) -> None:
    key = generate_private_key(kind)
    envelope = dsse_sign(b'{"a": 1}', IN_TOTO_PAYLOAD_TYPE, key)
    again = Envelope.from_dict(envelope.to_dict())
    assert again == envelope
    assert dsse_verify(again, key.public_key()) == b'{"a": 1}'


def test_verify_rejects_other_key_changed_payload_and_changed_type() -> None:
    key = generate_private_key()
    envelope = dsse_sign(b"payload", "text/plain", key)
    with pytest.raises(VerificationError, match="does not verify"):
        dsse_verify(envelope, generate_private_key().public_key())
    with pytest.raises(VerificationError):
        dsse_verify(Envelope(b"payloaD", "text/plain", envelope.signatures), key.public_key())
    # PAE binds the type: the same bytes under another type do not verify.
    with pytest.raises(VerificationError):
        dsse_verify(Envelope(b"payload", "text/html", envelope.signatures), key.public_key())


def test_any_matching_signature_is_enough() -> None:
    key, other = generate_private_key(), generate_private_key("ed25519")
    mine = dsse_sign(b"p", "t", key).signatures[0]
    theirs = dsse_sign(b"p", "t", other).signatures[0]
    envelope = Envelope(b"p", "t", (theirs, Signature(b"junk", "k"), mine))
    assert dsse_verify(envelope, key.public_key()) == b"p"


def test_envelope_parsing_errors() -> None:
    good = dsse_sign(b"p", "t", generate_private_key()).to_dict()
    cases = [
        ([], "expected a JSON object"),
        ({**good, "payloadType": ""}, "missing payloadType"),
        ({k: v for k, v in good.items() if k != "payload"}, "missing payload"),
        ({**good, "payload": "not base64!"}, "not valid base64"),
        ({**good, "payload": 5}, "expected a base64 string"),
        ({**good, "payload": "abcde"}, "not valid base64"),
        ({**good, "signatures": []}, "no signatures"),
        ({**good, "signatures": [{"keyid": ""}]}, "has no 'sig'"),
        ({**good, "signatures": [{"sig": ""}]}, "is empty"),
        ({**good, "signatures": [{"sig": "AA==", "keyid": 3}]}, "keyid is not a string"),
    ]
    for data, message in cases:
        with pytest.raises(InputError, match=message):
            Envelope.from_dict(data)


def test_base64_variants_accepted() -> None:
    # Protobuf JSON readers accept URL-safe base64 and missing padding; so do we.
    raw = bytes(range(250, 256))
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
    ):
        envelope = Envelope.from_dict(
            {"payload": text, "payloadType": "t", "signatures": [{"sig": text}]}
        )
        assert envelope.payload == raw


def test_statement_round_trip() -> None:
    statement = make_statement(
        [subject("model", b"\x01" * 32)], "https://example.com/p/v1", {"k": [1, 2]}
    )
    assert list(statement) == ["_type", "subject", "predicateType", "predicate"]
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["subject"][0]["digest"] == {"sha256": "01" * 32}
    import json

    assert parse_statement(json.dumps(statement).encode()) == statement


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"_type": "https://in-toto.io/Statement/v0.1"}', "expected an in-toto"),
        (b'{"_type": "https://in-toto.io/Statement/v1", "subject": []}', "no subject"),
        (
            b'{"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "m"}]}',
            "missing digest",
        ),
        (
            b'{"_type": "https://in-toto.io/Statement/v1", '
            b'"subject": [{"name": "m", "digest": {"sha256": "XYZ"}}]}',
            "not lowercase hex",
        ),
        (
            b'{"_type": "https://in-toto.io/Statement/v1", '
            b'"subject": [{"name": "m", "digest": {"sha256": "ab"}}]}',
            "no predicateType",
        ),
        (
            b'{"_type": "https://in-toto.io/Statement/v1", '
            b'"subject": [{"name": "m", "digest": {"sha256": "ab"}}], '
            b'"predicateType": "p", "predicate": []}',
            "predicate is not an object",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not JSON"),
    ],
)
def test_statement_parse_errors(payload: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_statement(payload)


def test_make_statement_validates() -> None:
    with pytest.raises(InputError, match="at least one subject"):
        make_statement([], "p", {})
    with pytest.raises(InputError, match="missing name"):
        make_statement([{"digest": {"sha256": "ab"}}], "p", {})
