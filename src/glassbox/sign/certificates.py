"""OMS's certificate method: bundles carrying an X.509 chain instead of a key hint.

``model_signing`` signs with a private key plus its signing certificate and the chain above it,
writing ``verificationMaterial.x509CertificateChain.certificates`` (leaf first, DER, base64);
a verifier holds trust anchors (a company CA), builds the chain from the leaf to an anchor and
checks the DSSE signature with the leaf's key, offline. As ``model_signing`` does, the chain is
validated at the leaf's ``notBefore`` (the signature was necessarily made after it), so a
release stays verifiable after its short-lived signing certificate expires, and the leaf must
be meant for signing (key usage ``digitalSignature`` or extended key usage ``codeSigning``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from glassbox.errors import InputError, VerificationError
from glassbox.sign.dsse import IN_TOTO_PAYLOAD_TYPE, b64decode, b64encode, dsse_sign, dsse_verify
from glassbox.sign.keys import PrivateKey, PublicKey, public_key_id, public_key_of
from glassbox.sign.statement import parse_statement, statement_bytes

MAX_CHAIN = 10


@dataclass(frozen=True)
class CertificateSigner:
    """Who signed a certificate-based bundle: the leaf, and the anchor its chain reached."""

    leaf: x509.Certificate
    anchor: x509.Certificate

    @property
    def subject(self) -> str:
        return self.leaf.subject.rfc4514_string()

    @property
    def key_id(self) -> str:
        return public_key_id(_ec_or_ed(self.leaf.public_key(), "certificate"))


def _ec_or_ed(key: Any, where: str) -> PublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise VerificationError(f"{where}: certificate key type {type(key).__name__} is not supported")


def sign_statement_with_certificate(
    statement: dict[str, Any],
    key: PrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
) -> dict[str, Any]:
    """A bundle signing ``statement`` with ``key``, carrying ``certificate`` and ``chain``."""
    if public_key_of(key) != certificate.public_key():
        raise InputError("the signing certificate is not for this private key")
    from glassbox.sign.bundle import BUNDLE_MEDIA_TYPE

    envelope = dsse_sign(statement_bytes(statement), IN_TOTO_PAYLOAD_TYPE, key)
    certs = [certificate, *chain]
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "x509CertificateChain": {
                "certificates": [
                    {"rawBytes": b64encode(c.public_bytes(serialization.Encoding.DER))}
                    for c in certs
                ]
            },
            "tlogEntries": [],
        },
        "dsseEnvelope": envelope.to_dict(),
    }


def bundle_certificates(bundle: dict[str, Any], *, where: str = "bundle") -> list[x509.Certificate]:
    """The chain a certificate-based bundle carries (leaf first); [] for a key-based one."""
    material = bundle.get("verificationMaterial")
    chain = material.get("x509CertificateChain") if isinstance(material, dict) else None
    if chain is None:
        return []
    raw = chain.get("certificates") if isinstance(chain, dict) else None
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{where}: x509CertificateChain.certificates must be a non-empty list")
    if len(raw) > MAX_CHAIN:
        raise InputError(f"{where}: certificate chain longer than {MAX_CHAIN}")
    certs = []
    for index, item in enumerate(raw):
        value = item.get("rawBytes") if isinstance(item, dict) else None
        der = b64decode(value, f"{where}: certificate {index} rawBytes")
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise InputError(f"{where}: certificate {index} is not DER X.509: {exc}") from None
    return certs


def verify_bundle_certificates(
    bundle: dict[str, Any], anchors: Sequence[x509.Certificate], *, where: str = "bundle"
) -> tuple[dict[str, Any], CertificateSigner]:
    """The statement, if the bundle's chain reaches one of ``anchors`` and its leaf signed it.

    Structure problems are ``InputError``; an untrusted chain, a leaf not meant for signing or
    a signature that does not verify are ``VerificationError``.
    """
    from cryptography.x509.verification import (
        ExtensionPolicy,
        PolicyBuilder,
        Store,
    )
    from cryptography.x509.verification import (
        VerificationError as ChainError,
    )

    from glassbox.sign.bundle import bundle_envelope

    certs = bundle_certificates(bundle, where=where)
    if not certs:
        raise VerificationError(f"{where}: not a certificate-based bundle (no x509 chain)")
    if not anchors:
        raise VerificationError(f"{where}: no trusted certificate anchors to check the chain")
    envelope = bundle_envelope(bundle, where=where)
    leaf, intermediates = certs[0], certs[1:]
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(leaf.not_valid_before_utc)
        .max_chain_depth(MAX_CHAIN)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(leaf, intermediates)
    except ChainError as exc:
        raise VerificationError(
            f"{where}: certificate {leaf.subject.rfc4514_string()} does not chain to a trusted "
            f"anchor: {exc}"
        ) from None
    _check_signing_usage(leaf, where)
    pub = _ec_or_ed(leaf.public_key(), where)
    if len(envelope.signatures) != 1:
        raise InputError(f"{where}: a Sigstore bundle's envelope has exactly one signature")
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise InputError(f"{where}: payloadType is {envelope.payload_type!r}")
    try:
        payload = dsse_verify(envelope, pub)
    except VerificationError as exc:
        raise VerificationError(f"{where}: {exc}") from None
    statement = parse_statement(payload, where=f"{where} payload")
    return statement, CertificateSigner(leaf, verified.chain[-1])


def _check_signing_usage(leaf: x509.Certificate, where: str) -> None:
    try:
        if leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return
    except x509.ExtensionNotFound:
        pass
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CODE_SIGNING in usages:
            return
    except x509.ExtensionNotFound:
        pass
    raise VerificationError(
        f"{where}: certificate {leaf.subject.rfc4514_string()} is not meant for signing "
        "(no digitalSignature key usage or codeSigning extended key usage)"
    )
