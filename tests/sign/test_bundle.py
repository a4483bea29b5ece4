"""Sigstore bundle v0.3: layout, file round trip, malformed and hostile bundles, fuzzing."""

from __future__ import annotations

import base64
import contextlib
import copy
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.digest import HashMethod, Manifest, ManifestItem
from glassbox.errors import GlassboxError, InputError, VerificationError
from glassbox.sign import (
    BUNDLE_MEDIA_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    OMS_PREDICATE_TYPE,
    bundle_envelope,
    dsse_sign,
    generate_private_key,
    key_hint,
    make_statement,
    manifest_from_statement,
    parse_bundle,
    read_bundle,
    sign_statement,
    subject,
    verify_bundle,
    write_bundle,
)
from glassbox.sign import bundle as bundle_module

KEY = generate_private_key()
PUB = KEY.public_key()


def _oms_statement(method: HashMethod | None = None) -> dict[str, Any]:
    method = method or HashMethod()
    if method.shard_size is None:
        items = (ManifestItem("w.bin", b"\x01" * 32, 5), ManifestItem("a/b", b"\x02" * 32, 3))
    else:
        items = (
            ManifestItem("w.bin:0:4", b"\x01" * 32, 4),
            ManifestItem("w.bin:4:5", b"\x02" * 32, 1),
        )
    manifest = Manifest("m", method, items, (".git", "model.sig"))
    return make_statement(
        [subject("m", manifest.root_digest)],
        OMS_PREDICATE_TYPE,
        {"serialization": manifest.serialization(), "resources": manifest.resources()},
    )


STATEMENT = _oms_statement()
BUNDLE = sign_statement(STATEMENT, KEY)


