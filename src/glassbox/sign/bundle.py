"""Sigstore bundle v0.3 JSON, key-based, exactly as OMS ``model_signing`` 1.1 writes it.

Layout (``model_signing`` ``sign_ec_key.Signer``)::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": <sha256 hex of the PEM SPKI>},
                              "tlogEntries": []},
     "dsseEnvelope": {"payload": b64, "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": b64(DER ECDSA over PAE), "keyid": ""}]}}

Verification is offline: the caller supplies the public key; the hint only catches "wrong key"
early with a clear message (it is unauthenticated, so it never *grants* trust). Transparency-log
entries and timestamps in a bundle are not checked here (``model_signing`` ignores them too for
key-based bundles); Glassbox's own log is checked by ``glassbox.tlog``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from glassbox.errors import InputError, VerificationError
from glassbox.files import read_small_file
from glassbox.sign.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, dsse_sign, dsse_verify
from glassbox.sign.keys import PrivateKey, PublicKey, key_hint
from glassbox.sign.statement import parse_statement, statement_bytes

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
# Newer Sigstore clients spell v0.3 this way; it is the same format.
_MEDIA_TYPES = frozenset(
    {BUNDLE_MEDIA_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3"}
)

# A signature over a model with a million files is ~200 MB of JSON; refuse beyond that.
MAX_BUNDLE_BYTES = 512 << 20
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def sign_statement(statement: dict[str, Any], key: PrivateKey) -> dict[str, Any]:
    """A bundle whose DSSE envelope signs ``statement`` with ``key``."""
    envelope = dsse_sign(statement_bytes(statement), IN_TOTO_PAYLOAD_TYPE, key)
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(key)}, "tlogEntries": []},
        "dsseEnvelope": envelope.to_dict(),
    }


def _material(bundle: object, where: str) -> dict[str, Any]:
    if not isinstance(bundle, dict):
        raise InputError(f"{where}: not a Sigstore bundle (expected a JSON object)")
    media_type = bundle.get("mediaType")
    if not isinstance(media_type, str) or media_type not in _MEDIA_TYPES:
        raise InputError(
            f"{where}: not a Sigstore bundle v0.3 (mediaType {media_type!r}, "
            f"expected {BUNDLE_MEDIA_TYPE!r})"
        )
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        raise InputError(f"{where}: bundle has no verificationMaterial")
    if "x509CertificateChain" in material and "publicKey" not in material:
        # OMS's certificate method: checked against trust anchors by ``certificates``.
        return material
    if "publicKey" not in material:
        if "certificate" in material:
            raise InputError(
                f"{where}: bundle is certificate-based (Sigstore keyless); Glassbox verifies "
                "key-based OMS signatures and X.509 chains (x509CertificateChain)"
            )
        raise InputError(f"{where}: bundle has no verificationMaterial.publicKey")
    public_key = material["publicKey"]
    if not isinstance(public_key, dict):
        raise InputError(f"{where}: verificationMaterial.publicKey is not an object")
    hint = public_key.get("hint")
    if hint is not None and not isinstance(hint, str):
        raise InputError(f"{where}: publicKey.hint is not a string")
    return material


def bundle_envelope(bundle: dict[str, Any], *, where: str = "bundle") -> Envelope:
    """The DSSE envelope inside ``bundle``, after checking the bundle's structure."""
    _material(bundle, where)
    if "dsseEnvelope" not in bundle:
        if "messageSignature" in bundle:
            raise InputError(f"{where}: bundle signs a message digest, not a DSSE envelope")
        raise InputError(f"{where}: bundle has no dsseEnvelope")
    return Envelope.from_dict(bundle["dsseEnvelope"], where=f"{where} dsseEnvelope")


def verify_bundle(
    bundle: dict[str, Any], pub: PublicKey, *, where: str = "bundle"
) -> dict[str, Any]:
    """The in-toto statement ``bundle`` carries, if its one signature verifies with ``pub``.

    Structure problems are ``InputError`` (exit 2); a signature that does not verify, or a
    hint naming another key, is ``VerificationError`` (exit 1).
    """
    material = _material(bundle, where)
    if "publicKey" not in material:
        raise VerificationError(
            f"{where}: signed with an X.509 certificate chain, not a bare key: verify it "
            "against trusted certificates (a trust policy's publisher certificates)"
        )
    envelope = bundle_envelope(bundle, where=where)
    if len(envelope.signatures) != 1:
        raise InputError(
            f"{where}: a Sigstore bundle's envelope has exactly one signature, "
            f"found {len(envelope.signatures)}"
        )
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise InputError(
            f"{where}: payloadType is {envelope.payload_type!r}, expected {IN_TOTO_PAYLOAD_TYPE!r}"
        )
    hint = material["publicKey"].get("hint")
    if hint and hint != key_hint(pub):
        raise VerificationError(
            f"{where}: signed by a different key (bundle key hint {hint[:16]}…, "
            f"given key {key_hint(pub)[:16]}…)"
        )
    try:
        payload = dsse_verify(envelope, pub)
    except VerificationError as exc:
        raise VerificationError(f"{where}: {exc}") from None
    return parse_statement(payload, where=f"{where} payload")


def parse_bundle(data: bytes, *, where: str = "bundle") -> dict[str, Any]:
    """Decode bundle JSON and check its structure (no signature check)."""
    try:
        bundle = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{where}: not a Sigstore bundle (not UTF-8 text)") from None
    except RecursionError:
        raise InputError(f"{where}: bundle JSON is nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"{where}: not a Sigstore bundle (invalid JSON: {exc})") from None
    if not isinstance(bundle, dict):
        raise InputError(f"{where}: not a Sigstore bundle (expected a JSON object)")
    bundle_envelope(bundle, where=where)
    return bundle


def read_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and structurally check a bundle file; ``InputError`` naming the file otherwise."""
    path = Path(path)
    data = read_small_file(path, MAX_BUNDLE_BYTES, "signature")
    return parse_bundle(data, where=str(path))


def write_bundle(bundle: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``bundle`` as compact JSON, atomically (a crash never leaves half a signature)."""
    path = Path(path)
    text = json.dumps(bundle, separators=(",", ":"), ensure_ascii=False)
    # mkstemp's guarantees (exclusive create, owner-only mode, unguessable name) without
    # importing tempfile, which would load shutil, random, bz2 and lzma into every program
    # that imports glassbox.sign.
    tmp = path.parent / f".{path.name}.{os.urandom(8).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)
    except OSError as exc:
        raise InputError(f"{path}: cannot write signature: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
        tmp.replace(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write signature: {exc.strerror or exc}") from None
        raise
