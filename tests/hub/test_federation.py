"""Federation: a mirror verifies releases of a hub it cannot reach, split views are caught,
and exported tiles served by Debian's nginx are enough for a client."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from glassbox.errors import VerificationError
from glassbox.hub import Hub, open_hub, publish_model
from glassbox.hub.app import create_app
from glassbox.hub.client import remembered_size
from glassbox.hub.federation import (
    compare_checkpoints,
    dir_source,
    export_tiles,
    http_source,
    mirror_log,
    mirror_proof_bundle,
    tile_paths,
    tile_proof_bundle,
)
from glassbox.sign import load_private_key, sign_model
from glassbox.tlog import Witness
from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer
from glassbox.trust.gate import verify_model_with_policy
from glassbox.trust.policy import load_policy
from tests.hub.conftest import Publisher, add_publisher, free_port, make_model, serve, write_policy

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _publish(hub: Hub, url: str, acme: Publisher, model: Path, version: str) -> dict:
    return publish_model(
        model, url, load_private_key(acme.key), acme.token, name="acme/tiny", version=version
    )


def _local_copy(model: Path, key: Path) -> None:
    """The client's copy of the files with the publisher's signature (as pulled earlier)."""
    sign_model(model, load_private_key(key), use_cache=False)


@pytest.fixture
def hub_b(tmp_path: Path) -> Iterator[Hub]:
    h = open_hub(
        f"sqlite:///{tmp_path / 'b.db'}",
        tmp_path / "b-blobs",
        tmp_path / "b.key",
        origin="hub.test/b",
    )
    yield h
    h.close()


def test_tile_paths_cover_every_level() -> None:
    assert tile_paths(1) == [(0, 0, 1), (None, 0, 1)]
    paths = tile_paths(256 * 256 + 3)
    assert (1, 0, 256) in paths and (2, 0, 1) in paths
    assert not [p for p in paths if p[0] == 1 and p[1] > 0]
    assert (0, 256, 3) in paths and (None, 256, 3) in paths


def test_release_on_a_verifies_from_mirror_b_without_a(
    hub: Hub,
    hub_b: Hub,
    served,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "tiny")
    answer = _publish(hub, served.url, acme, model, "1.0")
    _publish(hub, served.url, acme, make_model(tmp_path / "t2", seed=3), "2.0")
    witness = Witness(
        tmp_path / "w.db",
        Signer.generate("witness.hub.test/b", ALG_COSIGNATURE_V1),
        [parse(hub.log.vkey)],
    )
    got = mirror_log(
        hub_b.db, http_source(served.url), hub.log.vkey, source=served.url, witness=witness
    )
    assert got["size"] == 4  # each release: its signature and the hub's scan
    served.stop()  # hub A is gone from here on
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.url + "/checkpoint", timeout=2)
    since = remembered_size(hub.log.origin)  # this machine saw A's log before
    proof = mirror_proof_bundle(hub_b.db, hub.log.origin, answer["release"]["log_index"], since)
    proof_path = tmp_path / "tiny.proof.json"
    proof.write(proof_path)
    _local_copy(model, acme.key)
    policy = write_policy(
        tmp_path / "p.toml",
        acme.pub,
        hub.log.vkey,
        extra=f'witnesses = ["{witness.signer.vkey}"]\nwitness-quorum = 1\n',
    )
    result = verify_model_with_policy(
        model, load_policy(policy), name="acme/tiny", proofs=[proof_path]
    )
    assert result.ok, result.reasons
    assert result.log is not None and result.log.evidence["witnesses"]
    # The same through B's HTTP API.
    b = serve(create_app(hub_b))
    try:
        doc = httpx.get(
            f"{b.url}/api/v1/mirrors/{hub.log.origin}/proof", params={"index": 0}
        ).json()
        assert doc["entry"]["index"] == 0
        assert "witness.hub.test/b" in httpx.get(f"{b.url}/log").text
    finally:
        b.stop()
    witness.close()


def parse(vkey: str):  # type: ignore[no-untyped-def]
    from glassbox.tlog import parse_vkey

    return parse_vkey(vkey)


def test_split_view_caught_by_mirror_and_by_gossip(
    hub: Hub,
    hub_b: Hub,
    served,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    _publish(hub, served.url, acme, make_model(tmp_path / "m1"), "1")
    mirror_log(hub_b.db, http_source(served.url), hub.log.vkey, source="A")
    # Hub A's operator runs a second database under the same log key and shows it to others.
    forked = open_hub(
        f"sqlite:///{tmp_path / 'fork.db'}", tmp_path / "fork-blobs", tmp_path / "hub.key"
    )
    try:
        acme_f = add_publisher(forked, tmp_path, "acme")
        fork_url = serve(create_app(forked))
        _publish(forked, fork_url.url, acme_f, make_model(tmp_path / "evil", seed=9), "1")
        _publish(forked, fork_url.url, acme_f, make_model(tmp_path / "evil2", seed=8), "2")
        honest = httpx.get(served.url + "/checkpoint").text
        shown = httpx.get(fork_url.url + "/checkpoint").text
        with pytest.raises(VerificationError, match="split view"):
            compare_checkpoints(honest, shown, hub.log.vkey, http_source(fork_url.url))
        with pytest.raises(VerificationError, match="split view"):
            mirror_log(hub_b.db, http_source(fork_url.url), hub.log.vkey, source="A'")
        assert len(hub_b.db.forks()) == 1
        b = serve(create_app(hub_b))
        try:
            page = httpx.get(b.url + "/log").text
        finally:
            b.stop()
        assert "Split view" in page and "verdict-fail" in page
        fork_url.stop()
    finally:
        forked.close()
    # An honest extension is consistent.
    before = httpx.get(served.url + "/checkpoint").text
    _publish(hub, served.url, acme, make_model(tmp_path / "m2", seed=2), "2")
    hub.log.issue_checkpoint()
    after = httpx.get(served.url + "/checkpoint").text
    assert compare_checkpoints(before, after, hub.log.vkey, http_source(served.url)) == "consistent"
    assert mirror_log(hub_b.db, http_source(served.url), hub.log.vkey)["size"] == 4


def test_tampered_tile_refused(hub: Hub, hub_b: Hub, served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    acme = add_publisher(hub, tmp_path, "acme")
    _publish(hub, served.url, acme, make_model(tmp_path / "m1"), "1")
    out = tmp_path / "tiles"
    export_tiles(hub.log, out)
    tile = out / "tile/0/000.p/2"  # the signature and the hub's scan
    tile.write_bytes(bytes(64))
    with pytest.raises(VerificationError, match="do not hash to the signed checkpoint"):
        mirror_log(hub_b.db, dir_source(out), hub.log.vkey)
    with pytest.raises(VerificationError):
        tile_proof_bundle(dir_source(out), hub.log.vkey, 0)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed")
    root = tmp_path / "www"
    root.mkdir()
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # pytest's tmp dirs are 0700
        + f"""daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log;
