"""Real hubs on loopback: uvicorn serving ``glassbox.hub`` over SQLite or PostgreSQL, tiny
safetensors models written byte by byte (no torch), real keys, tokens and trust policies."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from glassbox.hub import Hub, open_hub
from glassbox.hub.app import create_app
from glassbox.sign import generate_private_key, public_key_id, write_keypair
from glassbox.sign.keys import parse_public_key
from tests.tlog.conftest import PG_DSN, drop_pg_schema, fresh_pg_schema, pg_url

needs_pg = pytest.mark.skipif(
    not PG_DSN, reason="GLASSBOX_TEST_POSTGRES_DSN is not set (scripts/pg-test-server start)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(app: Any) -> Served:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("hub did not start")
        time.sleep(0.02)
    return Served(f"http://127.0.0.1:{port}", server, thread)


def safetensors_bytes(values: list[float]) -> bytes:
    """A valid safetensors file holding one F32 tensor (header + data, written by hand)."""
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [len(values)], "data_offsets": [0, len(data)]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def make_model(root: Path, seed: int = 1, size: int = 64) -> Path:
    root.mkdir(parents=True)
    (root / "model.safetensors").write_bytes(
        safetensors_bytes([float((i * seed) % 97) for i in range(size)])
    )
    (root / "config.json").write_text(json.dumps({"model_type": "tiny", "seed": seed}))
    (root / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n")
    return root


def evil_pickle(marker: Path | None = None) -> bytes:
    """A pickle that would call os.system if loaded (it never is: only scanned); with
    ``marker``, the command would create that file, so a test can see it was never run."""
    command = f"touch {marker}" if marker else "id"
    return b"cposix\nsystem\n(S'" + command.encode() + b"'\ntR."


@dataclass
class Publisher:
    org: str
    key: Path
    pub: Path
    key_id: str
    token: str


def add_publisher(hub: Hub, tmp: Path, org: str) -> Publisher:
    key, pub = write_keypair(generate_private_key(), tmp / f"{org}-{time.monotonic_ns()}")
    pem = pub.read_text()
    key_id = public_key_id(parse_public_key(pem.encode()))
    hub.db.add_key(org, pem, key_id, label=f"{org} release key")
    return Publisher(org, key, pub, key_id, hub.db.new_token(key_id))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[needs_pg])])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    schema = fresh_pg_schema()
    try:
        yield pg_url(schema)
    finally:
        drop_pg_schema(schema)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = open_hub(
        f"sqlite:///{tmp_path / 'hub.db'}",
        tmp_path / "blobs",
        tmp_path / "hub.key",
        origin="hub.test/a",
    )
    yield h
    h.close()


@pytest.fixture
def served(hub: Hub) -> Iterator[Served]:
    s = serve(create_app(hub, max_upload=8 << 20, rate_per_minute=1000))
    yield s
    s.stop()


def write_policy(path: Path, pub: Path, vkey: str, models: str = "acme/*", extra: str = "") -> Path:
    path.write_text(
        f"""version = 1

[[publisher]]
name = "Acme"
models = ["{models}"]
keys = ["{pub}"]

[log]
require = true
keys = ["{vkey}"]
{extra}
[scan]
fail-on = "high"
"""
    )
    return path
