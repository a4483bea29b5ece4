"""Naming the key that made an OMS signature by its key id, from the signature alone (ECDSA
public-key recovery), so the wrong-key error can say "signed by A, not by B" in one id."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.sign import (
    bundle_signer_id,
    generate_private_key,
    key_hint,
    make_statement,
    public_key_id,
    sign_bytes,
    sign_statement,
    subject,
)
from glassbox.sign.recover import _CURVES, _Curve, signer_key_id


@pytest.mark.parametrize("curve", _CURVES, ids=lambda c: c.make.name)
def test_curve_constants_match_cryptography(curve: _Curve) -> None:
    """p, b and n as written here describe the curve cryptography implements: its generator
    lies on y^2 = x^3 - 3x + b (mod p), and (n-1)G = -G."""
    g = ec.derive_private_key(1, curve.make()).public_key().public_numbers()
    assert (g.y * g.y - (g.x**3 - 3 * g.x + curve.b)) % curve.p == 0
    last = ec.derive_private_key(curve.n - 1, curve.make()).public_key().public_numbers()
    assert (last.x, last.y) == (g.x, curve.p - g.y)


@pytest.mark.parametrize("curve", [ec.SECP256R1, ec.SECP384R1, ec.SECP521R1])
def test_signer_is_recovered_on_every_p_curve(curve: type[ec.EllipticCurve]) -> None:
    for i in range(5):
        key = ec.generate_private_key(curve())
        message = f"message {i}".encode()
        signature = sign_bytes(key, message)
        assert signer_key_id(signature, message, key_hint(key)) == public_key_id(key)
        # Another key's hint, another message or a mangled signature name nobody.
        other = ec.generate_private_key(curve())
        assert signer_key_id(signature, message, key_hint(other)) is None
        assert signer_key_id(signature, message + b"!", key_hint(key)) is None
        assert signer_key_id(signature[:-3], message, key_hint(key)) is None


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=200))
def test_recovery_finds_the_p256_signer_of_any_message(message: bytes) -> None:
    key = generate_private_key()
    assert signer_key_id(sign_bytes(key, message), message, key_hint(key)) == public_key_id(key)


def test_bundle_signer_id() -> None:
    key = generate_private_key()
    statement = make_statement([subject("m", bytes(32))], "https://example.com/p", {})
    bundle = sign_statement(statement, key)
    assert bundle_signer_id(bundle) == public_key_id(key)
    # Ed25519 cannot be recovered: the answer is "unknown", never a wrong key.
    assert bundle_signer_id(sign_statement(statement, generate_private_key("ed25519"))) is None
    assert bundle_signer_id({"not": "a bundle"}) is None
    bundle["verificationMaterial"]["publicKey"]["hint"] = "00" * 32
    assert bundle_signer_id(bundle) is None
