"""Publishers by X.509 chain (OMS's certificate method), with ``model_signing`` both ways."""

from __future__ import annotations

import datetime
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from glassbox.errors import VerificationError
from glassbox.sign import read_bundle, sign_model, verify_bundle, verify_bundle_certificates
from glassbox.trust.gate import verify_model_with_policy
from glassbox.trust.loaders import load_pretrained
from glassbox.trust.policy import load_policy
from tests.trust.conftest import log_release

NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class Pki:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    dir: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    signing: bool = True,
) -> x509.Certificate:
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    usage.update(key_cert_sign=ca, crl_sign=ca, digital_signature=signing and not ca)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if not ca and signing:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, org: str = "Acme") -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert(f"{org} Root CA", root_key, None, root_key, ca=True)
    mid_key = ec.generate_private_key(ec.SECP256R1())
    mid = _cert(f"{org} Release CA", mid_key, root, root_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(f"{org} model signing", leaf_key, mid, mid_key, ca=False)
    pem = serialization.Encoding.PEM
    (directory / "root.pem").write_bytes(root.public_bytes(pem))
    (directory / "intermediate.pem").write_bytes(mid.public_bytes(pem))
    (directory / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (directory / "leaf.key").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Pki(root, mid, leaf, leaf_key, directory)


def leaf_pub(pki: Pki) -> Path:
    path = pki.dir / "leaf.pub"
    path.write_bytes(
        pki.leaf_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def cert_policy(path: Path, anchor: Path, models: str = '["*"]') -> Path:
    path.write_text(
        f'version = 1\n\n[[publisher]]\nname = "Acme PKI"\nmodels = {models}\n'
        f'certificates = ["{anchor}"]\n\n[log]\nrequire = true\nkeys = ["embedded"]\n'
    )
    return path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def test_certificate_signed_model_passes_the_gate(
    tmp_path: Path, tiny_source: Path, pki: Pki
) -> None:
    model = tmp_path / "tiny-bert"
    shutil.copytree(tiny_source, model)
    signed = sign_model(model, pki.leaf_key, certificate=pki.leaf, chain=[pki.intermediate])
    chain = signed.bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
    assert len(chain) == 2
    log_release(model, signed.signature_path, leaf_pub(pki))
    policy = load_policy(cert_policy(tmp_path / "p.toml", pki.dir / "root.pem"))
    result = verify_model_with_policy(model, policy)
    assert result.ok, result.reasons
    assert result.publisher == "Acme PKI"
    assert "CN=Acme model signing" in str(result.signer)
    assert "chained to CN=Acme Root CA" in str(result.signer)
    assert load_pretrained(model, policy).config.hidden_size == 16

    # Another organisation's root does not vouch for Acme's chain.
    other = make_pki(tmp_path / "other", "Mallory")
    refused = verify_model_with_policy(
        model, load_policy(cert_policy(tmp_path / "q.toml", other.dir / "root.pem"))
    )
    assert refused.reasons[0].link == "publisher"
    assert "certificate CN=Acme model signing" in refused.reasons[0].message


def test_certificate_bundle_with_a_bare_key(tmp_path: Path, tiny_source: Path, pki: Pki) -> None:
    """With a key instead of anchors, only the leaf's own key verifies (how the log admits it);
    a key-only publisher in a policy never accepts a certificate bundle."""
    model = tmp_path / "m"
    shutil.copytree(tiny_source, model)
    signed = sign_model(model, pki.leaf_key, certificate=pki.leaf, chain=[pki.intermediate])
    statement = verify_bundle(signed.bundle, pki.leaf_key.public_key(), where="model.sig")
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(VerificationError, match="whose key is not the given key"):
        verify_bundle(signed.bundle, other, where="model.sig")
    (tmp_path / "leaf.pub").write_bytes(
        pki.leaf_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    from tests.trust.conftest import write_policy

    policy = load_policy(write_policy(tmp_path / "p.toml", tmp_path / "leaf.pub"))
    result = verify_model_with_policy(model, policy)
    assert result.reasons[0].link == "publisher"


def test_chain_checks(tmp_path: Path, tiny_source: Path, pki: Pki) -> None:
    model = tmp_path / "m"
    shutil.copytree(tiny_source, model)
    # Without the intermediate the leaf cannot reach the root.
    signed = sign_model(model, pki.leaf_key, certificate=pki.leaf)
    with pytest.raises(VerificationError, match="does not chain to a trusted anchor"):
        verify_bundle_certificates(signed.bundle, [pki.root])
    # A leaf not meant for signing is refused.
    key = ec.generate_private_key(ec.SECP256R1())
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("Solo Root", root_key, None, root_key, ca=True)
    tls = _cert("not for signing", key, root, root_key, ca=False, signing=False)
    bundle = sign_model(model, key, certificate=tls, overwrite=True).bundle
    with pytest.raises(VerificationError, match="not meant for signing"):
        verify_bundle_certificates(bundle, [root])
    # A tampered payload fails even though the chain is good.
    good = sign_model(
        model, pki.leaf_key, certificate=pki.leaf, chain=[pki.intermediate], overwrite=True
    ).bundle
    envelope = good["dsseEnvelope"]
    import base64

    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["subject"][0]["name"] = "renamed"
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(VerificationError, match="DSSE signature does not verify"):
        verify_bundle_certificates(good, [pki.root])


model_signing = pytest.importorskip("model_signing")


def test_interop_with_model_signing_certificates(
    tmp_path: Path, tiny_source: Path, pki: Pki
) -> None:
    """model_signing's certificate signer verifies in Glassbox, and the reverse."""
    theirs = tmp_path / "theirs"
    shutil.copytree(tiny_source, theirs)
    (
        model_signing.signing.Config()
        .use_certificate_signer(
            private_key=pki.dir / "leaf.key",
            signing_certificate=pki.dir / "leaf.pem",
            certificate_chain=[pki.dir / "intermediate.pem"],
        )
        .set_hashing_config(model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"]))
        .sign(theirs, theirs / "model.sig")
    )
    _, signer = verify_bundle_certificates(read_bundle(theirs / "model.sig"), [pki.root])
    assert signer.subject == "CN=Acme model signing"
    log_release(theirs, theirs / "model.sig", leaf_pub(pki))
    policy = load_policy(cert_policy(tmp_path / "p.toml", pki.dir / "root.pem"))
    result = verify_model_with_policy(theirs, policy)
    assert result.ok, result.reasons

    ours = tmp_path / "ours"
    shutil.copytree(tiny_source, ours)
    sign_model(ours, pki.leaf_key, certificate=pki.leaf, chain=[pki.intermediate])
    (
        model_signing.verifying.Config()
        .use_certificate_verifier(certificate_chain=[pki.dir / "root.pem"])
        .set_hashing_config(model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"]))
        .verify(ours, ours / "model.sig")
    )


def test_cli_sign_with_certificate_then_verify_policy(
    tmp_path: Path, tiny_source: Path, pki: Pki
) -> None:
    from click.testing import CliRunner

    from glassbox.cli.main import cli

    model = tmp_path / "tiny-bert"
    shutil.copytree(tiny_source, model)
    runner = CliRunner()
    signed = runner.invoke(
        cli,
        [
            "sign",
            str(model),
            "--key",
            str(pki.dir / "leaf.key"),
            "--certificate",
            str(pki.dir / "leaf.pem"),
            "--certificate-chain",
            str(pki.dir / "intermediate.pem"),
        ],
    )
    assert signed.exit_code == 0, signed.output
    log_release(model, model / "model.sig", leaf_pub(pki))
    policy = cert_policy(tmp_path / "p.toml", pki.dir / "root.pem")
    out = runner.invoke(cli, ["verify", str(model), "--policy", str(policy)])
    assert out.exit_code == 0, out.output
    assert "signed by Acme PKI (certificate CN=Acme model signing" in out.output
    wrong = runner.invoke(
        cli, ["sign", str(model), "--key", str(pki.dir / "leaf.key"), "--certificate", "nope.pem"]
    )
    assert wrong.exit_code == 2
