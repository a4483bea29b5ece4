"""Publish -> pull round trips through real hub servers, and every refusal leaving nothing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from glassbox.errors import InputError
from glassbox.hub import Hub, publish_model, pull_model
from glassbox.hub.client import HubError, staging_dir
from glassbox.sign import load_private_key
from glassbox.trust.errors import TrustRefused
from tests.hub.conftest import Served, add_publisher, evil_pickle, make_model, write_policy


def nothing_stored(hub: Hub, blobs: Path, log_size: int) -> None:
    counts = hub.db.counts()
    assert counts["hub_release"] == 0 and counts["hub_file"] == 0, counts
    assert not any((blobs / "sha256").iterdir())
    assert not any((blobs / "staging").iterdir())
    assert hub.log.size() == log_size


def test_publish_then_pull_round_trip(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "tiny")
    answer = publish_model(
        model, served.url, load_private_key(acme.key), acme.token, name="acme/tiny", version="1.0"
    )
    assert answer["release"]["name"] == "acme/tiny"
    assert answer["release"]["log_index"] == 0
    assert answer["proof"]["entry"]["index"] == 0
    assert {f["path"] for f in answer["files"]} == {"model.safetensors", "config.json", "README.md"}
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "pulled"
    result = pull_model("acme/tiny@1.0", served.url, policy, out)
    assert result.verified and out.is_dir()
    assert (out / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()
    assert (out / "model.sig").is_file() and out.with_name("pulled.proof.json").is_file()
    assert result.gate["log"]["status"] == "pass"
    assert not staging_dir(out, answer["release"]["root_digest"]).exists()
    # A second pull remembers the checkpoint it saw and asks for a consistency proof.
    publish_model(
        make_model(tmp_path / "tiny2", seed=2),
        served.url,
        load_private_key(acme.key),
        acme.token,
        name="acme/tiny",
        version="2.0",
    )
    again = pull_model("acme/tiny@2.0", served.url, policy, tmp_path / "pulled2")
    assert again.gate["log"]["evidence"]["consistency_with_last_seen"] in ("newer", "same")


def test_manifest_only_release(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    answer = publish_model(
        make_model(tmp_path / "m"),
        served.url,
        load_private_key(acme.key),
        acme.token,
        name="acme/remote",
        version="1",
        manifest_only=True,
    )
    assert answer["release"]["hosted"] is False
    assert answer["release"]["verdict"] == "unknown"
    assert len(answer["files"]) == 3
    assert hub.log.size() == 1
    page = httpx.get(served.url + "/models/acme/remote").text
    assert "manifest only" in page and "verdict-unknown" in page and "Not audited" in page


def test_wrong_namespace_refused_and_nothing_left(hub: Hub, served: Served, tmp_path: Path) -> None:
    add_publisher(hub, tmp_path, "acme")
    mallory = add_publisher(hub, tmp_path, "mallory")
    with pytest.raises(HubError) as caught:
        publish_model(
            make_model(tmp_path / "m"),
            served.url,
            load_private_key(mallory.key),
            mallory.token,
            name="acme/tiny",
            version="1",
        )
    assert caught.value.status == 403
    assert "namespace 'mallory'" in str(caught.value)
    nothing_stored(hub, tmp_path / "blobs", 0)


def _raw_publish(
    url: str, token: str, name: str, files: list[tuple[str, bytes]], sig: bytes
) -> httpx.Response:
    form = [("signature", ("model.sig", sig, "application/json"))]
    form += [("file", (n, data, "application/octet-stream")) for n, data in files]
    return httpx.post(
        url + "/api/v1/releases",
        data={"name": name, "version": "1"},
        files=form,
        headers={"Authorization": f"Bearer {token}"},
    )


def _signed(model: Path, key: Path) -> bytes:
    from glassbox.sign import sign_model

    sig = model.with_name("sig.json")
    sign_model(model, load_private_key(key), signature_path=sig, use_cache=False)
    return sig.read_bytes()


def test_tampered_upload_refused(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "m")
    sig = _signed(model, acme.key)
    files = [(p.name, p.read_bytes()) for p in sorted(model.iterdir())]
    tampered = [
        (n, d[:-1] + bytes([d[-1] ^ 1]) if n == "model.safetensors" else d) for n, d in files
    ]
    resp = _raw_publish(served.url, acme.token, "acme/m", tampered, sig)
    assert resp.status_code == 422, resp.text
    assert "changed: model.safetensors" in resp.json()["detail"]
    # A forged signature (payload edited) is refused as well.
    doc = json.loads(sig)
    doc["dsseEnvelope"]["signatures"][0]["sig"] = (
        "AAAA" + doc["dsseEnvelope"]["signatures"][0]["sig"][4:]
    )
    resp = _raw_publish(served.url, acme.token, "acme/m", files, json.dumps(doc).encode())
    assert resp.status_code in (400, 422), resp.text
    nothing_stored(hub, tmp_path / "blobs", 0)


def test_file_and_directory_of_one_name_refused(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "m")
    sig = _signed(model, acme.key)
    files = [("a", b"x"), ("a/b", b"y")]
    resp = _raw_publish(served.url, acme.token, "acme/m", files, sig)
    assert resp.status_code == 400 and "conflicts" in resp.json()["detail"]
    nothing_stored(hub, tmp_path / "blobs", 0)


@pytest.mark.parametrize(
    "bad", ["../evil.bin", "/etc/passwd", "a/../../x", "a//b", "./x", "a\\..\\x", "model.sig"]
)
def test_path_traversal_refused(hub: Hub, served: Served, tmp_path: Path, bad: str) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "m")
    sig = _signed(model, acme.key)
    files = [(p.name, p.read_bytes()) for p in sorted(model.iterdir())] + [(bad, b"x")]
    resp = _raw_publish(served.url, acme.token, "acme/m", files, sig)
    assert resp.status_code == 400, resp.text
    assert bad[:20].split("/")[0] in resp.json()["detail"] or "file name" in resp.json()["detail"]
    nothing_stored(hub, tmp_path / "blobs", 0)
    assert not (tmp_path / "evil.bin").exists()


def test_scan_finding_refused(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "m")
    marker = tmp_path / "pwned"
    (model / "pytorch_model.bin").write_bytes(evil_pickle(marker))
    with pytest.raises(HubError) as caught:
        publish_model(
            model, served.url, load_private_key(acme.key), acme.token, name="acme/m", version="1"
        )
    assert caught.value.status == 422
    assert "scan:" in str(caught.value) and "system" in str(caught.value)
    nothing_stored(hub, tmp_path / "blobs", 0)
    assert not marker.exists()  # scanned, never run


def test_bad_token_extra_file_and_limits(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "m")
    sig = _signed(model, acme.key)
    files = [(p.name, p.read_bytes()) for p in sorted(model.iterdir())]
    assert _raw_publish(served.url, "gbx_nope", "acme/m", files, sig).status_code == 401
    resp = _raw_publish(served.url, acme.token, "acme/m", [*files, ("extra.txt", b"hi")], sig)
    assert resp.status_code == 422 and "added: extra.txt" in resp.json()["detail"]
    big = _raw_publish(
        served.url, acme.token, "acme/m", [*files, ("big.bin", b"0" * (9 << 20))], sig
    )
    assert big.status_code == 413
    nothing_stored(hub, tmp_path / "blobs", 0)


def test_rate_limit_counts_in_the_database(hub: Hub, tmp_path: Path) -> None:
    from glassbox.hub.app import create_app
    from tests.hub.conftest import serve

    acme = add_publisher(hub, tmp_path, "acme")
    limited = serve(create_app(hub, rate_per_minute=2))
    try:
        codes = [
            _raw_publish(limited.url, acme.token, "acme/m", [], b"{}").status_code for _ in range(3)
        ]
    finally:
        limited.stop()
    assert codes[:2] != [429, 429] and codes[2] == 429


def test_pull_refuses_a_swapped_file_and_moves_nothing(
    hub: Hub, served: Served, tmp_path: Path
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    answer = publish_model(
        make_model(tmp_path / "m"),
        served.url,
        load_private_key(acme.key),
        acme.token,
        name="acme/m",
        version="1",
    )
    sha = next(f["sha256"] for f in answer["files"] if f["path"] == "model.safetensors")
    blob = tmp_path / "blobs" / "sha256" / sha
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))  # the server's copy is swapped after publication
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "out"
    with pytest.raises(TrustRefused) as caught:
        pull_model("acme/m@1", served.url, policy, out)
    assert "model.safetensors" in str(caught.value)
    assert not out.exists() and not out.with_name("out.proof.json").exists()
    assert not staging_dir(out, answer["release"]["root_digest"]).exists()


def test_pull_refuses_an_untrusted_publisher(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    other = add_publisher(hub, tmp_path, "other")
    publish_model(
        make_model(tmp_path / "m"),
        served.url,
        load_private_key(other.key),
        other.token,
        name="other/m",
        version="1",
    )
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey, models="*")
    with pytest.raises(TrustRefused, match="publisher"):
        pull_model("other/m@1", served.url, policy, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_interrupted_pull_resumes_with_range(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "m", size=200_000)
    answer = publish_model(
        model, served.url, load_private_key(acme.key), acme.token, name="acme/big", version="1"
    )
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "out"
    total = sum(f["size"] for f in answer["files"])
    with pytest.raises(InputError, match="resumable"):
        pull_model("acme/big@1", served.url, policy, out, stop_after=300_000)
    assert not out.exists()  # nothing unverified where the model is expected
    assert staging_dir(out, answer["release"]["root_digest"]).is_dir()
    result = pull_model("acme/big@1", served.url, policy, out)
    assert result.verified and "model.safetensors" in result.resumed
    assert result.bytes_downloaded == total - 300_000
    assert (out / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()


def test_pull_unknown_release_and_bad_ref(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    with pytest.raises(HubError, match="404"):
        pull_model("acme/none@1", served.url, policy, tmp_path / "o")
    with pytest.raises(InputError, match="NAME@VERSION"):
        pull_model("acme/none", served.url, policy, tmp_path / "o")


def test_replace_swaps_only_a_verified_release(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    key = load_private_key(acme.key)
    for version, seed in (("1", 1), ("2", 2)):
        publish_model(
            make_model(tmp_path / f"m{version}", seed=seed),
            served.url,
            key,
            acme.token,
            name="acme/m",
            version=version,
        )
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "out"
    pull_model("acme/m@1", served.url, policy, out)
    with pytest.raises(InputError, match="--replace"):
        pull_model("acme/m@2", served.url, policy, out)
    v1 = (out / "config.json").read_text()
    # Version 2's weights are swapped on the server: the refused pull leaves version 1 intact.
    doc = httpx.get(served.url + "/api/v1/releases/acme/m/2").json()
    sha = next(f["sha256"] for f in doc["files"] if f["path"] == "config.json")
    (tmp_path / "blobs" / "sha256" / sha).write_text('{"seed": 666}')
    with pytest.raises(TrustRefused):
        pull_model("acme/m@2", served.url, policy, out, replace=True)
    assert (out / "config.json").read_text() == v1
    (tmp_path / "blobs" / "sha256" / sha).write_text(json.dumps({"model_type": "tiny", "seed": 2}))
    pull_model("acme/m@2", served.url, policy, out, replace=True)
    assert json.loads((out / "config.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_token_of_one_key_cannot_upload_another_keys_signature(
    hub: Hub, served: Served, tmp_path: Path
) -> None:
    first = add_publisher(hub, tmp_path, "acme")
    second = add_publisher(hub, tmp_path, "acme")  # a second key of the same namespace
    with pytest.raises(HubError) as caught:
        publish_model(
            make_model(tmp_path / "m"),
            served.url,
            load_private_key(second.key),
            first.token,
            name="acme/m",
            version="1",
        )
    assert caught.value.status == 403 and "token is bound to key" in str(caught.value)
    nothing_stored(hub, tmp_path / "blobs", 0)
