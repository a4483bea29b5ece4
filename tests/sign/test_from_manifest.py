"""``sign --from-manifest``: known digests give the very signature that signing the files gives.

Ed25519 signatures are deterministic, so there the whole bundle is byte-equal; with ECDSA the
signed payload (the in-toto statement) is. Hostile manifests are refused with one line and
leave no signature behind.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.cli.main import cli
from glassbox.digest import HashMethod, hash_model, manifest_from_json, read_manifest_file
from glassbox.errors import InputError
from glassbox.sign import (
    generate_private_key,
    load_private_key,
    load_public_key,
    oms_statement,
    read_bundle,
    sign_manifest,
    sign_model,
    verify_model,
    write_keypair,
)


def file_list(model: Path, name: str | None = None) -> dict[str, Any]:
    """What a hub reports: every file's path, size and SHA-256 (computed here from the files)."""
    files = []
    for path in sorted(p for p in model.rglob("*") if p.is_file() and ".git" not in p.parts):
        data = path.read_bytes()
        files.append(
            {
                "path": path.relative_to(model).as_posix(),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    return {"model_name": name or model.name, "files": files}


def payload(bundle: dict[str, Any]) -> bytes:
    return base64.b64decode(bundle["dsseEnvelope"]["payload"])


@pytest.fixture
def ed_keys(tmp_path: Path) -> tuple[Path, Path]:
    return write_keypair(generate_private_key("ed25519"), tmp_path / "ed")


def test_bundle_is_byte_equal_to_signing_the_files(
    model_dir: Path, ed_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key = load_private_key(ed_keys[0])
    from_files = sign_model(model_dir, key, signature_path=tmp_path / "files.sig")
    listed = tmp_path / "listing.json"
    listed.write_text(json.dumps(file_list(model_dir)))
    from_list = sign_manifest(read_manifest_file(listed), key, tmp_path / "list.sig")
    assert (tmp_path / "files.sig").read_bytes() == (tmp_path / "list.sig").read_bytes()
    assert payload(from_files.bundle) == payload(from_list.bundle)
    verify_model(model_dir, load_public_key(ed_keys[1]), signature_path=tmp_path / "list.sig")


def test_ecdsa_payload_is_byte_equal_and_verifies_with_model_signing(
    model_dir: Path, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    model_signing = pytest.importorskip("model_signing")
    key = load_private_key(ec_keys[0])
    from_files = sign_model(model_dir, key, signature_path=tmp_path / "files.sig")
    manifest = manifest_from_json(file_list(model_dir), "listing")
    from_list = sign_manifest(manifest, key, tmp_path / "list.sig")
    assert payload(from_files.bundle) == payload(from_list.bundle)
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=ec_keys[1]).verify(
        model_dir, tmp_path / "list.sig"
    )


@pytest.mark.parametrize(
    "method", [HashMethod(), HashMethod("blake3"), HashMethod("sha256", 1000)], ids=str
)
def test_digest_json_output_is_accepted(
    model_dir: Path, ed_keys: tuple[Path, Path], tmp_path: Path, method: HashMethod
) -> None:
    out = CliRunner().invoke(cli, ["digest", str(model_dir), "--json", "--method", method.name])
    assert out.exit_code == 0, out.stderr
    listed = tmp_path / "digest.json"
    listed.write_text(out.stdout)
    key = load_private_key(ed_keys[0])
    sign_model(model_dir, key, signature_path=tmp_path / "files.sig", method=method)
    sign_manifest(read_manifest_file(listed), key, tmp_path / "list.sig")
    assert (tmp_path / "files.sig").read_bytes() == (tmp_path / "list.sig").read_bytes()


def test_single_file_model(tmp_path: Path, ed_keys: tuple[Path, Path]) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(3000))
    key = load_private_key(ed_keys[0])
    sign_model(weights, key, signature_path=tmp_path / "files.sig")
    data = weights.read_bytes()
    listing = [{"path": ".", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    manifest = manifest_from_json(listing, "listing", model_name="model.gguf")
    sign_manifest(manifest, key, tmp_path / "list.sig")
    assert (tmp_path / "files.sig").read_bytes() == (tmp_path / "list.sig").read_bytes()


def test_extra_ignore_paths_match_sign_ignore(
    model_dir: Path, ed_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    (model_dir / "notes").mkdir()
    (model_dir / "notes" / "draft.md").write_text("left out")
    key = load_private_key(ed_keys[0])
    sign_model(model_dir, key, signature_path=tmp_path / "files.sig", ignore_paths=["notes"])
    listing = file_list(model_dir)
    listing["files"] = [f for f in listing["files"] if not f["path"].startswith("notes/")]
    listing["ignore_paths"] = ["notes"]
    sign_manifest(manifest_from_json(listing, "listing"), key, tmp_path / "list.sig")
    assert (tmp_path / "files.sig").read_bytes() == (tmp_path / "list.sig").read_bytes()


_NAME = st.text(string.ascii_letters + string.digits + "_-. é", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..") and not s.startswith(".git") and s != "model.sig"
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.dictionaries(
        st.lists(_NAME, min_size=1, max_size=3).map("/".join),
        st.binary(max_size=200),
        min_size=1,
        max_size=6,
    )
)
def test_statement_equals_hashing_for_any_tree(
    tmp_path_factory: Any, files: dict[str, bytes]
) -> None:
    root = tmp_path_factory.mktemp("m") / "model"
    root.mkdir()
    written: dict[str, bytes] = {}
    for rel, data in files.items():
        target = root / rel
        if any(p.is_file() for p in [*target.parents][: len(target.relative_to(root).parts) - 1]):
            continue  # a file already sits where this path needs a directory
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written[rel] = data
    listing = {
        "model_name": "model",
        "files": [
            {"path": rel, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for rel, d in written.items()
        ],
    }
    known = manifest_from_json(listing, "listing")
    hashed = hash_model(root, ignore_paths=["model.sig"], use_cache=False)
    assert oms_statement(known) == oms_statement(hashed)


# --- hostile manifests ----------------------------------------------------------------------

GOOD = {"path": "a.bin", "size": 3, "sha256": "ab" * 32}


def with_files(*files: Any) -> dict[str, Any]:
    return {"model_name": "m", "files": list(files)}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (with_files({**GOOD, "path": "../etc/passwd"}), "escapes the model directory"),
        (with_files({**GOOD, "path": "a/../../x"}), "escapes the model directory"),
        (with_files({**GOOD, "path": "/etc/passwd"}), "absolute path"),
        (with_files({**GOOD, "path": "a//b"}), "not a normalized relative path"),
        (with_files({**GOOD, "path": "./a"}), "not a normalized relative path"),
        (with_files({**GOOD, "path": "a/"}), "not a normalized relative path"),
        (with_files({**GOOD, "path": ""}), "empty or contains NUL"),
        (with_files({**GOOD, "path": "a\x00b"}), "empty or contains NUL"),
        (with_files({**GOOD, "path": "\ud800"}), "not valid UTF-8"),
        (with_files(GOOD, GOOD), "listed twice"),
        (with_files(GOOD, {**GOOD, "path": "a.bin/x"}), "as a file and as a directory"),
        (with_files({**GOOD, "path": ".git/config"}), "ignore path '.git'"),
        (with_files({**GOOD, "path": "model.sig"}), "ignore path 'model.sig'"),
        (with_files(GOOD, {**GOOD, "path": "."}), "single-file model"),
        (with_files({**GOOD, "sha256": "ab" * 31}), "64 hex digits"),
        (with_files({**GOOD, "sha256": "zz" * 32}), "64 hex digits"),
        (with_files({**GOOD, "sha256": 12}), "64 hex digits"),
        (with_files({**GOOD, "size": -1}), "out of range"),
        (with_files({**GOOD, "size": 2**70}), "out of range"),
        (with_files({**GOOD, "size": True}), "must be an integer"),
        (with_files({**GOOD, "size": 3.0}), "must be an integer"),
        (with_files({**GOOD, "size": "3"}), "must be an integer"),
        (with_files({"path": "a", "size": 1}), "has no 'sha256'"),
        (with_files({**GOOD, "lfs": {}}), "unknown key 'lfs'"),
        (with_files("a.bin"), "is not an object"),
        (with_files(), "non-empty list"),
        ({"files": [GOOD]}, "no model name"),
        ({"model_name": "m", "files": [GOOD], "extra": 1}, "unknown key 'extra'"),
        ({"model_name": "m", "files": [GOOD], "ignore_paths": ["../x"]}, "escapes"),
        ("just a string", "expected a JSON object"),
        (
            {
                "model_name": "m",
                "method": "sha256",
                "items": [{"name": "a", "digest": "ab" * 32, "size": 1}],
                "root_digest": {"sha256": "00" * 32},
            },
            "root_digest does not match",
        ),
        (
            {
                "model_name": "m",
                "method": "sha256",
                "items": [{"name": "../a", "digest": "ab" * 32, "size": 1}],
            },
            "escapes",
        ),
        (
            {
                "model_name": "m",
                "method": "sha256-sharded-10",
                "items": [{"name": "a:0:20", "digest": "ab" * 32, "size": 20}],
            },
            "does not fit",
        ),
        (
            {
                "model_name": "m",
                "method": "md5",
                "items": [{"name": "a", "digest": "ab" * 32, "size": 1}],
            },
            "unknown hash method",
        ),
    ],
)
def test_hostile_manifest_is_refused(data: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        manifest_from_json(data, "listing.json")


# --- the command ----------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_signs_from_manifest_and_verify_accepts_the_files(
    model_dir: Path, ec_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    listed = tmp_path / "hub-files.json"
    listed.write_text(json.dumps(file_list(model_dir, name="renamed")))
    sig = tmp_path / "release.sig"
    code, out, err = invoke(
        "sign", "--from-manifest", str(listed), "--key", str(ec_keys[0]),
        "--signature", str(sig), "--name", str(model_dir.name), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["manifest"]["model_name"] == model_dir.name
    code, _, err = invoke(
        "verify", str(model_dir), "--key", str(ec_keys[1]), "--signature", str(sig)
    )
    assert code == 0, err
    assert read_bundle(sig)["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "needs --signature"),
        (["MODEL"], "not both"),
        (["--method", "blake3"], "do not apply to --from-manifest"),
        (["--no-cache"], "do not apply"),
    ],
)
def test_cli_usage_errors(
    model_dir: Path, ec_keys: tuple[Path, Path], tmp_path: Path, extra: list[str], message: str
) -> None:
    listed = tmp_path / "files.json"
    listed.write_text(json.dumps(file_list(model_dir)))
    args = ["sign", "--from-manifest", str(listed), "--key", str(ec_keys[0])]
    args += [str(model_dir) if e == "MODEL" else e for e in extra]
    if message != "needs --signature":
        args += ["--signature", str(tmp_path / "x.sig")]
    code, _, err = invoke(*args)
    assert code == 2
    assert message in err
    assert not (tmp_path / "x.sig").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"model_name": "m", "files": [{"path": "../../x", "size": 1, "sha256": "' + b"a" * 64
         + b'"}]}', "escapes the model directory"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)  # fmt: skip
def test_cli_hostile_file_is_one_line_and_writes_nothing(
    ec_keys: tuple[Path, Path], tmp_path: Path, content: bytes, message: str
) -> None:
    listed = tmp_path / "files.json"
    listed.write_bytes(content)
    sig = tmp_path / "out.sig"
    code, _, err = invoke(
        "sign", "--from-manifest", str(listed), "--key", str(ec_keys[0]), "--signature", str(sig)
    )
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not sig.exists()


def test_cli_missing_manifest_file(ec_keys: tuple[Path, Path], tmp_path: Path) -> None:
    code, _, err = invoke(
        "sign", "--from-manifest", str(tmp_path / "nope.json"), "--key", str(ec_keys[0]),
        "--signature", str(tmp_path / "s.sig"),
    )  # fmt: skip
    assert code == 2
    assert "manifest file not found" in err


def test_make_model_listing_helper_covers_every_file(model_dir: Path) -> None:
    """The helper itself must list exactly what hash_model hashes (else the tests prove less)."""
    listed = {f["path"] for f in file_list(model_dir)["files"]}
    assert listed == set(hash_model(model_dir, ignore_paths=["model.sig"]).file_digests())
