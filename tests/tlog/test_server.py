"""The HTTP API: happy paths through the real client, hostile bodies get 4xx (never 500),
tiles match the tlog-tiles layout, and many concurrent HTTP clients lose nothing.

Tile paths: tests/vectors/tlog/tlog_tiles_spec_examples.json (C2SP tlog-tiles.md, see
tests/vectors/tlog/SOURCES.md).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from glassbox.digest import merkle
from glassbox.errors import InputError, VerificationError
from glassbox.tlog import TransparencyLog, open_store
from glassbox.tlog.client import LogClient
from glassbox.tlog.note import Signer
from glassbox.tlog.server import create_app
from glassbox.tlog.tiles import encode_index, parse_tile_path, tile_path
from tests.conftest import load_vector
from tests.tlog.helpers import bundle_submission, dsse_submission, new_key, serve

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def log(store_url: str) -> Iterator[TransparencyLog]:
    lg = TransparencyLog(open_store(store_url), Signer.generate("http.example/log"))
    yield lg
    lg.close()


@pytest.fixture
def http(log: TransparencyLog) -> Iterator[TestClient]:
    with TestClient(create_app(log, checkpoint_interval=0.05, max_body=1 << 20)) as client:
        yield client


@pytest.fixture
def live(log: TransparencyLog) -> Iterator[tuple[str, httpx.Client]]:
    """The app on a real loopback server, for ``LogClient`` (an ``httpx`` client: Starlette's
    TestClient transport is built on another HTTP library and cannot be lent to it)."""
    for url in serve(create_app(log, checkpoint_interval=0.05, max_body=1 << 20)):
        with httpx.Client(base_url=url, timeout=60) as raw:
            yield url, raw


def test_client_round_trip(log: TransparencyLog, live: tuple[str, httpx.Client]) -> None:
    client = LogClient(live[0], log.vkey)
    key = new_key()
    r1 = client.add(bundle_submission(key, "model-x", "1"))
    r2 = client.add(dsse_submission(key, "prov-y", "2"))
    assert (
        r1["index"],
        r2["index"],
        client.add(bundle_submission(key, "model-x", "1"))["index"],
    ) == (0, 1, 0)
    assert client.search("name", "model-x") == [0]
    assert client.search("key", r1["key_id"]) == [0, 1]
    entry = client.get(1)
    assert entry.entry().summary()["subjects"][0]["name"] == "prov-y"
    time.sleep(0.3)  # the checkpoint timer runs
    cp = client.latest_checkpoint()
    assert cp is not None and cp.checkpoint.size == 2
    proof = client.inclusion_proof(1, 2)
    merkle.verify_inclusion(merkle.leaf_hash(entry.leaf), 1, 2, proof, cp.checkpoint.root)
    bundle = client.proof_bundle(0)
    assert bundle.verify(log.vkey).entry is not None
    assert [e.index for e in client.entries(0, 2)] == [0, 1]
    with pytest.raises(VerificationError, match="expected"):
        LogClient(live[0], Signer.generate("x").vkey)
    with pytest.raises(InputError, match=r"404|400"):
        client.get(5)


FAKE_BUNDLE = json.dumps(
    {
        "bundle": {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {}},
            "dsseEnvelope": {
                "payload": "e30=",
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{"sig": "AAAA"}],
            },
        },
        "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    }
).encode()

HOSTILE = [
    ("POST", "/v1/entries", b""),
    ("POST", "/v1/entries", b"{"),
    ("POST", "/v1/entries", b"\xff\xfe"),
    ("POST", "/v1/entries", b"[]"),
    ("POST", "/v1/entries", b'{"bundle": 1}'),
    ("POST", "/v1/entries", b'{"envelope": {"payload": 5}, "public_key": "x"}'),
    ("POST", "/v1/entries", b"[" * 100000 + b"]" * 100000),
    ("POST", "/v1/entries", FAKE_BUNDLE),
    ("GET", "/v1/entries/-1", b""),
    ("GET", "/v1/entries/99999999999999999999999999", b""),
    ("GET", "/v1/entries/abc", b""),
    ("GET", "/v1/entries?start=5&end=1", b""),
    ("GET", "/v1/entries?start=0&end=100000", b""),
    ("GET", "/v1/proof/inclusion?index=0&size=0", b""),
    ("GET", "/v1/proof/inclusion?index=10&size=5", b""),
    ("GET", "/v1/proof/inclusion?index=0&size=99999999999999999999", b""),
    ("GET", "/v1/proof/consistency?old=9&size=2", b""),
    ("GET", "/v1/proof/bundle/7", b""),
    ("GET", "/v1/search", b""),
    ("GET", "/v1/search?digest=a&key=b", b""),
    ("GET", "/v1/search?name=" + "x" * 2000, b""),
    ("GET", "/tile/0/x000/001", b""),
    ("GET", "/tile/99/000", b""),
    ("GET", "/tile/0/000.p/0", b""),
    ("GET", "/tile/0/000.p/256", b""),
    ("GET", "/tile/0/../../etc/passwd", b""),
    ("GET", "/tile/0/000", b""),
    ("GET", "/tile/entries/001.p/3", b""),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), HOSTILE, ids=[f"{m} {p[:40]}" for m, p, _ in HOSTILE]
)
def test_hostile_requests_get_4xx(http: TestClient, method: str, path: str, body: bytes) -> None:
    resp = http.request(method, path, content=body, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:200])
    assert resp.json()["detail"]


def test_body_limits(http: TestClient) -> None:
    resp = http.post("/v1/entries", content=b"x" * (2 << 20))
    assert resp.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"y" * 65536

    resp = http.post("/v1/entries", content=chunks())
    assert resp.status_code == 413


def test_openapi_docs(http: TestClient) -> None:
    spec = http.get("/openapi.json").json()
    assert {"/v1/entries", "/checkpoint", "/v1/search", "/v1/proof/inclusion"} <= set(spec["paths"])
    assert http.get("/docs").status_code == 200


def test_tile_paths_follow_spec() -> None:
    vec = load_vector("tlog/tlog_tiles_spec_examples.json")
    for case in vec["index_encoding"]:
        assert encode_index(case["index"]) == case["path"]
        assert parse_tile_path(f"tile/0/{case['path']}") == (0, case["index"], 256)
    for case in vec["tile_sets"]:
        size = case["tree_size"]
        for level in range(4):
            count = size >> (8 * level)
            full, part = divmod(count, 256)
            assert full == case["full"].get(str(level), 0)
            assert part == case["partial_widths"].get(str(level), 0)
    assert tile_path(0, 1, 44) == "tile/0/001.p/44"
    assert parse_tile_path("tile/entries/x001/234.p/5") == (None, 1234, 5)


def test_served_tiles_match_tessera_layout(log: TransparencyLog, http: TestClient) -> None:
    """Tile bytes for raw leaves equal Tessera's published tiles and entry bundles."""
    vec = load_vector("tlog/tessera_posix_testlog.json")
    import base64

    for word in vec["entries_ascii"]:
        log.add_leaf(word.encode())
    for path, b64 in vec["files_b64"].items():
        width = int(path.rsplit("/", 1)[1])
        if width == len(vec["entries_ascii"]):
            resp = http.get("/" + path)
            assert resp.status_code == 200, path
            assert resp.content == base64.b64decode(b64), path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_many_concurrent_http_clients(log: TransparencyLog) -> None:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(log, checkpoint_interval=0.2),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            limit_concurrency=512,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    keys = [new_key() for _ in range(4)]
    subs = [bundle_submission(keys[i % 4], f"model-{i % 7}", str(i)) for i in range(240)]
    subs += subs[:40]  # duplicates sent concurrently must come back with the same index

    local = threading.local()

    def send(sub: dict) -> int:
        client = getattr(local, "client", None)
        if client is None:  # one keep-alive connection per client thread
            client = local.client = httpx.Client(base_url=url, timeout=60)
        resp = client.post("/v1/entries", content=json.dumps(sub))
        resp.raise_for_status()
        return int(resp.json()["index"])

    try:
        with ThreadPoolExecutor(32) as pool:
            indexes = list(pool.map(send, subs))
        assert indexes[240:] == indexes[:40]
        assert sorted(indexes[:240]) == list(range(240))  # each exactly once, no gaps
        client = LogClient(url, log.vkey)
        cp = log.issue_checkpoint()
        assert cp.checkpoint.size == 240
        for i in range(0, 240, 7):
            entry = client.get(i)
            proof = client.inclusion_proof(i, 240)
            merkle.verify_inclusion(merkle.leaf_hash(entry.leaf), i, 240, proof, cp.checkpoint.root)
        client.close()
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.slow
def test_two_server_processes_share_one_store(store_url: str, tmp_path: Path) -> None:
    """``log serve --workers 2``: two processes, two sequencers, one log; nothing lost or
    duplicated, and the stored tree verifies."""
    import os
    import subprocess
    import sys

    from glassbox.tlog.tree import audit_store

    port = _free_port()
    key = tmp_path / "log.skey"
    env = dict(os.environ, GLASSBOX_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glassbox.cli.main",
            "log",
            "serve",
            "--store",
            store_url,
            "--key",
            str(key),
            "--port",
            str(port),
            "--workers",
            "2",
            "--checkpoint-interval",
            "0.5",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/v1/log", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        keys = [new_key() for _ in range(3)]
        subs = [bundle_submission(keys[i % 3], "m", str(i)) for i in range(120)]
        subs += subs[:30]
        local = threading.local()

        def send(sub: dict) -> int:
            client = getattr(local, "client", None)
            if client is None:  # fresh connections land on either worker
                client = local.client = httpx.Client(base_url=url, timeout=60)
            resp = client.post("/v1/entries", content=json.dumps(sub))
            resp.raise_for_status()
            return int(resp.json()["index"])

        with ThreadPoolExecutor(16) as pool:
            indexes = list(pool.map(send, subs))
        assert sorted(indexes[:120]) == list(range(120))
        assert indexes[120:] == indexes[:30]
    finally:
        proc.terminate()
        proc.wait(30)
    store = open_store(store_url)
    try:
        assert store.size() == 120
        audit_store(store)
    finally:
        store.close()


def test_batch_add(log: TransparencyLog, live: tuple[str, httpx.Client]) -> None:
    """Many entries per request: each verified on its own, refused ones say why, accepted ones
    get their index (duplicates, within the batch and of earlier entries, the same index)."""
    client = LogClient(live[0], log.vkey)
    key, other = new_key(), new_key()
    first = client.add(bundle_submission(key, "m", "0"))
    forged = bundle_submission(key, "m", "forged")
    forged["public_key"] = bundle_submission(other, "m", "x")["public_key"]  # wrong key
    subs = [bundle_submission(key, "m", str(i)) for i in range(1, 6)]
    batch = [
        subs[0],
        forged,
        dsse_submission(key, "p", "1"),
        {"bundle": "nope"},
        subs[1],
        subs[0],
        bundle_submission(key, "m", "0"),
    ]
    results = client.add_many(batch)
    assert [r.get("index") for r in results] == [1, None, 2, None, 3, 1, first["index"]]
    assert [r.get("status") for r in results] == [None, 422, None, 400, None, None, None]
    assert [r.get("duplicate") for r in results] == [False, None, False, None, False, True, True]
    assert "verif" in results[1]["error"] or "key" in results[1]["error"]
    assert log.size() == 4
    assert client.add_many([]) == []
    for body, match in (
        (b"[]", "entries"),
        (b"{", "JSON"),
        (json.dumps({"entries": [{}] * 1001}).encode(), "at most"),
    ):
        resp = live[1].post("/v1/entries/batch", content=body)
        assert resp.status_code == 400 and match in resp.json()["detail"]
    root = log.tree.root(log.size())
    for i in range(log.size()):
        proof = log.inclusion_proof(i, log.size())
        merkle.verify_inclusion(log.get(i).leaf_hash, i, log.size(), proof, root)


def test_proof_bundle_since_over_http(log: TransparencyLog, live: tuple[str, httpx.Client]) -> None:
    client = LogClient(live[0], log.vkey)
    key = new_key()
    client.add_many([bundle_submission(key, "m", str(i)) for i in range(3)])
    log.issue_checkpoint()
    client.add(bundle_submission(key, "m", "3"))
    bundle = client.proof_bundle(1, since=3)
    assert bundle.consistency is not None and bundle.consistency.old_size == 3
    assert bundle.verify(log.vkey).consistent_from == 3
    assert client.proof_bundle(1).consistency is None
    for query in ("since=0", "since=99", "since=x"):
        assert live[1].get(f"/v1/proof/bundle/1?{query}").status_code == 400
