"""Two ``glassbox hub serve`` processes over one database (SQLite file, PostgreSQL): the hub
keeps no state in process memory, so publishes through either are all there, and the CLI
publish -> pull round trip works end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.hub import HubDB, publish_model
from glassbox.sign import generate_private_key, load_private_key, write_keypair
from glassbox.tlog import ProofBundle, parse_vkey, verify_proof_bundle
from tests.hub.conftest import free_port, make_model, write_policy

SRC = str(Path(__file__).resolve().parents[2] / "src")


def start_hub(db_url: str, tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glassbox",
            "hub",
            "serve",
            "--db",
            db_url,
            "--blobs",
            str(tmp / "blobs"),
            "--log-key",
            str(tmp / "log.skey"),
            "--origin",
            "hub.test/procs",
            "--port",
            str(port),
            "--rate",
            "1000",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/log", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                why = proc.stderr.read().decode() if proc.stderr else "no hub"
                raise RuntimeError(why) from None
            time.sleep(0.1)


@pytest.fixture
def two_hubs(db_url: str, tmp_path: Path) -> Iterator[list[str]]:
    procs = []
    try:
        for _ in range(2):  # one after the other: the first creates the tables and log key
            port = free_port()
            procs.append(start_hub(db_url, tmp_path, port))
            procs[-1].port = port  # type: ignore[attr-defined]
        yield [f"http://127.0.0.1:{p.port}" for p in procs]  # type: ignore[attr-defined]
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def test_two_processes_share_every_release(
    db_url: str, two_hubs: list[str], tmp_path: Path
) -> None:
    key, pub = write_keypair(generate_private_key(), tmp_path / "acme")
    out = run("hub", "add-key", "--db", db_url, "acme", str(pub), "--json")
    import json

    token = json.loads(out)["token"]
    models = [make_model(tmp_path / f"m{n}", seed=n + 1) for n in range(6)]

    def one(n: int) -> dict:
        return publish_model(
            models[n],
            two_hubs[n % 2],
            load_private_key(key),
            token,
            name=f"acme/m{n}",
            version="1",
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))
    vkey = httpx.get(two_hubs[0] + "/api/v1/log").json()["vkey"]
    assert httpx.get(two_hubs[1] + "/api/v1/log").json()["vkey"] == vkey
    indexes = sorted(
        i for a in answers for i in (a["release"]["log_index"], a["hub_scan"]["log_index"])
    )
    assert indexes == list(range(12))  # one log, no entry twice, none lost (+ the hub's scans)
    for answer in answers:
        verify_proof_bundle(ProofBundle.from_dict(answer["proof"]), parse_vkey(vkey))
    db = HubDB(db_url)
    try:
        assert db.counts()["hub_release"] == 6
    finally:
        db.close()
    for n in range(6):  # each release is visible through the other process too
        doc = httpx.get(f"{two_hubs[(n + 1) % 2]}/api/v1/releases/acme/m{n}/1").json()
        assert doc["release"]["log_index"] == answers[n]["release"]["log_index"]
    # The CLI round trip across the two processes.
    policy = write_policy(tmp_path / "policy.toml", pub, vkey)
    run(
        "publish",
        str(make_model(tmp_path / "cli", seed=42)),
        "--hub",
        two_hubs[0],
        "--key",
        str(key),
        "--token",
        token,
        "--name",
        "acme/cli",
        "--version",
        "1",
    )
    out = run(
        "pull",
        "acme/cli@1",
        "--hub",
        two_hubs[1],
        "--policy",
        str(policy),
        "--out",
        str(tmp_path / "pulled"),
        "--json",
    )
    assert json.loads(out)["verified"] is True
    refused = run(
        "pull",
        "acme/cli@1",
        "--hub",
        two_hubs[1],
        "--policy",
        str(write_policy(tmp_path / "other.toml", pub, vkey, models="other/*")),
        "--out",
        str(tmp_path / "p2"),
        code=1,
    )
    assert "publisher" in refused
    assert not (tmp_path / "p2").exists()
