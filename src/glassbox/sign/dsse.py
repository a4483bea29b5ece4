"""DSSE envelopes (secure-systems-lab/dsse v1.0): sign a payload together with its type.

The signature covers the Pre-Authentication Encoding (PAE) of type and payload, so a verifier
can never be tricked into reading signed bytes as a different kind of document. The JSON form
is the one Sigstore bundles embed (``payload``, ``payloadType``, ``signatures[].sig/keyid``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from glassbox.errors import InputError, VerificationError
from glassbox.sign.keys import PrivateKey, PublicKey, sign_bytes, verify_bytes

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"

_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


def pae(payload_type: str, payload: bytes) -> bytes:
    """``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``, lengths as ASCII decimal bytes."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def b64decode(value: object, what: str) -> bytes:
    """Decode a protobuf-JSON ``bytes`` field: standard or URL-safe alphabet, padding optional.

    Anything else is an ``InputError`` naming the field, never a silent partial decode.
    """
    if not isinstance(value, str):
        raise InputError(f"{what}: expected a base64 string, got {type(value).__name__}")
    text = value.strip()
    if not _BASE64.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
        raise InputError(f"{what}: not valid base64")
    text = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what}: not valid base64 ({exc})") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Signature:
    """One DSSE signature. ``keyid`` is an unauthenticated hint; OMS leaves it empty."""

    sig: bytes
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload": b64encode(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"sig": b64encode(s.sig), "keyid": s.keyid} for s in self.signatures],
        }

    @classmethod
    def from_dict(cls, data: object, *, where: str = "DSSE envelope") -> Envelope:
        """Parse the JSON form; every structural problem is an ``InputError``."""
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a JSON object")
        payload_type = data.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise InputError(f"{where}: missing payloadType")
        if "payload" not in data:
            raise InputError(f"{where}: missing payload")
        payload = b64decode(data["payload"], f"{where} payload")
        raw_signatures = data.get("signatures")
        if not isinstance(raw_signatures, list) or not raw_signatures:
            raise InputError(f"{where}: has no signatures")
        signatures = []
        for index, entry in enumerate(raw_signatures):
            if not isinstance(entry, dict) or "sig" not in entry:
                raise InputError(f"{where}: signature {index} has no 'sig'")
            keyid = entry.get("keyid", "")
            if keyid is None:
                keyid = ""
            if not isinstance(keyid, str):
                raise InputError(f"{where}: signature {index} keyid is not a string")
            sig = b64decode(entry["sig"], f"{where} signature {index}")
            if not sig:
                raise InputError(f"{where}: signature {index} is empty")
            signatures.append(Signature(sig, keyid))
        return cls(payload, payload_type, tuple(signatures))


def dsse_sign(payload: bytes, payload_type: str, key: PrivateKey, *, keyid: str = "") -> Envelope:
    """An envelope with one signature by ``key`` over ``PAE(payload_type, payload)``."""
    signature = sign_bytes(key, pae(payload_type, payload))
    return Envelope(payload, payload_type, (Signature(signature, keyid),))


def dsse_verify(envelope: Envelope, pub: PublicKey) -> bytes:
    """The payload, if at least one signature verifies with ``pub``; else ``VerificationError``.

    keyids are not trusted to pick a signature: each one is simply tried against ``pub``.
    """
    message = pae(envelope.payload_type, envelope.payload)
    for signature in envelope.signatures:
        if verify_bytes(pub, signature.sig, message):
            return envelope.payload
    raise VerificationError(
        "DSSE signature does not verify with the given public key "
        "(wrong key, or the payload was changed after signing)"
    )
