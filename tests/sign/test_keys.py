"""Keys: generation, PEM round trips, passphrases, openssl-made keys, hostile key files."""

from __future__ import annotations

import hashlib
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from glassbox.errors import InputError
from glassbox.sign import (
    generate_private_key,
    key_hint,
    key_type,
    load_private_key,
    load_public_key,
    public_key_id,
    sign_bytes,
    verify_bytes,
    write_keypair,
)


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519"])
def test_keypair_round_trip_and_permissions(tmp_path: Path, kind: str) -> None:
    key = generate_private_key(kind)
    private_path, public_path = write_keypair(key, tmp_path / "k")
    assert (private_path.name, public_path.name) == ("k.key", "k.pub")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    loaded = load_private_key(private_path)
    pub = load_public_key(public_path)
    assert key_type(loaded) == key_type(pub) == kind
    signature = sign_bytes(loaded, b"message")
    assert verify_bytes(pub, signature, b"message")
    assert not verify_bytes(pub, signature, b"messagE")
    assert public_key_id(loaded) == public_key_id(pub)


def test_ecdsa_signatures_are_der(tmp_path: Path) -> None:
    key = generate_private_key()
    sig = sign_bytes(key, b"x")
    # DER SEQUENCE of two INTEGERs, as model_signing (and cryptography) encode ECDSA.
    assert sig[0] == 0x30 and sig[1] == len(sig) - 2


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    write_keypair(generate_private_key(), tmp_path / "k")
    before = (tmp_path / "k.key").read_bytes()
    with pytest.raises(InputError, match="already exists"):
        write_keypair(generate_private_key(), tmp_path / "k")
    assert (tmp_path / "k.key").read_bytes() == before
    # Only the public half existing still blocks, and nothing is written.
    (tmp_path / "p.pub").write_text("keep me")
    with pytest.raises(InputError, match="already exists"):
        write_keypair(generate_private_key(), tmp_path / "p")
    assert not (tmp_path / "p.key").exists()
    assert (tmp_path / "p.pub").read_text() == "keep me"


def test_passphrase(tmp_path: Path) -> None:
    private_path, _ = write_keypair(generate_private_key(), tmp_path / "k", "s3cret")
    assert b"ENCRYPTED" in private_path.read_bytes()
    assert isinstance(load_private_key(private_path, "s3cret"), ec.EllipticCurvePrivateKey)
    with pytest.raises(InputError, match="encrypted; a passphrase is needed"):
        load_private_key(private_path)
    with pytest.raises(InputError, match="wrong passphrase"):
        load_private_key(private_path, "wrong")
    plain, _ = write_keypair(generate_private_key(), tmp_path / "plain")
    with pytest.raises(InputError, match="not encrypted"):
        load_private_key(plain, "s3cret")


def test_hint_is_sha256_of_pem_and_id_of_der() -> None:
    pub = generate_private_key().public_key()
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_hint(pub) == hashlib.sha256(pem).hexdigest()
    assert public_key_id(pub) == hashlib.sha256(der).hexdigest()


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@needs_openssl
@pytest.mark.parametrize(
    ("gen", "expected"),
    [
        (["ecparam", "-name", "prime256v1", "-genkey", "-noout"], "ecdsa-p256"),  # SEC1 PEM
        (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "ecdsa-p384"),
        (["genpkey", "-algorithm", "ED25519"], "ed25519"),
    ],
)
def test_openssl_keys_load(tmp_path: Path, gen: list[str], expected: str) -> None:
    private_path, public_path = tmp_path / "o.pem", tmp_path / "o.pub"
    _openssl(*gen, "-out", str(private_path))
    _openssl("pkey", "-in", str(private_path), "-pubout", "-out", str(public_path))
    key = load_private_key(private_path)
    pub = load_public_key(public_path)
    assert key_type(key) == key_type(pub) == expected
    assert verify_bytes(pub, sign_bytes(key, b"data"), b"data")
    assert key_hint(key) == key_hint(pub)


@needs_openssl
def test_openssl_encrypted_pkcs8(tmp_path: Path) -> None:
    path = tmp_path / "enc.pem"
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-aes-256-cbc", "-pass", "pass:hunter2", "-out", str(path),
    )  # fmt: skip
    assert key_type(load_private_key(path, "hunter2")) == "ecdsa-p256"
    with pytest.raises(InputError, match="wrong passphrase"):
        load_private_key(path, "nope")


def test_unsupported_and_hostile_key_files(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_path = tmp_path / "rsa.pem"
    rsa_path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(InputError, match="unsupported key type"):
        load_private_key(rsa_path)
    k1 = ec.generate_private_key(ec.SECP256K1())
    k1_path = tmp_path / "k1.pub"
    k1_path.write_bytes(
        k1.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(InputError, match="unsupported elliptic curve secp256k1"):
        load_public_key(k1_path)

    private_path, public_path = write_keypair(generate_private_key(), tmp_path / "k")
    with pytest.raises(InputError, match="is a private key"):
        load_public_key(private_path)
    with pytest.raises(InputError, match="is a public key"):
        load_private_key(public_path)
    with pytest.raises(InputError, match="not found"):
        load_public_key(tmp_path / "missing.pub")
    with pytest.raises(InputError, match="is a directory"):
        load_private_key(tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PUBLIC KEY-----\nnot base64!!\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InputError, match="not a readable public key"):
        load_public_key(garbage)
    truncated = tmp_path / "trunc.key"
    truncated.write_bytes(private_path.read_bytes()[:80])
    with pytest.raises(InputError, match="not a readable private key"):
        load_private_key(truncated)
    huge = tmp_path / "huge.pem"
    huge.write_bytes(b"A" * (2 << 20))
    with pytest.raises(InputError, match="too large"):
        load_public_key(huge)


def test_der_keys_load(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "k.der"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert key_type(load_public_key(path)) == "ed25519"


def test_unknown_kind() -> None:
    with pytest.raises(InputError, match="unknown key type"):
        generate_private_key("rsa")