events {{}}
http {{
  access_log {tmp_path}/nginx-access.log;
  client_body_temp_path {tmp_path}/cb; proxy_temp_path {tmp_path}/px;
  fastcgi_temp_path {tmp_path}/fc; uwsgi_temp_path {tmp_path}/uw; scgi_temp_path {tmp_path}/sc;
  server {{ listen 127.0.0.1:{port}; root {root}; default_type application/octet-stream; }}
}}
"""
    )
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "e.log")]
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("nginx did not start: " + (tmp_path / "e.log").read_text())
            time.sleep(0.05)
    yield url, root
    proc.terminate()
    proc.wait(10)


def test_client_verifies_from_tiles_served_by_nginx(
    hub: Hub,
    hub_b: Hub,
    served,
    nginx,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    url, root = nginx
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "tiny")
    answer = _publish(hub, served.url, acme, model, "1.0")
    for n in range(3):
        _publish(hub, served.url, acme, make_model(tmp_path / f"x{n}", seed=n + 5), f"1.{n + 1}")
    exported = export_tiles(hub.log, root)
    assert exported["size"] == 8  # 4 signatures, 4 hub scans
    served.stop()
    bundle = tile_proof_bundle(
        http_source(url),
        hub.log.vkey,
        answer["release"]["log_index"],
        since=remembered_size(hub.log.origin),
    )
    proof_path = tmp_path / "tiny.proof.json"
    bundle.write(proof_path)
    _local_copy(model, acme.key)
    policy = write_policy(tmp_path / "p.toml", acme.pub, hub.log.vkey)
    result = verify_model_with_policy(
        model, load_policy(policy), name="acme/tiny", proofs=[proof_path]
    )
    assert result.ok, result.reasons
    # A mirror fills itself from the same static files.
    assert mirror_log(hub_b.db, http_source(url), hub.log.vkey, source=url)["size"] == 8
    assert "GET /tile/0/000.p/8" in (tmp_path / "nginx-access.log").read_text()
