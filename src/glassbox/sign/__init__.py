"""Keys, DSSE envelopes, in-toto statements, Sigstore bundles, and OMS model signatures.

Everything here speaks the OpenSSF model-signing (OMS) formats, so a signature Glassbox writes
verifies with ``model_signing`` and the reverse; other parts (log, builds, scans) reuse the same
DSSE/in-toto/bundle layer for their own attestations.
"""

from glassbox.sign.bundle import (
    BUNDLE_MEDIA_TYPE,
    bundle_envelope,
    parse_bundle,
    read_bundle,
    sign_statement,
    verify_bundle,
    write_bundle,
)
from glassbox.sign.certificates import (
    CertificateSigner,
    bundle_certificates,
    sign_statement_with_certificate,
    verify_bundle_certificates,
)
from glassbox.sign.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    Envelope,
    Signature,
    dsse_sign,
    dsse_verify,
    pae,
)
from glassbox.sign.keys import (
    KEY_TYPES,
    PrivateKey,
    PublicKey,
    generate_private_key,
    key_hint,
    key_type,
    load_private_key,
    load_public_key,
    parse_public_key,
    public_key_id,
    public_key_of,
    public_pem,
    sign_bytes,
    verify_bytes,
    write_keypair,
)
from glassbox.sign.model import (
    OMS_PREDICATE_TYPE,
    ModelVerificationError,
    SignedModel,
    check_files,
    default_signature_path,
    manifest_from_statement,
    sign_model,
    verify_model,
)
from glassbox.sign.statement import STATEMENT_TYPE, make_statement, parse_statement, subject

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "KEY_TYPES",
    "OMS_PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "CertificateSigner",
    "Envelope",
    "ModelVerificationError",
    "PrivateKey",
    "PublicKey",
    "Signature",
    "SignedModel",
    "bundle_certificates",
    "bundle_envelope",
    "check_files",
    "default_signature_path",
    "dsse_sign",
    "dsse_verify",
    "generate_private_key",
    "key_hint",
    "key_type",
    "load_private_key",
    "load_public_key",
    "make_statement",
    "manifest_from_statement",
    "pae",
    "parse_bundle",
    "parse_public_key",
    "parse_statement",
    "public_key_id",
    "public_key_of",
    "public_pem",
    "read_bundle",
    "sign_bytes",
    "sign_model",
    "sign_statement",
    "sign_statement_with_certificate",
    "subject",
    "verify_bundle",
    "verify_bundle_certificates",
    "verify_bytes",
    "verify_model",
    "write_bundle",
    "write_keypair",
]