def test_layout_matches_model_signing() -> None:
    assert list(BUNDLE) == ["mediaType", "verificationMaterial", "dsseEnvelope"]
    assert BUNDLE["mediaType"] == BUNDLE_MEDIA_TYPE
    assert BUNDLE["verificationMaterial"] == {
        "publicKey": {"hint": key_hint(PUB)},
        "tlogEntries": [],
    }
    envelope = BUNDLE["dsseEnvelope"]
    assert envelope["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert [set(s) for s in envelope["signatures"]] == [{"sig", "keyid"}]
    assert envelope["signatures"][0]["keyid"] == ""
    assert verify_bundle(BUNDLE, PUB) == STATEMENT


def test_file_round_trip_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "model.sig"
    write_bundle(BUNDLE, path)
    assert read_bundle(path) == BUNDLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.sig"]
    write_bundle(sign_statement(_oms_statement(HashMethod("blake3")), KEY), path)
    assert verify_bundle(read_bundle(path), PUB)["predicate"]["serialization"]["hash_type"] == (
        "blake3"
    )


def test_failed_write_keeps_the_old_signature_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.sig"
    write_bundle(BUNDLE, path)
    assert path.stat().st_mode & 0o777 == 0o644
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(InputError, match=r"model\.sig: cannot write signature: No space left"):
        write_bundle(sign_statement(_oms_statement(HashMethod("blake3")), KEY), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.sig"]


def _resigned(statement: dict[str, Any]) -> dict[str, Any]:
    return sign_statement(statement, KEY)


def _with_payload(bundle: dict[str, Any], payload: bytes) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    out["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    return out


def test_wrong_key_is_a_verification_failure() -> None:
    other = generate_private_key().public_key()
    with pytest.raises(VerificationError, match="not by the given key"):
        verify_bundle(BUNDLE, other)
    # Without the (unauthenticated) hint, the signature check itself catches it.
    no_hint = copy.deepcopy(BUNDLE)
    del no_hint["verificationMaterial"]["publicKey"]["hint"]
    with pytest.raises(VerificationError, match="does not verify"):
        verify_bundle(no_hint, other)
    assert verify_bundle(no_hint, PUB) == STATEMENT


def test_signature_over_a_different_payload_fails() -> None:
    changed = copy.deepcopy(STATEMENT)
    changed["predicate"]["resources"][0]["digest"] = "00" * 32
    forged = _with_payload(BUNDLE, json.dumps(changed).encode())
    with pytest.raises(VerificationError, match="does not verify"):
        verify_bundle(forged, PUB)
    # A signature lifted from another bundle does not verify either.
    other = _resigned(_oms_statement(HashMethod("blake3")))
    spliced = copy.deepcopy(BUNDLE)
    spliced["dsseEnvelope"]["signatures"] = other["dsseEnvelope"]["signatures"]
    with pytest.raises(VerificationError):
        verify_bundle(spliced, PUB)


def test_wrong_payload_type() -> None:
    relabelled = copy.deepcopy(BUNDLE)
    relabelled["dsseEnvelope"]["payloadType"] = "application/json"
    with pytest.raises(InputError, match="payloadType is 'application/json'"):
        verify_bundle(relabelled, PUB)
    # Even correctly signed, a non-in-toto payload is not a statement.
    envelope = dsse_sign(b"{}", "application/json", KEY)
    other = {**BUNDLE, "dsseEnvelope": envelope.to_dict()}
    with pytest.raises(InputError, match="payloadType"):
        verify_bundle(other, PUB)


def test_structure_errors() -> None:
    def mutated(**changes: Any) -> dict[str, Any]:
        out = copy.deepcopy(BUNDLE)
        out.update(changes)
        return out

    cases: list[tuple[Any, str]] = [
        ([], "expected a JSON object"),
        (
            mutated(mediaType="application/vnd.dev.sigstore.bundle.v0.1+json"),
            "not a Sigstore bundle v0.3",
        ),
        (mutated(verificationMaterial=None), "no verificationMaterial"),
        (mutated(verificationMaterial={"certificate": {"rawBytes": "AA=="}}), "certificate-based"),
        (mutated(verificationMaterial={"tlogEntries": []}), "no verificationMaterial.publicKey"),
        (mutated(verificationMaterial={"publicKey": {"hint": 5}}), "hint is not a string"),
        ({k: v for k, v in BUNDLE.items() if k != "dsseEnvelope"}, "no dsseEnvelope"),
        (
            {**{k: v for k, v in BUNDLE.items() if k != "dsseEnvelope"}, "messageSignature": {}},
            "message digest",
        ),
        (
            _with_payload(BUNDLE, b"x")
            | {"dsseEnvelope": {**BUNDLE["dsseEnvelope"], "payload": "%%%"}},
            "not valid base64",
        ),
    ]
    for bundle, message in cases:
        with pytest.raises(InputError, match=message):
            verify_bundle(bundle, PUB)
    two = copy.deepcopy(BUNDLE)
    two["dsseEnvelope"]["signatures"] *= 2
    with pytest.raises(InputError, match="exactly one signature, found 2"):
        verify_bundle(two, PUB)


def test_legacy_protobuf_fields_are_tolerated() -> None:
    # Older model_signing bundles carried rawBytes/keyDetails and no tlogEntries.
    legacy = copy.deepcopy(BUNDLE)
    legacy["verificationMaterial"] = {
        "publicKey": {"rawBytes": "AAAA", "keyDetails": "PKIX_ECDSA_P256_SHA_256"}
    }
    assert verify_bundle(legacy, PUB) == STATEMENT


def test_read_errors(tmp_path: Path) -> None:
    path = tmp_path / "model.sig"
    text = json.dumps(BUNDLE)
    for content, message in [
        (text[: len(text) // 2], "invalid JSON"),
        ("", "invalid JSON"),
        ("\udcff", None),
    ]:
        if message is None:
            path.write_bytes(b"\xff\xfe")
            message = "not UTF-8"
        else:
            path.write_text(content)
        with pytest.raises(InputError, match=message) as info:
            read_bundle(path)
        assert str(path) in str(info.value)
    with pytest.raises(InputError, match="signature file not found"):
        read_bundle(tmp_path / "missing.sig")
    with pytest.raises(InputError, match="is a directory"):
        read_bundle(tmp_path)
    path.write_bytes(b"[" * 200_000)
    with pytest.raises(InputError, match=r"nested too deeply|invalid JSON"):
        read_bundle(path)


def test_oversized_bundle_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_BYTES", 1024)
    path = tmp_path / "model.sig"
    path.write_text(json.dumps(BUNDLE))
    assert path.stat().st_size > 1024
    with pytest.raises(InputError, match=r"too large to be a signature file \(over 1024 bytes\)"):
        read_bundle(path)


def test_multiple_subjects_are_not_a_model_signature() -> None:
    statement = copy.deepcopy(STATEMENT)
    statement["subject"].append(subject("other", b"\x03" * 32))
    verified = verify_bundle(_resigned(statement), PUB)
    with pytest.raises(InputError, match="exactly one subject, found 2"):
        manifest_from_statement(verified)


def test_shard_statement_round_trip() -> None:
    statement = _oms_statement(HashMethod("sha256", 4))
    manifest = manifest_from_statement(verify_bundle(_resigned(statement), PUB))
    assert manifest.method == HashMethod("sha256", 4)
    assert [(i.name, i.size) for i in manifest.items] == [("w.bin:0:4", 4), ("w.bin:4:5", 1)]
    assert statement["predicate"]["resources"][0]["algorithm"] == "sha256-sharded-4"


# --- property tests: no input makes the parsers fail with anything but a GlassboxError ---

SERIALIZED = json.dumps(BUNDLE).encode()
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def _check_all_the_way(bundle_bytes: bytes) -> None:
    try:
        bundle = parse_bundle(bundle_bytes)
        statement = verify_bundle(bundle, PUB)
        manifest_from_statement(statement)
    except GlassboxError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_byte_mutations_never_crash(data: st.DataObject) -> None:
    raw = bytearray(SERIALIZED)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif op == "delete":
            del raw[pos : pos + data.draw(st.integers(1, 50))]
        elif op == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del raw[pos:]
    _check_all_the_way(bytes(raw))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.copy(value)
    out[path[0]] = _replace(value[path[0]], path[1:], new)
    return out


BUNDLE_PATHS = _paths(BUNDLE)
STATEMENT_PATHS = _paths(STATEMENT)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(BUNDLE_PATHS), JSON_VALUES)
def test_bundle_value_substitutions_never_crash(path: tuple[Any, ...], new: Any) -> None:
    _check_all_the_way(json.dumps(_replace(BUNDLE, path, new)).encode())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STATEMENT_PATHS), JSON_VALUES)
def test_signed_garbage_statements_never_crash(path: tuple[Any, ...], new: Any) -> None:
    # Correctly signed, so every check after the signature is exercised too.
    statement = _replace(STATEMENT, path, new)
    envelope = dsse_sign(json.dumps(statement).encode(), IN_TOTO_PAYLOAD_TYPE, KEY)
    bundle = {**BUNDLE, "dsseEnvelope": envelope.to_dict()}
    try:
        manifest = manifest_from_statement(verify_bundle(bundle, PUB))
    except GlassboxError:
        return
    # Whatever was accepted is a consistent manifest whose names stay inside the model.
    for item in manifest.items:
        assert not item.path.startswith("/") and ".." not in item.path.split("/")
    assert bundle_envelope(bundle).payload_type == IN_TOTO_PAYLOAD_TYPE


NAME_PARTS = st.text(alphabet="ab:./\\0123\u00b2\u0661\x00 ", max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(NAME_PARTS, min_size=1, max_size=4),
    st.sampled_from([HashMethod(), HashMethod("sha256", 4), HashMethod("blake3")]),
)
def test_resource_names_never_crash_or_escape(names: list[str], method: HashMethod) -> None:
    statement = _oms_statement(method)
    digests = [bytes([i]) * 32 for i in range(len(names))]
    statement["predicate"]["resources"] = [
        {"name": n, "algorithm": method.name, "digest": d.hex()}
        for n, d in zip(names, digests, strict=True)
    ]
    # A consistent subject digest, so the checks after the root-digest check run too.
    pairs = list(zip(names, digests, strict=True))
    try:
        ordered = sorted(pairs, key=lambda p: ManifestItem(p[0], p[1], 0).sort_key())
    except ValueError:
        ordered = pairs
    root = hashlib.sha256(b"".join(d for _, d in ordered)).hexdigest()
    statement["subject"][0]["digest"]["sha256"] = root
    try:
        manifest = manifest_from_statement(verify_bundle(_resigned(statement), PUB))
    except GlassboxError:
        return
    for item in manifest.items:
        assert item.path == "." or not (item.path.startswith("/") or ".." in item.path.split("/"))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(STATEMENT_PATHS), JSON_VALUES)
def test_unchecked_statements_never_crash(path: tuple[Any, ...], new: Any) -> None:
    # manifest_from_statement is public: callers may hand it a statement nobody parsed.
    with contextlib.suppress(GlassboxError):
        manifest_from_statement(_replace(STATEMENT, path, new))
