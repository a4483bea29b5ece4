"""Signatures on Hugging Face cache snapshots: plain copy <-> snapshot, Glassbox <-> model_signing.

The snapshot's links are storage: a signature made on a plain copy of the files verifies on the
snapshot and the reverse, with file names relative to the snapshot. ``model_signing`` reads the
same snapshot with its ``allow_symlinks`` option (it follows links without a boundary, so
Glassbox's signatures record ``allow_symlinks: false``, the policy for the files themselves).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from glassbox.errors import InputError
from glassbox.sign import (
    ModelVerificationError,
    load_private_key,
    load_public_key,
    read_bundle,
    sign_model,
    verify_model,
)
from tests.trust.hfcache import CachedRepo, add_to_hf_cache

model_signing = pytest.importorskip("model_signing")


def make_source(root: Path) -> Path:
    (root / "tokenizer").mkdir(parents=True)
    (root / "config.json").write_text('{"hidden_size": 16}')
    (root / "model.safetensors").write_bytes(os.urandom(30_000))
    (root / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    return root


@pytest.fixture
def cached(tmp_path: Path) -> CachedRepo:
    return add_to_hf_cache(tmp_path / "hub", "org/tiny", make_source(tmp_path / "src"))


def _ms_config(allow_symlinks: bool) -> Any:
    return model_signing.hashing.Config().set_allow_symlinks(allow_symlinks)


def _ms_verify(model: Path, pub: Path, sig: Path, *, allow_symlinks: bool | None) -> None:
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub)
    if allow_symlinks is not None:
        config = config.set_hashing_config(_ms_config(allow_symlinks))
    config.verify(model, sig)


def _statement(path: Path) -> dict[str, Any]:
    payload = read_bundle(path)["dsseEnvelope"]["payload"]
    result: dict[str, Any] = json.loads(base64.b64decode(payload))
    return result


def test_plain_copy_signature_verifies_on_snapshot_and_back(
    cached: CachedRepo, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = ec_keys
    key, pub = load_private_key(private), load_public_key(public)
    on_copy, on_snapshot = tmp_path / "copy.sig", tmp_path / "snap.sig"
    sign_model(tmp_path / "src", key, signature_path=on_copy)
    sign_model(cached.snapshot, key, signature_path=on_snapshot)
    assert verify_model(cached.snapshot, pub, signature_path=on_copy).items
    assert verify_model(tmp_path / "src", pub, signature_path=on_snapshot).items
    a, b = _statement(on_copy), _statement(on_snapshot)
    # Same files, names and method; only the informative model name (the directory) differs.
    assert a["predicate"] == b["predicate"]
    assert a["subject"][0]["digest"] == b["subject"][0]["digest"]
    assert b["subject"][0]["name"] == cached.commit
    assert b["predicate"]["serialization"]["allow_symlinks"] is False


def test_changed_blob_is_named_by_its_snapshot_path(
    cached: CachedRepo, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = ec_keys
    sig = tmp_path / "copy.sig"
    sign_model(tmp_path / "src", load_private_key(private), signature_path=sig)
    blob = (cached.snapshot / "tokenizer" / "vocab.txt").resolve()
    blob.write_text("a\nX\n")
    with pytest.raises(ModelVerificationError) as info:
        verify_model(cached.snapshot, load_public_key(public), signature_path=sig)
    assert info.value.diff.modified == ("tokenizer/vocab.txt",)


def test_signature_shipped_in_the_repository(tmp_path: Path, ec_keys: tuple[Path, Path]) -> None:
    """The publisher signs its repo; model.sig is downloaded with it, as one more cache link."""
    private, public = ec_keys
    src = make_source(tmp_path / "src")
    sign_model(src, load_private_key(private))  # writes src/model.sig
    repo = add_to_hf_cache(tmp_path / "hub", "org/tiny", src)
    assert (repo.snapshot / "model.sig").is_symlink()
    manifest = verify_model(repo.snapshot, load_public_key(public))
    assert "model.sig" not in manifest.file_digests()
    _ms_verify(repo.snapshot, public, repo.snapshot / "model.sig", allow_symlinks=True)


def test_custom_signature_name_inside_snapshot_is_left_out(
    tmp_path: Path, ec_keys: tuple[Path, Path]
) -> None:
    private, public = ec_keys
    src = make_source(tmp_path / "src")
    sign_model(src, load_private_key(private), signature_path=src / "release.sig")
    repo = add_to_hf_cache(tmp_path / "hub", "org/tiny", src)
    verify_model(
        repo.snapshot, load_public_key(public), signature_path=repo.snapshot / "release.sig"
    )


def test_glassbox_snapshot_signature_verifies_with_model_signing(
    cached: CachedRepo, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = ec_keys
    sig = tmp_path / "snap.sig"
    sign_model(cached.snapshot, load_private_key(private), signature_path=sig)
    _ms_verify(cached.snapshot, public, sig, allow_symlinks=True)
    _ms_verify(tmp_path / "src", public, sig, allow_symlinks=None)  # config from the signature
    # Without its symlink option model_signing refuses the snapshot outright.
    with pytest.raises(ValueError, match="symlink"):
        _ms_verify(cached.snapshot, public, sig, allow_symlinks=None)
    (cached.snapshot / "config.json").resolve().write_text("{}")
    with pytest.raises(ValueError, match=r"config\.json"):
        _ms_verify(cached.snapshot, public, sig, allow_symlinks=True)


def test_model_signing_snapshot_signature_verifies_with_glassbox(
    cached: CachedRepo, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = ec_keys
    theirs, ours = tmp_path / "theirs.sig", tmp_path / "ours.sig"
    (
        model_signing.signing.Config()
        .use_elliptic_key_signer(private_key=private)
        .set_hashing_config(_ms_config(True))
        .sign(cached.snapshot, theirs)
    )
    pub = load_public_key(public)
    manifest = verify_model(cached.snapshot, pub, signature_path=theirs)
    assert manifest.method.allow_symlinks is True  # recorded by model_signing, followed here
    verify_model(tmp_path / "src", pub, signature_path=theirs)
    # Same subject (name and root digest) and resources as Glassbox's own signature.
    sign_model(cached.snapshot, load_private_key(private), signature_path=ours)
    a, b = _statement(ours), _statement(theirs)
    assert a["subject"] == b["subject"]
    assert a["predicate"]["resources"] == b["predicate"]["resources"]


def test_model_signing_signature_with_escaping_link_is_refused(
    cached: CachedRepo, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """model_signing follows any link when allowed; Glassbox still holds the repo boundary."""
    private, public = ec_keys
    outside = tmp_path / "outside.json"
    outside.write_text('{"evil": true}')
    (cached.snapshot / "extra.json").symlink_to(outside)
    theirs = tmp_path / "theirs.sig"
    (
        model_signing.signing.Config()
        .use_elliptic_key_signer(private_key=private)
        .set_hashing_config(_ms_config(True))
        .sign(cached.snapshot, theirs)
    )
    with pytest.raises(InputError, match="points outside the cached repository"):
        verify_model(cached.snapshot, load_public_key(public), signature_path=theirs)


def test_snapshot_copied_out_with_links_resolved(
    cached: CachedRepo, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """What ``snapshot_download(local_dir=...)`` or ``cp -rL`` gives: a plain copy again."""
    private, public = ec_keys
    sig = tmp_path / "snap.sig"
    sign_model(cached.snapshot, load_private_key(private), signature_path=sig)
    copy = tmp_path / "copied"
    shutil.copytree(cached.snapshot, copy, symlinks=False)
    verify_model(copy, load_public_key(public), signature_path=sig)


def test_sign_does_not_write_into_the_cache(cached: CachedRepo, ec_keys: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="give --signature"):
        sign_model(cached.snapshot, load_private_key(ec_keys[0]))
    assert not (cached.snapshot / "model.sig").exists()
