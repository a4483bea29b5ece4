"""OMS model signatures: sign, verify, tampering named file by file, hostile signatures."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from glassbox.digest import HashMethod
from glassbox.errors import InputError, VerificationError
from glassbox.sign import (
    OMS_PREDICATE_TYPE,
    ModelVerificationError,
    default_signature_path,
    generate_private_key,
    load_private_key,
    load_public_key,
    make_statement,
    read_bundle,
    sign_model,
    sign_statement,
    subject,
    verify_model,
    write_bundle,
)
from tests.sign.helpers import make_model

KEY = generate_private_key()
PUB = KEY.public_key()


def _payload(signature: Path) -> dict[str, Any]:
    import base64

    bundle = read_bundle(signature)
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def test_sign_and_verify_directory(model_dir: Path) -> None:
    signed = sign_model(model_dir, KEY)
    assert signed.signature_path == model_dir / "model.sig" == default_signature_path(model_dir)
    names = [item.name for item in signed.manifest.items]
    # OMS order (path components), the empty file included, .git and the signature left out.
    assert names == ["a/b", "a.b", "config.json", "empty.txt", "tokenizer/vocab.txt", "weights.bin"]
    statement = _payload(signed.signature_path)
    assert statement["predicateType"] == OMS_PREDICATE_TYPE
    assert statement["subject"] == [
        {"name": "tiny-model", "digest": {"sha256": signed.manifest.root_digest.hex()}}
    ]
    serialization = statement["predicate"]["serialization"]
    assert serialization["method"] == "files"
    assert "model.sig" in serialization["ignore_paths"]
    assert ".git" in serialization["ignore_paths"]
    verified = verify_model(model_dir, PUB)
    assert verified.root_digest == signed.manifest.root_digest
    # Re-signing replaces the old signature only when asked to; the old one is never hashed
    # into the new one.
    before = signed.signature_path.read_bytes()
    with pytest.raises(InputError, match="a signature already exists; refusing to overwrite"):
        sign_model(model_dir, KEY)
    assert signed.signature_path.read_bytes() == before
    resigned = sign_model(model_dir, KEY, overwrite=True)
    assert resigned.manifest.root_digest == signed.manifest.root_digest


def test_single_file_model(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x00" * 1000 + b"tail")
    signed = sign_model(weights, KEY)
    assert signed.signature_path == tmp_path / "model.safetensors.sig"
    assert [item.name for item in signed.manifest.items] == ["."]
    verify_model(weights, PUB)
    weights.write_bytes(b"\x00" * 1000 + b"TAIL")
    with pytest.raises(ModelVerificationError, match=r"modified: \.") as info:
        verify_model(weights, PUB)
    assert info.value.diff.modified == (".",)
    with pytest.raises(InputError, match="cannot overwrite the model file"):
        sign_model(weights, KEY, signature_path=weights)


@pytest.mark.parametrize("method", ["blake3", "sha256-sharded-1000", "sha256-sharded-7"])
def test_verify_follows_the_recorded_method(model_dir: Path, method: str) -> None:
    signed = sign_model(model_dir, KEY, method=HashMethod.parse(method))
    assert verify_model(model_dir, PUB).method == HashMethod.parse(method)
    assert signed.manifest.method.name == method
    data = bytearray((model_dir / "weights.bin").read_bytes())
    data[-1] ^= 1  # the last shard only
    (model_dir / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(ModelVerificationError) as info:
        verify_model(model_dir, PUB)
    assert info.value.diff.modified == ("weights.bin",)


def _flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda m: _flip_byte(m / "weights.bin", 5000), {"modified": ("weights.bin",)}),
        (
            lambda m: (m / "tokenizer" / "extra.txt").write_text("x"),
            {"added": ("tokenizer/extra.txt",)},
        ),
        (lambda m: (m / "config.json").unlink(), {"removed": ("config.json",)}),
        (lambda m: (m / "empty.txt").write_bytes(b"\0"), {"modified": ("empty.txt",)}),
        (
            lambda m: (m / "a" / "b").rename(m / "a" / "c"),
            {"added": ("a/c",), "removed": ("a/b",)},
        ),
    ],
    ids=["byte-changed", "file-added", "file-removed", "empty-file-filled", "file-renamed"],
)
def test_tampering_is_detected_and_named(
    model_dir: Path, tamper: Any, expected: dict[str, tuple[str, ...]]
) -> None:
    sign_model(model_dir, KEY)
    tamper(model_dir)
    with pytest.raises(ModelVerificationError) as info:
        verify_model(model_dir, PUB)
    diff = info.value.diff
    assert {k: v for k, v in vars(diff).items() if v} == expected
    for names in expected.values():
        for name in names:
            assert name in str(info.value)
    assert info.value.exit_code == 1


def test_rename_is_reported_as_such(model_dir: Path) -> None:
    sign_model(model_dir, KEY)
    (model_dir / "config.json").rename(model_dir / "config.old")
    with pytest.raises(ModelVerificationError, match=r"renamed: config.json -> config.old"):
        verify_model(model_dir, PUB)


def test_warm_cache_never_hides_a_change(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same size, same (restored) mtime, different bytes: verify --cache must still see it."""
    # The cache stores only files older than its racy window (2 s); wait it out for real.
    time.sleep(2.1)
    sign_model(model_dir, KEY, use_cache=True)
    import glassbox.digest.model as digest_model

    real_hash_range = digest_model.hash_range

    def must_not_hash(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError(f"cache was cold: hashed {args[0]}")

    # Fault injection proves the cache is warm: an unchanged model verifies without reading.
    monkeypatch.setattr(digest_model, "hash_range", must_not_hash)
    verify_model(model_dir, PUB, use_cache=True)
    monkeypatch.setattr(digest_model, "hash_range", real_hash_range)

    weights = model_dir / "weights.bin"
    before = weights.stat()
    time.sleep(0.05)  # past the kernel's coarse clock tick, so ctime must move
    _flip_byte(weights, 100)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = weights.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with pytest.raises(ModelVerificationError) as info:
        verify_model(model_dir, PUB, use_cache=True)
    assert info.value.diff.modified == ("weights.bin",)


def test_wrong_key_and_missing_signature(model_dir: Path) -> None:
    sign_model(model_dir, KEY)
    with pytest.raises(VerificationError) as info:
        verify_model(model_dir, generate_private_key().public_key())
    assert not isinstance(info.value, ModelVerificationError)
    (model_dir / "model.sig").unlink()
    with pytest.raises(InputError, match="signature file not found"):
        verify_model(model_dir, PUB)
    with pytest.raises(InputError, match="does not exist"):
        verify_model(model_dir / "nope", PUB)


def test_signature_outside_or_in_a_subdirectory(model_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.sig"
    sign_model(model_dir, KEY, signature_path=outside)
    ignored = _payload(outside)["predicate"]["serialization"]["ignore_paths"]
    assert "elsewhere.sig" not in ignored
    assert "model.sig" in ignored  # the default name is never content, wherever this one is
    verify_model(model_dir, PUB, signature_path=outside)
    # A path that reaches the model through ".." is still recognised as inside it.
    roundabout = model_dir / ".." / model_dir.name / "round.sig"
    sign_model(model_dir, KEY, signature_path=roundabout)
    assert "round.sig" in _payload(roundabout)["predicate"]["serialization"]["ignore_paths"]
    verify_model(model_dir, PUB, signature_path=roundabout)
    (model_dir / "round.sig").unlink()
    (model_dir / "sigs").mkdir()
    inside = model_dir / "sigs" / "release.sig"
    sign_model(model_dir, KEY, signature_path=inside)
    assert "sigs/release.sig" in _payload(inside)["predicate"]["serialization"]["ignore_paths"]
    verify_model(model_dir, PUB, signature_path=inside)


def test_ignore_paths_are_recorded_and_followed(model_dir: Path) -> None:
    (model_dir / "notes").mkdir()
    (model_dir / "notes" / "todo.md").write_text("x")
    signed = sign_model(model_dir, KEY, ignore_paths=["notes", "a.b"])
    assert {"notes", "a.b"} <= set(signed.manifest.ignore_paths)
    assert not any(i.path.startswith("notes") or i.path == "a.b" for i in signed.manifest.items)
    (model_dir / "notes" / "todo.md").write_text("changed")
    (model_dir / "a.b").unlink()
    verify_model(model_dir, PUB)


def test_model_directory_may_be_renamed(model_dir: Path, tmp_path: Path) -> None:
    sign_model(model_dir, KEY)
    moved = model_dir.rename(tmp_path / "renamed")
    verify_model(moved, PUB)


def test_empty_model_and_symlink_escape(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no files"):
        sign_model(empty, KEY)
    assert not (empty / "model.sig").exists()
    model = make_model(tmp_path / "m")
    (tmp_path / "secret").write_text("outside")
    (model / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(InputError, match="outside the model"):
        sign_model(model, KEY)


def _forged(model_dir: Path, names: list[str], method: HashMethod | None = None) -> Path:
    """A correctly signed OMS signature listing ``names`` (hostile, but genuinely signed).

    Built by hand, not through ``Manifest``, so names ``Manifest`` itself would reject still
    reach the verifier.
    """
    method = method or HashMethod()
    digests = [bytes([i]) * 32 for i in range(len(names))]
    serialization: dict[str, Any] = {
        "method": "files" if method.shard_size is None else "shards",
        "hash_type": method.algorithm,
        "allow_symlinks": False,
    }
    if method.shard_size is not None:
        serialization["shard_size"] = method.shard_size
    statement = make_statement(
        [subject("m", hashlib.sha256(b"".join(digests)).digest())],
        OMS_PREDICATE_TYPE,
        {
            "serialization": serialization,
            "resources": [
                {"name": n, "algorithm": method.name, "digest": d.hex()}
                for n, d in zip(names, digests, strict=True)
            ],
        },
    )
    path = model_dir / "model.sig"
    write_bundle(sign_statement(statement, KEY), path)
    return path


@pytest.mark.parametrize(
    ("names", "method", "message"),
    [
        (["../outside.bin"], HashMethod(), "escapes the model directory"),
        (["ok", "a/../../x"], HashMethod(), "escapes the model directory"),
        (["/etc/passwd"], HashMethod(), "absolute path"),
        (["../w:0:1"], HashMethod("sha256", 1), "escapes the model directory"),
        (["a//b"], HashMethod(), "not a normalized relative path"),
        (["./a"], HashMethod(), "not a normalized relative path"),
        (["w"], HashMethod("sha256", 1), "is not 'PATH:START:END'"),
        ([".", "other"], HashMethod(), "single-file model"),
        (["w:0:\u00b2"], HashMethod("sha256", 1), "is not 'PATH:START:END'"),
        (["w:0:\u0661"], HashMethod("sha256", 1), "is not 'PATH:START:END'"),
    ],
)
def test_hostile_resource_names_are_refused(
    model_dir: Path, names: list[str], method: HashMethod, message: str
) -> None:
    _forged(model_dir, names, method)
    with pytest.raises(InputError, match=message):
        verify_model(model_dir, PUB)


def test_inconsistent_or_unsupported_predicates(model_dir: Path) -> None:
    signed = sign_model(model_dir, KEY)
    statement = _payload(signed.signature_path)

    def resign(change: Any) -> None:
        changed = json.loads(json.dumps(statement))
        change(changed)
        write_bundle(sign_statement(changed, KEY), signed.signature_path)

    resign(lambda s: s["subject"][0]["digest"].update(sha256="00" * 32))
    with pytest.raises(InputError, match=r"subject digest .* does not match its resources"):
        verify_model(model_dir, PUB)
    resign(lambda s: s["predicate"]["serialization"].update(hash_type="blake2"))
    with pytest.raises(InputError, match="'blake2' is not supported"):
        verify_model(model_dir, PUB)
    resign(lambda s: s["predicate"]["serialization"].update(method="tensors"))
    with pytest.raises(InputError, match="unknown serialization method"):
        verify_model(model_dir, PUB)
    resign(lambda s: s.update(predicateType="https://model_signing/Digests/v0.1"))
    with pytest.raises(InputError, match=r"0\.2 signature format"):
        verify_model(model_dir, PUB)
    resign(lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"))
    with pytest.raises(InputError, match="not a model signature"):
        verify_model(model_dir, PUB)
    resign(lambda s: s["predicate"].update(resources=[]))
    with pytest.raises(InputError, match="lists no files"):
        verify_model(model_dir, PUB)


def test_directory_signature_on_a_file_and_back(model_dir: Path, tmp_path: Path) -> None:
    sig = tmp_path / "dir.sig"
    sign_model(model_dir, KEY, signature_path=sig)
    with pytest.raises(InputError, match="signs a model directory"):
        verify_model(model_dir / "weights.bin", PUB, signature_path=sig)
    file_sig = tmp_path / "file.sig"
    sign_model(model_dir / "weights.bin", KEY, signature_path=file_sig)
    with pytest.raises(InputError, match="signs a single-file model"):
        verify_model(model_dir, PUB, signature_path=file_sig)


def test_keys_from_files_and_ed25519(model_dir: Path, ec_keys: tuple[Path, Path]) -> None:
    private_path, public_path = ec_keys
    sign_model(model_dir, load_private_key(private_path))
    verify_model(model_dir, load_public_key(public_path))
    # Ed25519 works within Glassbox (model_signing itself accepts only P-curves).
    ed = generate_private_key("ed25519")
    sign_model(model_dir, ed, overwrite=True)
    verify_model(model_dir, ed.public_key())


def test_progress_reports_every_byte_hashed(model_dir: Path) -> None:
    seen: list[int] = []
    signed = sign_model(model_dir, KEY, use_cache=False, progress=seen.append)
    assert sum(seen) == signed.manifest.total_size > 0
    seen.clear()
    verify_model(model_dir, PUB, progress=seen.append)
    assert sum(seen) == signed.manifest.total_size


def test_default_verify_ignores_a_poisoned_cache(model_dir: Path) -> None:
    """Why verify re-hashes unless told otherwise: whoever edits the files can edit the cache.

    Simulate that attacker: change the weights, then rewrite the cache entry for the file's new
    (inode, size, mtime, ctime) with the digest that was signed.
    """
    from glassbox.digest.cache import DigestCache, FileKey

    signed = sign_model(model_dir, KEY, use_cache=False)
    weights = model_dir / "weights.bin"
    original = signed.manifest.file_digests()["weights.bin"]
    _flip_byte(weights, 10)
    with DigestCache() as cache:
        cache.store([(FileKey.of(weights.stat()), original)], "sha256")
    with pytest.raises(ModelVerificationError, match=r"modified: weights\.bin"):
        verify_model(model_dir, PUB)
    # Trusting the cache (verify --cache) is exactly as safe as the cache: here, fooled.
    verify_model(model_dir, PUB, use_cache=True)
