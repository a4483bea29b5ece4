"""The command line end to end: hub A gathers cosignatures from hub B's witness, a pull
requires them, A's log is exported as tiles and mirrored into B, gossip agrees, and the bulk
jobs run on a Dask LocalCluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.sign import generate_private_key, write_keypair
from glassbox.tlog import load_or_create_signer
from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer
from tests.hub.conftest import free_port, make_model, write_policy
from tests.hub.test_processes import SRC

pytestmark = pytest.mark.slow


def serve(tmp: Path, name: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=SRC, GLASSBOX_HOME=str(tmp / f"{name}-home"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glassbox",
            "hub",
            "serve",
            "--db",
            f"sqlite:///{tmp / f'{name}.db'}",
            "--blobs",
            str(tmp / f"{name}-blobs"),
            "--log-key",
            str(tmp / f"{name}.skey"),
            "--port",
            str(port),
            *extra,
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/api/v1/log", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"hub {name} did not start") from None
            time.sleep(0.1)


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def test_witnessed_hub_mirror_gossip_and_bulk_jobs(tmp_path: Path) -> None:
    a_vkey = load_or_create_signer(tmp_path / "a.skey", "hub.test/a").vkey
    witness = Signer.generate("witness.hub.test/b", ALG_COSIGNATURE_V1)
    (tmp_path / "wb.skey").write_text(witness.skey)
    procs = []
    try:
        b, b_url = serve(
            tmp_path,
            "b",
            "--origin",
            "hub.test/b",
            "--cosign-key",
            str(tmp_path / "wb.skey"),
            "--cosign-log",
            a_vkey,
        )
        procs.append(b)
        a, a_url = serve(tmp_path, "a", "--witness", f"{witness.vkey}={b_url}/witness")
        procs.append(a)
        a_db = f"sqlite:///{tmp_path / 'a.db'}"
        key, pub = write_keypair(generate_private_key(), tmp_path / "acme")
        token = json.loads(run("hub", "add-key", "--db", a_db, "acme", str(pub), "--json"))["token"]
        model = make_model(tmp_path / "tiny")
        out = run(
            "publish",
            str(model),
            "--hub",
            a_url,
            "--key",
            str(key),
            "--token",
            token,
            "--name",
            "acme/tiny",
            "--version",
            "1",
            "--json",
        )
        checkpoint = json.loads(out)["proof"]["checkpoint"]
        assert "— witness.hub.test/b " in checkpoint  # B cosigned A's checkpoint
        log_page = httpx.get(a_url + "/log").text
        assert "witness.hub.test/b</td><td>2</td>" in log_page  # signature + hub scan
        policy = write_policy(
            tmp_path / "policy.toml",
            pub,
            a_vkey,
            extra=f'witnesses = ["{witness.vkey}"]\nwitness-quorum = 1\n',
        )
        pulled = run(
            "pull",
            "acme/tiny@1",
            "--hub",
            a_url,
            "--policy",
            str(policy),
            "--out",
            str(tmp_path / "pulled"),
            "--json",
        )
        assert json.loads(pulled)["gate"]["log"]["evidence"]["witnesses"]
        tiles = tmp_path / "tiles"
        run("hub", "export-tiles", "--db", a_db, "--log-key", str(tmp_path / "a.skey"), str(tiles))
        assert (tiles / "checkpoint").is_file() and (tiles / "tile/0/000.p/2").is_file()
        mirrored = run(
            "hub",
            "mirror",
            str(tiles),
            "--db",
            f"sqlite:///{tmp_path / 'b.db'}",
            "--log-vkey",
            a_vkey,
            "--json",
        )
        assert json.loads(mirrored)["size"] == 2
        gossip = run(
            "hub", "gossip", a_url, f"{b_url}#mirror", str(tiles), "--log-vkey", a_vkey, "--json"
        )
        assert {r["status"] for r in json.loads(gossip)["results"]} <= {"same", "consistent"}
        assert "hub.test/a" in httpx.get(b_url + "/log").text
        rescan = run(
            "hub",
            "rescan",
            "--db",
            a_db,
            "--blobs",
            str(tmp_path / "a-blobs"),
            "--log-key",
            str(tmp_path / "a.skey"),
            "--workers",
            "1",
            "--json",
        )
        assert json.loads(rescan)["releases"] == 1 and json.loads(rescan)["failing"] == 0
        assert len(json.loads(rescan)["attested"]) == 1  # signed and logged in A's log
        reverify = run("hub", "reverify", "--db", a_db, "--workers", "1", "--json")
        assert json.loads(reverify)["failed"] == []
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
