"""``glassbox keygen / sign / verify``: exit codes, messages, JSON, and the example model."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from glassbox.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-model"
# Pinned: model_signing 1.1.1 computes the same root digest for examples/tiny-model.
EXAMPLE_ROOT = "0d7a3b30c86cb76fe3f5fc4c8a3f4abb00dfcf7e6fa8d2dbb936d4fa8945d501"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / "tiny-model"))


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    result = run("keygen", "--out", tmp_path / "signer")
    assert result.exit_code == 0, result.output
    return tmp_path / "signer.key", tmp_path / "signer.pub"


def test_keygen(tmp_path: Path) -> None:
    result = run("keygen", "--out", tmp_path / "k", "--json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["type"] == "ecdsa-p256" and not info["encrypted"]
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    before = (tmp_path / "k.key").read_bytes()
    again = run("keygen", "--out", tmp_path / "k")
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    assert (tmp_path / "k.key").read_bytes() == before
    ed = run("keygen", "--type", "ed25519", "--out", tmp_path / "ed")
    assert ed.exit_code == 0
    assert b"PRIVATE KEY" in (tmp_path / "ed.key").read_bytes()
    assert run("keygen", "--type", "rsa", "--out", tmp_path / "r").exit_code == 2


def test_sign_and_verify_the_example(model: Path, keys: tuple[Path, Path]) -> None:
    private_key, public_key = keys
    signed = run("sign", model, "--key", private_key, "--json")
    assert signed.exit_code == 0, signed.output
    info = json.loads(signed.stdout)
    assert info["manifest"]["root_digest"]["sha256"] == EXAMPLE_ROOT
    assert info["signature"] == str(model / "model.sig")
    verified = run("verify", model, "--key", public_key)
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith(f"verified {model}: 4 files match")
    as_json = json.loads(run("verify", model, "--key", public_key, "--json").stdout)
    assert as_json["verified"] is True
    assert as_json["manifest"]["root_digest"]["sha256"] == EXAMPLE_ROOT
    # `glassbox digest` names the same content (the signature beside the files is left out).
    digest = json.loads(run("digest", model, "--json").stdout)
    assert digest["root_digest"]["sha256"] == EXAMPLE_ROOT


def test_sign_refuses_to_overwrite_a_signature_without_force(
    model: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """``sign`` used to replace an existing signature silently; like ``keygen`` it refuses."""
    private_key, public_key = keys
    assert run("sign", model, "--key", private_key).exit_code == 0
    other = run("keygen", "--out", tmp_path / "other")
    assert other.exit_code == 0
    signature = model / "model.sig"
    before = signature.read_bytes()
    again = run("sign", model, "--key", tmp_path / "other.key")
    assert again.exit_code == 2
    assert again.stderr.strip() == (
        f"error: {signature}: a signature already exists; refusing to overwrite it "
        "(--force replaces it)"
    )
    assert signature.read_bytes() == before
    assert run("verify", model, "--key", public_key).exit_code == 0
    # A signature named with --signature is protected the same way.
    elsewhere = tmp_path / "release.sig"
    elsewhere.write_text("not mine")
    named = run("sign", model, "--key", private_key, "--signature", elsewhere)
    assert named.exit_code == 2 and elsewhere.read_text() == "not mine"
    forced = run("sign", model, "--key", tmp_path / "other.key", "--force")
    assert forced.exit_code == 0, forced.output
    assert run("verify", model, "--key", tmp_path / "other.pub").exit_code == 0


def test_one_key_id_everywhere(model: Path, tmp_path: Path) -> None:
    """keygen, verify, audit and the wrong-key error name a key the same way (the first 16 hex
    digits of SHA-256 over its DER public key); the wrong-key error names both keys so. It
    used to print the bundle's model_signing hint and the given key's hint instead."""
    ids = {}
    for name in ("alice", "bob"):
        made = run("keygen", "--out", tmp_path / name)
        assert made.exit_code == 0
        full = json.loads(run("keygen", "--out", tmp_path / f"{name}2", "--json").stdout)
        assert len(full["key_id"]) == 64
        ids[name] = made.stdout.split("key id ", 1)[1].split()[0]
        assert len(ids[name]) == 16 and f"(in full: {ids[name]}" in made.stdout
    alice_key, alice_pub, bob_pub = (
        tmp_path / "alice.key",
        tmp_path / "alice.pub",
        tmp_path / "bob.pub",
    )
    assert run("sign", model, "--key", alice_key).exit_code == 0
    verified = run("verify", model, "--key", alice_pub)
    assert f"signed by key {ids['alice']}," in verified.stdout
    wrong = run("verify", model, "--key", bob_pub)
    assert wrong.exit_code == 1
    assert wrong.stderr.strip() == (
        f"error: {model / 'model.sig'}: signed by key {ids['alice']}, "
        f"not by the given key {ids['bob']}"
    )
    audited = run("audit", model, "--key", alice_pub, "--require", "integrity", "--json")
    integrity = json.loads(audited.stdout)["links"][0]
    assert integrity["verdict"] == "pass" and integrity["evidence"]["key_id"].startswith(
        ids["alice"]
    )
    assert ids["alice"] in integrity["summary"]
    refused = run("audit", model, "--key", bob_pub, "--require", "integrity", "--json")
    integrity = json.loads(refused.stdout)["links"][0]
    assert integrity["verdict"] == "fail"
    assert ids["alice"] in integrity["summary"] and ids["bob"] in integrity["summary"]
    assert integrity["evidence"]["signer_key_id"].startswith(ids["alice"])


@pytest.mark.parametrize("method", ["blake3", "sha256-sharded-512"])
def test_method_is_recorded_and_followed(
    model: Path, keys: tuple[Path, Path], tmp_path: Path, method: str
) -> None:
    private_key, public_key = keys
    sig = tmp_path / "out.sig"
    result = run("sign", model, "--key", private_key, "--method", method, "--signature", sig)
    assert result.exit_code == 0, result.output
    assert method in result.stdout
    assert not (model / "model.sig").exists()
    assert run("verify", model, "--key", public_key, "--signature", sig).exit_code == 0
    (model / "model.safetensors").write_bytes(b"\0" * 1416)
    failed = run("verify", model, "--key", public_key, "--signature", sig)
    assert failed.exit_code == 1
    assert "modified: model.safetensors" in failed.stderr


def test_verify_failures_name_the_files(model: Path, keys: tuple[Path, Path]) -> None:
    private_key, public_key = keys
    assert run("sign", model, "--key", private_key, "--no-cache").exit_code == 0
    (model / "config.json").write_text("{}\n")
    (model / "extra.bin").write_bytes(b"x")
    (model / "README.md").unlink()
    result = run("verify", model, "--key", public_key)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {model}: files do not match the signature: "
        "modified: config.json; added: extra.bin; removed: README.md"
    )
    as_json = run("verify", model, "--key", public_key, "--json")
    assert as_json.exit_code == 1
    info = json.loads(as_json.stdout)
    assert (info["verified"], info["modified"], info["added"], info["removed"]) == (
        False,
        ["config.json"],
        ["extra.bin"],
        ["README.md"],
    )


def test_warm_cache_and_restored_mtime(model: Path, keys: tuple[Path, Path]) -> None:
    private_key, public_key = keys
    time.sleep(2.1)  # let the files age past the cache's racy window, so sign fills the cache
    assert run("sign", model, "--key", private_key).exit_code == 0
    assert run("verify", model, "--key", public_key, "--cache").exit_code == 0
    weights = model / "model.safetensors"
    before = weights.stat()
    time.sleep(0.05)
    data = bytearray(weights.read_bytes())
    data[200] ^= 0x80  # same size
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = run("verify", model, "--key", public_key, "--cache")
    assert result.exit_code == 1
    assert "modified: model.safetensors" in result.stderr


def test_passphrase_protected_key(model: Path, tmp_path: Path) -> None:
    env = {"GB_PASS": "correct horse"}
    assert (
        run("keygen", "--out", tmp_path / "enc", "--passphrase-env", "GB_PASS", env=env).exit_code
        == 0
    )
    ok = run("sign", model, "--key", tmp_path / "enc.key", "--passphrase-env", "GB_PASS", env=env)
    assert ok.exit_code == 0, ok.output
    missing = run("sign", model, "--key", tmp_path / "enc.key")
    assert missing.exit_code == 2
    assert "encrypted" in missing.stderr
    unset = run("sign", model, "--key", tmp_path / "enc.key", "--passphrase-env", "NOPE_UNSET")
    assert unset.exit_code == 2
    assert "NOPE_UNSET is not set" in unset.stderr
    wrong = run(
        "sign", model, "--key", tmp_path / "enc.key", "--passphrase-env", "GB_PASS",
        env={"GB_PASS": "wrong"},
    )  # fmt: skip
    assert wrong.exit_code == 2
    assert "wrong passphrase" in wrong.stderr


def _sig_variant(model: Path, change: str) -> None:
    sig = model / "model.sig"
    bundle = json.loads(sig.read_text())
    if change == "truncated":
        sig.write_text(sig.read_text()[:100])
        return
    if change == "bad-base64":
        bundle["dsseEnvelope"]["payload"] = "!!" + bundle["dsseEnvelope"]["payload"]
    elif change == "payload-type":
        bundle["dsseEnvelope"]["payloadType"] = "application/json"
    elif change == "other-payload":
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        statement["predicate"]["resources"][0]["digest"] = "00" * 32
        payload = json.dumps(statement).encode()
        bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    elif change == "bad-signature":
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(b"0" * 70).decode()
    sig.write_text(json.dumps(bundle))


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ("truncated", 2, "invalid JSON"),
        ("bad-base64", 2, "not valid base64"),
        ("payload-type", 2, "payloadType"),
        ("other-payload", 1, "does not verify"),
        ("bad-signature", 1, "does not verify"),
    ],
)
def test_malformed_signatures(
    model: Path, keys: tuple[Path, Path], change: str, code: int, message: str
) -> None:
    private_key, public_key = keys
    assert run("sign", model, "--key", private_key).exit_code == 0
    _sig_variant(model, change)
    result = run("verify", model, "--key", public_key)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert str(model / "model.sig") in result.stderr
    assert "Traceback" not in result.output


def test_usage_errors(model: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    private_key, public_key = keys
    other = run("keygen", "--out", tmp_path / "other")
    assert other.exit_code == 0
    assert run("sign", model, "--key", private_key).exit_code == 0
    wrong_key = run("verify", model, "--key", tmp_path / "other.pub")
    assert wrong_key.exit_code == 1
    assert "not by the given key" in wrong_key.stderr
    wrong_json = run("verify", model, "--key", tmp_path / "other.pub", "--json")
    assert wrong_json.exit_code == 1
    assert json.loads(wrong_json.stdout)["verified"] is False
    no_dir = run("sign", model, "--key", private_key, "--signature", tmp_path / "no" / "x.sig")
    assert no_dir.exit_code == 2
    assert "does not exist" in no_dir.stderr
    cases = [
        (["verify", model, "--key", private_key], "is a private key"),
        (["sign", model, "--key", public_key], "is a public key"),
        (["sign", model, "--key", private_key, "--method", "md5"], "unknown hash method"),
        (["verify", model, "--key", public_key, "--signature", tmp_path / "no.sig"], "not found"),
        (["verify", tmp_path / "missing", "--key", public_key], "does not exist"),
        (["sign", model, "--key", tmp_path / "missing.key"], "key file not found"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr
    assert run("sign", model).exit_code == 2  # --key is required
    shutil.copy(private_key, model / "signer.key")
    inside = run("sign", model, "--key", model / "signer.key")
    assert inside.exit_code == 2
    assert "inside the model directory" in inside.stderr


def test_single_file_model(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private_key, public_key = keys
    weights = tmp_path / "w.safetensors"
    shutil.copy(EXAMPLE / "model.safetensors", weights)
    assert run("sign", weights, "--key", private_key).exit_code == 0
    assert (tmp_path / "w.safetensors.sig").is_file()
    assert run("verify", weights, "--key", public_key).exit_code == 0


def test_cli_signature_verifies_with_model_signing(model: Path, keys: tuple[Path, Path]) -> None:
    model_signing = pytest.importorskip("model_signing")
    private_key, public_key = keys
    assert (
        run("sign", model, "--key", private_key, "--method", "sha256-sharded-1000").exit_code == 0
    )
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(
        model, model / "model.sig"
    )


def test_real_process_exit_codes_and_light_imports(model: Path, keys: tuple[Path, Path]) -> None:
    private_key, public_key = keys
    exe = [sys.executable, "-m", "glassbox.cli.main"]
    ok = subprocess.run([*exe, "sign", str(model), "--key", str(private_key)], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    (model / "config.json").write_text("tampered")
    bad = subprocess.run(
        [*exe, "verify", str(model), "--key", str(public_key)], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "modified: config.json" in bad.stderr
    # Importing the command modules must not pull in the crypto stack, rich or model_signing.
    probe = (
        "import sys, glassbox.cli.sign, glassbox.cli.keys; "
        "heavy = [m for m in ('cryptography', 'rich', 'model_signing', 'glassbox.sign') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_verify_names_what_the_signature_leaves_out(model: Path, keys: tuple[Path, Path]) -> None:
    private_key, public_key = keys
    (model / "notes").mkdir()
    (model / "notes" / "todo.md").write_text("draft")
    assert run("sign", model, "--key", private_key, "--ignore", "notes").exit_code == 0
    (model / "notes" / "todo.md").write_text("changed, and not covered")
    result = run("verify", model, "--key", public_key)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "not covered by the signature: notes"
    as_json = json.loads(run("verify", model, "--key", public_key, "--json").stdout)
    assert as_json["not_covered"] == ["notes"]
    plain = run("sign", model, "--key", private_key, "--force")
    assert plain.exit_code == 0
    assert "not covered" not in run("verify", model, "--key", public_key).stdout


def test_progress_bar_total_counts_the_files_hashed(
    model: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal, sign and verify size their bars from the same listing ``digest`` uses."""
    import contextlib
    from collections.abc import Iterator

    import glassbox.cli.digest as digest_cli
    import glassbox.cli.sign as sign_cli
    from glassbox.cli._common import Progress

    private_key, public_key = keys
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_bytes(b"x" * 1000)  # never hashed, so never counted
    size = sum(p.stat().st_size for p in model.rglob("*") if p.is_file() and ".git" not in p.parts)
    calls: list[tuple[str, int | None]] = []

    @contextlib.contextmanager
    def fake_progress(description: str, total: int | None) -> Iterator[Progress]:
        calls.append((description, total))
        yield Progress(lambda _n: None)

    monkeypatch.setattr(digest_cli, "_is_terminal", lambda: True)
    monkeypatch.setattr(sign_cli, "progress", fake_progress)
    assert run("sign", model, "--key", private_key).exit_code == 0
    assert run("verify", model, "--key", public_key).exit_code == 0
    assert calls == [("hashing tiny-model", size), ("verifying tiny-model", size)]
