"""Which key made an ECDSA signature: public-key recovery (SEC 1 v2, section 4.1.6).

An OMS bundle names its signer only by ``publicKey.hint`` (SHA-256 of the PEM public key, the
way ``model_signing`` computes it), which is not the key id Glassbox shows everywhere else
(SHA-256 of the DER public key, what the log indexes). To tell a user "signed by key A, you gave
key B" with both in the one id they know, the signer's public key is recovered from the
signature itself: an ECDSA signature and its message determine at most a few candidate keys,
and the one whose hint matches the bundle's is the signer. Nothing is trusted from this: it
only names a key in an error message; verification still needs the key the user gives.

The scalar multiplications are done by ``cryptography`` (``k*G`` by deriving a key, ``k*R`` by
ECDH, which yields the x coordinate); only one point addition is done here, in affine
coordinates with Python integers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import NamedTuple

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from glassbox.sign.keys import key_hint, public_key_id


class _Curve(NamedTuple):
    make: type[ec.EllipticCurve]
    p: int  # field prime; a = -3 for every NIST P-curve
    b: int
    n: int  # group order
    hash: str  # the digest ECDSA uses with it (as keys._EC_HASHES)


def _hex(text: str) -> int:
    return int(text, 16)


# FIPS 186-4, D.1.2. tests/sign/test_recover.py checks each against cryptography's generator.
_CURVES = (
    _Curve(
        ec.SECP256R1,
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        "sha256",
    ),
    _Curve(
        ec.SECP384R1,
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        _hex(
            "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A"
            "C656398D8A2ED19D2A85C8EDD3EC2AEF"
        ),
        _hex(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973"
        ),
        "sha384",
    ),
    _Curve(
        ec.SECP521R1,
        2**521 - 1,
        _hex(
            "0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF1"
            "09E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00"
        ),
        _hex(
            "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409"
        ),
        "sha512",
    ),
)


def signer_key_id(signature: bytes, message: bytes, hint: str) -> str | None:
    """The key id (``public_key_id``) of the ECDSA key whose ``key_hint`` is ``hint`` and that
    made ``signature`` (DER) over ``message``; ``None`` if no such key can be found (an
    Ed25519 signer, a malformed signature, or a hint that names some other key)."""
    for key in _candidates(signature, message):
        if key_hint(key) == hint:
            return public_key_id(key)
    return None


def _candidates(signature: bytes, message: bytes) -> Iterator[ec.EllipticCurvePublicKey]:
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return
    for curve in _CURVES:
        if not (0 < r < curve.n and 0 < s < curve.n):
            continue
        digest = hashlib.new(curve.hash, message).digest()
        e = int.from_bytes(digest, "big") >> max(0, len(digest) * 8 - curve.n.bit_length())
        yield from _recover(curve, r, s, e)


def _recover(curve: _Curve, r: int, s: int, e: int) -> Iterator[ec.EllipticCurvePublicKey]:
    """Q = r^-1 (s R - e G) for each point R whose x coordinate is r (or r + n)."""
    p, n = curve.p, curve.n
    r_inv = pow(r, -1, n)
    u1, u2 = s * r_inv % n, -e * r_inv % n
    minus_eg = _multiply_generator(curve, u2)
    for x in (r, r + n):
        if x >= p:
            continue
        y = _sqrt(curve, (x * x * x - 3 * x + curve.b) % p)
        if y is None:
            continue
        try:
            point_r = ec.EllipticCurvePublicNumbers(x, y, curve.make()).public_key()
            shared = ec.derive_private_key(u1, curve.make()).exchange(ec.ECDH(), point_r)
        except (ValueError, UnsupportedAlgorithm):
            continue
        x1 = int.from_bytes(shared, "big")  # x of u1*R; its y is one of two roots
        y1 = _sqrt(curve, (x1 * x1 * x1 - 3 * x1 + curve.b) % p)
        if y1 is None:
            continue
        for yy in (y1, p - y1):
            q = _add(p, (x1, yy), minus_eg)
            if q is None:
                continue
            try:
                yield ec.EllipticCurvePublicNumbers(q[0], q[1], curve.make()).public_key()
            except ValueError:
                continue


def _multiply_generator(curve: _Curve, k: int) -> tuple[int, int] | None:
    if k == 0:
        return None  # the point at infinity
    numbers = ec.derive_private_key(k, curve.make()).public_key().public_numbers()
    return numbers.x, numbers.y


def _sqrt(curve: _Curve, a: int) -> int | None:
    """A square root mod p (every NIST P-curve prime is 3 mod 4), or None if there is none."""
    y = pow(a, (curve.p + 1) // 4, curve.p)
    return y if y * y % curve.p == a else None


def _add(p: int, a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    """Affine point addition (a = -3); None is the point at infinity."""
    if a is None:
        return b
    if b is None:
        return a
    (x1, y1), (x2, y2) = a, b
    if x1 == x2:
        if (y1 + y2) % p == 0:
            return None
        slope = (3 * x1 * x1 - 3) * pow(2 * y1, -1, p) % p
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, p) % p
    x3 = (slope * slope - x1 - x2) % p
    return x3, (slope * (x1 - x3) - y1) % p
