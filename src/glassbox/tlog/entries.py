"""What the log admits: signed in-toto statements, and the compact leaf it commits to.

An entry is either an OMS model-signature bundle (Sigstore bundle v0.3 holding a DSSE envelope)
or a bare DSSE envelope of an in-toto Statement (SLSA provenance, scan results), submitted with
the PEM public key that signed it. The log verifies the signature before admitting anything, so
every leaf is evidence that the named key signed the named statement.

Leaf format, version 0 (97 bytes, always, however many files a model has)::

    0x00                              version
    SHA-256(statement payload bytes)  what was signed (the DSSE payload)
    SHA-256(signature bytes)          the one DSSE signature
    SHA-256(DER SubjectPublicKeyInfo) the signer (= glassbox.sign.public_key_id)

like Sigsum's leaf (checksum, signature, key hash), so leaves stay far below the 64 KiB tlog-tiles
entry limit. The full submission (the "body") is stored beside the tree under its SHA-256; anyone
holding the body recomputes the leaf from it, so a body can never be swapped under a leaf.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization

from glassbox.errors import InputError, VerificationError

LEAF_VERSION = 0
LEAF_SIZE = 1 + 32 * 3
KIND_BUNDLE = "oms-bundle"
KIND_DSSE = "dsse"
MAX_BODY_BYTES = 16 << 20


@dataclass(frozen=True)
class LeafFields:
    statement_digest: bytes
    signature_digest: bytes
    key_hash: bytes

    def encode(self) -> bytes:
        return bytes([LEAF_VERSION]) + self.statement_digest + self.signature_digest + self.key_hash

    @classmethod
    def decode(cls, leaf: bytes) -> LeafFields:
        if len(leaf) != LEAF_SIZE or leaf[0] != LEAF_VERSION:
            raise InputError(f"not a version-{LEAF_VERSION} Glassbox leaf ({len(leaf)} bytes)")
        return cls(leaf[1:33], leaf[33:65], leaf[65:97])


@dataclass(frozen=True)
class LogEntry:
    """A verified submission: its canonical body, the statement, and the leaf it maps to."""

    kind: str
    signed: dict[str, Any]
    public_key_pem: str
    statement: dict[str, Any]
    fields: LeafFields

    @property
    def leaf(self) -> bytes:
        return self.fields.encode()

    @property
    def key_id(self) -> str:
        return self.fields.key_hash.hex()

    @cached_property
    def body(self) -> bytes:
        """Canonical JSON of the submission: what is stored and what a proof bundle carries.
        Cached: the add path needs it and its digest, and encoding a bundle is not free."""
        doc = {"kind": self.kind, "signed": self.signed, "public_key": self.public_key_pem}
        return canonical_json(doc)

    @cached_property
    def body_digest(self) -> bytes:
        return hashlib.sha256(self.body).digest()

    def subjects(self) -> list[dict[str, Any]]:
        subjects = self.statement.get("subject", [])
        return [s for s in subjects if isinstance(s, dict)]

    def terms(self) -> tuple[tuple[str, str], ...]:
        """Search terms: every subject digest and name, the signer key, the predicate type."""
        out: set[tuple[str, str]] = {("key", self.key_id)}
        for subject in self.subjects():
            name = subject.get("name")
            if isinstance(name, str) and name:
                out.add(("name", name))
            digest = subject.get("digest")
            if isinstance(digest, dict):
                out.update(
                    ("digest", f"{alg}:{val}")
                    for alg, val in digest.items()
                    if isinstance(val, str)
                )
        ptype = self.statement.get("predicateType")
        if isinstance(ptype, str):
            out.add(("type", ptype))
            release = _release_name(ptype, self.statement.get("predicate"))
            if release:
                out.add(("name", release))
        return tuple(sorted(out))

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key_id": self.key_id,
            "predicate_type": self.statement.get("predicateType"),
            "subjects": self.subjects(),
        }


SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"


def _release_name(predicate_type: str, predicate: Any) -> str | None:
    """The name a build gives the release it made (SLSA v1 ``externalParameters.name``, as a
    Glassbox recipe records it), so ``log search --name digits-mlp`` finds a release by the
    name its producer chose, not only by its file names."""
    if predicate_type != SLSA_PROVENANCE_V1 or not isinstance(predicate, dict):
        return None
    definition = predicate.get("buildDefinition")
    params = definition.get("externalParameters") if isinstance(definition, dict) else None
    name = params.get("name") if isinstance(params, dict) else None
    return name if isinstance(name, str) and 0 < len(name) <= 1024 else None


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _load_pem(pem: object, where: str) -> tuple[Any, str, bytes]:
    """The key, its canonical PEM and its key hash (``public_key_id``)."""
    if not isinstance(pem, str) or "PUBLIC KEY-----" not in pem:
        raise InputError(f"{where}: public_key must be a PEM SubjectPublicKeyInfo string")
    if "PRIVATE KEY" in pem:
        raise InputError(f"{where}: public_key is a private key; never send a private key")
    if len(pem) > 16384:
        raise InputError(f"{where}: public_key is longer than 16 KiB")
    try:
        return _key_info(pem)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


@lru_cache(maxsize=1024)
def _key_info(pem: str) -> tuple[Any, str, bytes]:
    """Parsing a PEM key and deriving its id cost as much as a signature check; a log sees the
    same few keys again and again, so they are parsed once (bounded; errors are not cached)."""
    from glassbox.sign import PublicKey, public_key_id, public_pem

    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise InputError("public_key is not a readable PEM public key") from None
    if not isinstance(key, PublicKey):
        raise InputError("public_key must be Ed25519 or ECDSA")
    return key, public_pem(key).decode(), bytes.fromhex(public_key_id(key))


def parse_entry(doc: object, *, where: str = "entry") -> LogEntry:
    """Check and verify a submission ``{"kind", "signed", "public_key"}`` (or the short forms
    ``{"bundle": ..., "public_key": ...}`` / ``{"envelope": ..., "public_key": ...}``).

    Structure problems are ``InputError``; a signature that does not verify with the given key
    is ``VerificationError``. Nothing unverified comes back.
    """
    from glassbox.sign import (
        IN_TOTO_PAYLOAD_TYPE,
        bundle_envelope,
        dsse_verify,
        parse_statement,
        verify_bundle,
    )

    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object")
    kind: object
    signed: object
    if "bundle" in doc:
        kind, signed = KIND_BUNDLE, doc["bundle"]
    elif "envelope" in doc:
        kind, signed = KIND_DSSE, doc["envelope"]
    else:
        kind, signed = doc.get("kind"), doc.get("signed")
    if kind != KIND_BUNDLE and kind != KIND_DSSE:
        raise InputError(f"{where}: give 'bundle' (OMS/Sigstore bundle) or 'envelope' (DSSE)")
    if not isinstance(signed, dict):
        raise InputError(f"{where}: the signed {kind} must be a JSON object")
    pub, pem, key_hash = _load_pem(doc.get("public_key"), where)
    if kind == KIND_BUNDLE:
        envelope = bundle_envelope(signed, where=where)
        statement = verify_bundle(signed, pub, where=where)
    else:
        from glassbox.sign import Envelope

        envelope = Envelope.from_dict(signed, where=where)
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise InputError(f"{where}: payloadType must be {IN_TOTO_PAYLOAD_TYPE!r}")
        if len(envelope.signatures) != 1:
            raise InputError(f"{where}: the log admits envelopes with exactly one signature")
        try:
            payload = dsse_verify(envelope, pub)
        except VerificationError as exc:
            raise VerificationError(f"{where}: {exc}") from None
        statement = parse_statement(payload, where=where)
    fields = LeafFields(
        hashlib.sha256(envelope.payload).digest(),
        hashlib.sha256(envelope.signatures[0].sig).digest(),
        key_hash,
    )
    return LogEntry(str(kind), signed, pem, statement, fields)


def entry_from_body(body: bytes, *, where: str = "entry body") -> LogEntry:
    """Re-read and re-verify a stored or bundled body."""
    if len(body) > MAX_BODY_BYTES:
        raise InputError(f"{where}: larger than {MAX_BODY_BYTES} bytes")
    from glassbox.files import parse_json

    return parse_entry(parse_json(body, where), where=where)
