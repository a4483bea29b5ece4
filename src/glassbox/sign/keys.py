"""Signing keys: ECDSA on NIST P-curves (what OMS ``model_signing`` accepts) and Ed25519.

Keys live in plain PEM files (PKCS#8 private, SubjectPublicKeyInfo public) so keys made by
``openssl`` or by ``model_signing``'s documentation work unchanged, and Glassbox keys work there.
P-256 is the default: ``model_signing`` 1.1 verifies only P-256/384/521. Ed25519 is offered for
log and witness keys, where the C2SP note formats want it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from glassbox.errors import InputError
from glassbox.files import read_small_file

KeyType = Literal["ecdsa-p256", "ed25519"]
KEY_TYPES: tuple[KeyType, ...] = ("ecdsa-p256", "ed25519")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# Curve name -> the digest ECDSA uses with it; the same pairing model_signing and the Sigstore
# protobuf specs use, so a P-384 key made with openssl signs and verifies the same way there.
_EC_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}

# A PEM key is a few hundred bytes; refuse to read anything absurd passed as --key.
_MAX_KEY_FILE = 1 << 20


def generate_private_key(kind: str = "ecdsa-p256") -> PrivateKey:
    """A fresh key of ``kind`` (``ecdsa-p256`` or ``ed25519``)."""
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise InputError(f"unknown key type {kind!r} (use {' or '.join(KEY_TYPES)})")


def key_type(key: PrivateKey | PublicKey) -> str:
    """Human name of the key's algorithm, e.g. ``ecdsa-p256`` or ``ed25519``."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    names = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}
    return names.get(key.curve.name, f"ecdsa-{key.curve.name}")


def _supported(key: object, path: Path | str) -> PrivateKey | PublicKey:
    """Refuse key types that OMS verifiers (or Glassbox) cannot use, naming the file."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name not in _EC_HASHES:
            raise InputError(
                f"{path}: unsupported elliptic curve {key.curve.name} (use P-256, P-384 or P-521)"
            )
        return key
    raise InputError(
        f"{path}: unsupported key type {type(key).__name__.lstrip('_')} "
        "(use ECDSA P-256/384/521 or Ed25519)"
    )


def _as_bytes(passphrase: str | bytes | None) -> bytes | None:
    if passphrase is None or isinstance(passphrase, bytes):
        return passphrase
    return passphrase.encode()


def load_private_key(
    path: str | os.PathLike[str], passphrase: str | bytes | None = None
) -> PrivateKey:
    """Load a PEM (or DER) private key; clear errors for wrong passphrase or a public key."""
    path = Path(path)
    data = read_small_file(path, _MAX_KEY_FILE, "key")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise InputError(f"{path}: is a public key; signing needs the private key")
    loader = (
        serialization.load_pem_private_key
        if data.lstrip().startswith(b"-----")
        else serialization.load_der_private_key
    )
    try:
        key = loader(data, password=_as_bytes(passphrase))
    except TypeError as exc:
        # cryptography raises TypeError both for "encrypted but no password" and the reverse.
        if passphrase is None:
            raise InputError(f"{path}: key is encrypted; a passphrase is needed") from exc
        raise InputError(f"{path}: key is not encrypted; do not pass a passphrase") from exc
    except ValueError as exc:
        if passphrase is not None and b"ENCRYPTED" in data:
            raise InputError(f"{path}: wrong passphrase for encrypted key") from exc
        raise InputError(f"{path}: not a readable private key (PEM PKCS#8 / SEC1)") from exc
    except UnsupportedAlgorithm as exc:
        raise InputError(f"{path}: unsupported key algorithm: {exc}") from exc
    checked = _supported(key, path)
    if not isinstance(checked, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise InputError(f"{path}: not a private key")  # pragma: no cover - loader guarantees
    return checked


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Load a PEM (or DER) SubjectPublicKeyInfo public key, as ``openssl ... -pubout`` writes."""
    path = Path(path)
    return parse_public_key(read_small_file(path, _MAX_KEY_FILE, "key"), where=str(path))


def parse_public_key(data: bytes, *, where: str = "key") -> PublicKey:
    """A public key from PEM (or DER) bytes, e.g. one written inline in a trust policy."""
    path = where
    if b"PRIVATE KEY-----" in data:
        raise InputError(f"{path}: is a private key; verification needs the public key (.pub)")
    loader = (
        serialization.load_pem_public_key
        if data.lstrip().startswith(b"-----")
        else serialization.load_der_public_key
    )
    try:
        key = loader(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{path}: not a readable public key (PEM SubjectPublicKeyInfo)") from exc
    checked = _supported(key, path)
    if not isinstance(checked, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise InputError(f"{path}: not a public key")  # pragma: no cover - loader guarantees
    return checked


def public_key_of(key: PrivateKey | PublicKey) -> PublicKey:
    """The public half of ``key`` (``key`` itself if it already is public)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key.public_key()
    return key


def public_pem(key: PrivateKey | PublicKey) -> bytes:
    """PEM SubjectPublicKeyInfo of ``key`` (as cryptography writes it, the hint's input)."""
    return public_key_of(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_id(pub: PrivateKey | PublicKey) -> str:
    """Stable key identifier: hex SHA-256 of the DER SubjectPublicKeyInfo."""
    der = public_key_of(pub).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def key_hint(pub: PrivateKey | PublicKey) -> str:
    """``verificationMaterial.publicKey.hint`` exactly as model_signing computes it.

    model_signing hashes the *PEM* text of the SubjectPublicKeyInfo (not the DER), so this
    differs from ``public_key_id``; both are kept so each is what its readers expect.
    """
    return hashlib.sha256(public_pem(pub)).hexdigest()


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data``: DER-encoded ECDSA with the curve's hash, or raw 64-byte Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(_EC_HASHES[key.curve.name]()))


def verify_bytes(pub: PublicKey, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` over ``data`` verifies with ``pub``; never raises on bad input."""
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(signature, data)
        else:
            pub.verify(signature, data, ec.ECDSA(_EC_HASHES[pub.curve.name]()))
    except (InvalidSignature, ValueError):
        return False
    return True


def write_keypair(
    key: PrivateKey, prefix: str | os.PathLike[str], passphrase: str | bytes | None = None
) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (PKCS#8, mode 0600) and ``PREFIX.pub``; never overwrite either.

    Both names are checked before anything is written, and each file is created with
    ``O_EXCL`` so a race cannot clobber an existing key either.
    """
    prefix = Path(prefix)
    private_path = prefix.with_name(prefix.name + ".key")
    public_path = prefix.with_name(prefix.name + ".pub")
    for existing in (private_path, public_path):
        if existing.exists() or existing.is_symlink():
            raise InputError(f"{existing}: already exists; refusing to overwrite a key")
    secret = _as_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    _create_exclusive(private_path, private_pem, 0o600)
    try:
        _create_exclusive(public_path, public_pem(key), 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            private_path.unlink()
        raise
    return private_path, public_path


def _create_exclusive(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InputError(f"{path}: already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot write key: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if mode == 0o600:
        # Whatever the umask, a private key must end up readable by its owner only.
        path.chmod(mode)
