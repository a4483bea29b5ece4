"""Interop with the real OpenSSF ``model_signing`` package, in both directions.

model_signing is a dev-only dependency (slow to import); Glassbox never imports it at run time.
These tests are the proof that the formats agree: same root digests, same bundle layout, same
key hint, signatures that each side accepts from the other, and tampering each side rejects.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from glassbox.digest import HashMethod
from glassbox.errors import InputError
from glassbox.sign import (
    ModelVerificationError,
    load_private_key,
    load_public_key,
    read_bundle,
    sign_model,
    verify_model,
)
from tests.sign.helpers import make_model

model_signing = pytest.importorskip("model_signing")


def _ms_hashing(method: str, ignore: list[str]) -> Any:
    config = model_signing.hashing.Config()
    if method == "files":
        config = config.use_file_serialization()
    elif method == "blake3":
        config = config.use_file_serialization(hashing_algorithm="blake3")
    else:
        config = config.use_shard_serialization(shard_size=int(method.split("-")[-1]))
    return config.set_ignored_paths(paths=ignore)


def _ms_sign(model: Path, key: Path, signature: Path, method: str, ignore: list[str]) -> None:
    hashing = _ms_hashing(method, ignore)
    (
        model_signing.signing.Config()
        .use_elliptic_key_signer(private_key=key)
        .set_hashing_config(hashing)
        .sign(model, signature)
    )


def _ms_verify(model: Path, pub: Path, signature: Path) -> None:
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(
        model, signature
    )


GLASSBOX_METHODS = {
    "files": HashMethod(),
    "blake3": HashMethod("blake3"),
    "shards-1000": HashMethod("sha256", 1000),
}


@pytest.mark.parametrize("method", ["files", "blake3", "shards-1000"])
def test_glassbox_signature_verifies_with_model_signing(
    model_dir: Path, ec_keys: tuple[Path, Path], method: str
) -> None:
    private_path, public_path = ec_keys
    (model_dir / "notes").mkdir()
    (model_dir / "notes" / "draft.md").write_text("not part of the release")
    sign_model(
        model_dir,
        load_private_key(private_path),
        method=GLASSBOX_METHODS[method],
        ignore_paths=["notes"],
    )
    _ms_verify(model_dir, public_path, model_dir / "model.sig")
    # model_signing also rejects what Glassbox signed once a byte changes.
    data = bytearray((model_dir / "weights.bin").read_bytes())
    data[-1] ^= 0xFF
    (model_dir / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"weights\.bin"):
        _ms_verify(model_dir, public_path, model_dir / "model.sig")


@pytest.mark.parametrize("method", ["files", "blake3", "shards-1000"])
def test_model_signing_signature_verifies_with_glassbox(
    model_dir: Path, ec_keys: tuple[Path, Path], method: str
) -> None:
    private_path, public_path = ec_keys
    (model_dir / "notes").mkdir()
    (model_dir / "notes" / "draft.md").write_text("not part of the release")
    signature = model_dir / "model.sig"
    _ms_sign(model_dir, private_path, signature, method, ["notes", "model.sig"])
    pub = load_public_key(public_path)
    manifest = verify_model(model_dir, pub)
    assert manifest.method == GLASSBOX_METHODS[method]
    assert "notes" in manifest.ignore_paths
    (model_dir / "notes" / "draft.md").write_text("ignored, so still fine")
    verify_model(model_dir, pub)
    (model_dir / "tokenizer" / "vocab.txt").write_text("a\nb\nX\n")
    (model_dir / "new.bin").write_bytes(b"1")
    with pytest.raises(ModelVerificationError) as info:
        verify_model(model_dir, pub)
    assert info.value.diff.modified == ("tokenizer/vocab.txt",)
    assert info.value.diff.added == ("new.bin",)


def test_same_root_digest_and_payload_both_ways(
    model_dir: Path, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private_path, _ = ec_keys
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    sign_model(model_dir, load_private_key(private_path), signature_path=ours)
    # model_signing's CLI always ignores its signature file; Glassbox always ignores model.sig.
    _ms_sign(model_dir, private_path, theirs, "files", ["model.sig"])

    def statement(path: Path) -> dict[str, Any]:
        bundle = read_bundle(path)
        return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))

    a, b = statement(ours), statement(theirs)
    assert a["subject"] == b["subject"]
    # Same resources in the same (OMS) order; ignore_paths order is a set in model_signing.
    assert a["predicate"]["resources"] == b["predicate"]["resources"]
    sa, sb = a["predicate"]["serialization"], b["predicate"]["serialization"]
    assert set(sa.pop("ignore_paths")) == set(sb.pop("ignore_paths"))
    assert sa == sb
    assert read_bundle(ours)["verificationMaterial"] == read_bundle(theirs)["verificationMaterial"]


def test_single_file_model_both_ways(tmp_path: Path, ec_keys: tuple[Path, Path]) -> None:
    private_path, public_path = ec_keys
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(5000))
    ours = tmp_path / "ours.sig"
    sign_model(weights, load_private_key(private_path), signature_path=ours)
    _ms_verify(weights, public_path, ours)
    theirs = tmp_path / "theirs.sig"
    _ms_sign(weights, private_path, theirs, "shards-1000", [])
    verify_model(weights, load_public_key(public_path), signature_path=theirs)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")
@pytest.mark.parametrize("curve", ["prime256v1", "secp384r1"])
def test_openssl_key_works_with_both(tmp_path: Path, curve: str) -> None:
    private_path, public_path = tmp_path / "o.pem", tmp_path / "o.pub"
    subprocess.run(
        ["openssl", "ecparam", "-name", curve, "-genkey", "-noout", "-out", private_path],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "ec", "-in", private_path, "-pubout", "-out", public_path],
        check=True,
        capture_output=True,
    )
    model = make_model(tmp_path / "m")
    sign_model(model, load_private_key(private_path))
    _ms_verify(model, public_path, model / "model.sig")
    _ms_sign(model, private_path, model / "model.sig", "files", ["model.sig"])
    verify_model(model, load_public_key(public_path))


def test_model_signing_rejects_glassbox_signature_under_another_key(
    model_dir: Path, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    from glassbox.sign import generate_private_key, write_keypair

    private_path, _ = ec_keys
    sign_model(model_dir, load_private_key(private_path))
    _, other_pub = write_keypair(generate_private_key(), tmp_path / "other")
    with pytest.raises(ValueError, match="Key mismatch"):
        _ms_verify(model_dir, other_pub, model_dir / "model.sig")


@pytest.mark.parametrize("method", ["files", "shards-1000"])
def test_unicode_and_odd_names_both_ways(
    model_dir: Path, ec_keys: tuple[Path, Path], tmp_path: Path, method: str
) -> None:
    private_path, public_path = ec_keys
    (model_dir / "données").mkdir()
    (model_dir / "données" / "模型 1.bin").write_bytes(bytes(3000))
    (model_dir / ".hidden").write_text("hidden files are content too")
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    sign_model(
        model_dir, load_private_key(private_path), signature_path=ours,
        method=GLASSBOX_METHODS[method],
    )  # fmt: skip
    _ms_verify(model_dir, public_path, ours)
    _ms_sign(model_dir, private_path, theirs, method, ["model.sig"])
    manifest = verify_model(model_dir, load_public_key(public_path), signature_path=theirs)
    assert any(item.path == "données/模型 1.bin" for item in manifest.items)
    assert any(item.path == ".hidden" for item in manifest.items)


@pytest.mark.slow
def test_model_signing_command_line_both_ways(model_dir: Path, ec_keys: tuple[Path, Path]) -> None:
    """What users actually run: the `model_signing` CLI against the `glassbox` CLI."""
    exe = Path(sys.executable).parent
    private_path, public_path = ec_keys
    glassbox = [sys.executable, "-m", "glassbox.cli.main"]
    model_signing_cli = [str(exe / "model_signing")]
    subprocess.run([*glassbox, "sign", model_dir, "--key", private_path], check=True)
    subprocess.run(
        [*model_signing_cli, "verify", "key", model_dir, "--signature", model_dir / "model.sig",
         "--public_key", public_path],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*model_signing_cli, "sign", "key", model_dir, "--signature", model_dir / "model.sig",
         "--private_key", private_path],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run([*glassbox, "verify", model_dir, "--key", public_path], check=True)
    (model_dir / "config.json").write_text("{}")
    failed = subprocess.run(
        [*glassbox, "verify", model_dir, "--key", public_path], capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert "modified: config.json" in failed.stderr


def test_allow_symlinks_is_recorded_and_followed(
    model_dir: Path, ec_keys: tuple[Path, Path]
) -> None:
    private_path, public_path = ec_keys
    (model_dir / "alias.json").symlink_to("config.json")
    key = load_private_key(private_path)
    with pytest.raises(InputError, match="symlink"):
        sign_model(model_dir, key)
    signed = sign_model(model_dir, key, method=HashMethod(allow_symlinks=True))
    assert signed.manifest.method.allow_symlinks
    assert "alias.json" in signed.manifest.file_digests()
    # Glassbox's verify follows the recorded policy with no flag. model_signing 1.1.1 records
    # it but does not follow it when guessing its hashing config, so it is told explicitly.
    verify_model(model_dir, load_public_key(public_path))
    hashing = model_signing.hashing.Config().set_allow_symlinks(True)
    (
        model_signing.verifying.Config()
        .use_elliptic_key_verifier(public_key=public_path)
        .set_hashing_config(hashing)
        .verify(model_dir, model_dir / "model.sig")
    )
    # And the reverse: model_signing's signature with symlinks allowed verifies here.
    (
        model_signing.signing.Config()
        .use_elliptic_key_signer(private_key=private_path)
        .set_hashing_config(
            model_signing.hashing.Config()
            .set_ignored_paths(paths=["model.sig"])
            .set_allow_symlinks(True)
        )
        .sign(model_dir, model_dir / "model.sig")
    )
    assert verify_model(model_dir, load_public_key(public_path)).method.allow_symlinks
