"""Hostile uploads and properties: every refusal is one clear line and leaves nothing."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.errors import InputError
from glassbox.hub import Hub, publish_model
from glassbox.hub.client import HubError
from glassbox.hub.federation import TileTree, dir_source, export_tiles
from glassbox.hub.names import check_upload_path, parse_ref, split_model_name
from glassbox.sign import generate_private_key, load_private_key, make_statement, sign_statement
from glassbox.sign import subject as make_subject
from glassbox.tlog import TransparencyLog, open_store
from glassbox.tlog.note import Signer
from glassbox.tlog.tree import StoredTree
from tests.hub.conftest import Served, add_publisher, make_model
from tests.hub.test_publish_pull import _raw_publish, _signed, nothing_stored


def test_concurrent_publish_of_one_release_logs_it_once(
    hub: Hub, served: Served, tmp_path: Path
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "m")
    key = load_private_key(acme.key)

    def one(_n: int) -> int:
        try:
            publish_model(model, served.url, key, acme.token, name="acme/m", version="1")
            return 201
        except HubError as exc:
            return exc.status

    with ThreadPoolExecutor(3) as pool:
        codes = sorted(pool.map(one, range(3)))
    assert codes == [201, 409, 409]
    # Logged once: its signature and the hub's scan of it.
    assert hub.log.size() == 2 and hub.db.counts()["hub_release"] == 1


def test_malformed_requests_are_4xx_with_a_reason(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    auth = {"Authorization": f"Bearer {acme.token}"}
    url = served.url + "/api/v1/releases"
    garbage = httpx.post(
        url, content=b"--x\r\nnot a form", headers={**auth, "content-type": "multipart/form-data"}
    )
    assert 400 <= garbage.status_code < 500
    no_name = httpx.post(url, data={"version": "1"}, files={"signature": b"{}"}, headers=auth)
    assert no_name.status_code == 400 and "'name'" in no_name.json()["detail"]
    model = make_model(tmp_path / "m")
    sig = _signed(model, acme.key)
    files = [(p.name, p.read_bytes()) for p in sorted(model.iterdir())]
    for name in ("acme", "acme/../x", "ACME/x", "a/b/c", "acme/" + "x" * 300):
        resp = _raw_publish(served.url, acme.token, name, files, sig)
        assert resp.status_code == 400, (name, resp.text)
        assert "model name" in resp.json()["detail"]
    resp = _raw_publish(served.url, acme.token, "acme/m", files, b"{not json")
    assert resp.status_code == 400 and "signature" in resp.json()["detail"]
    resp = _raw_publish(served.url, acme.token, "acme/m", files, b"{}")
    assert resp.status_code == 400 and resp.json()["detail"].startswith("signature: not a")
    assert str(tmp_path) not in resp.text  # no server paths in answers
    no_auth = httpx.post(url, data={"name": "acme/m", "version": "1"})
    assert no_auth.status_code == 401
    nothing_stored(hub, tmp_path / "blobs", 0)


def test_evidence_signed_by_another_key_is_refused(
    hub: Hub, served: Served, tmp_path: Path
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    statement = make_statement(
        [make_subject("model.safetensors", "ab" * 32)], "https://slsa.dev/provenance/v1", {}
    )
    forged = tmp_path / "prov.json"
    forged.write_text(json.dumps(sign_statement(statement, generate_private_key())))
    with pytest.raises(HubError) as caught:
        publish_model(
            make_model(tmp_path / "m"),
            served.url,
            load_private_key(acme.key),
            acme.token,
            name="acme/m",
            version="1",
            evidence=[("provenance", forged)],
        )
    assert caught.value.status == 422 and "provenance evidence" in str(caught.value)
    nothing_stored(hub, tmp_path / "blobs", 0)
    resp = httpx.post(
        served.url + "/api/v1/releases",
        data={"name": "acme/m", "version": "1"},
        files={"signature": b"{}", "evidence:nonsense": b"{}"},
        headers={"Authorization": f"Bearer {acme.token}"},
    )
    assert resp.status_code == 400
    assert resp.json()["detail"] == "unknown form field 'evidence:nonsense'"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab./\\\x00:-_ C", max_size=30))
def test_accepted_upload_paths_stay_inside(path: str) -> None:
    try:
        ok = check_upload_path(path)
    except InputError:
        return
    normal = posixpath.normpath(ok)
    assert normal == ok and not normal.startswith(("/", "../")) and normal != ".."
    assert "\\" not in ok
    assert ".." not in ok.split("/")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_refs_parse_or_fail_cleanly(ref: str) -> None:
    try:
        name, version = parse_ref(ref)
    except InputError:
        return
    org, short = split_model_name(name)
    assert f"{org}/{short}@{version}" == ref


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[TransparencyLog, Path]:
    root = tmp_path_factory.mktemp("tiles")
    log = TransparencyLog(open_store(str(root / "log.db")), Signer.generate("tiles.test/log"))
    for i in range(700):
        log.add_leaf(i.to_bytes(4, "big") * 8)
    export_tiles(log, root / "out")
    return log, root / "out"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_tile_proofs_equal_the_logs_own(
    big_log: tuple[TransparencyLog, Path], data: st.DataObject
) -> None:
    log, out = big_log
    size = 700
    tree = StoredTree(TileTree(dir_source(out), size))  # type: ignore[arg-type]
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    assert tree.root(size) == log.tree.root(size)
    assert tree.inclusion_proof(index, size) == log.inclusion_proof(index, size)
    assert tree.consistency_proof(old, size) == log.consistency_proof(old, size)


def test_chunked_upload_over_the_limit_is_cut_off(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")

    def body() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\n'
        for _ in range(10):
            yield b"0" * (1 << 20)
        yield b"\r\n--b--\r\n"

    resp = httpx.post(
        served.url + "/api/v1/releases",
        content=body(),
        headers={
            "Authorization": f"Bearer {acme.token}",
            "content-type": "multipart/form-data; boundary=b",
        },
    )
    assert resp.status_code == 413
    nothing_stored(hub, tmp_path / "blobs", 0)
