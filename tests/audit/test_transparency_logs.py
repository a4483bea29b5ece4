"""Transparency against real logs: one cosigned by a witness (k-of-n policy), and one served
over HTTP on loopback, queried with ``--log URL --log-key``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from glassbox.audit import AuditOptions, Verdict, audit_model
from glassbox.sign import load_public_key, read_bundle
from glassbox.tlog import (
    Signer,
    Witness,
    WitnessCosigner,
    make_submission,
    open_log,
    parse_entry,
)
from tests.audit.conftest import Release


def test_witness_cosigned_checkpoint_meets_the_policy(release: Release, tmp_path: Path) -> None:
    release.proof.unlink()
    log_signer = Signer.generate("witnessed.log.example")
    (tmp_path / "witnessed.vkey").write_text(log_signer.vkey + "\n")
    (tmp_path / "witnessed.skey").write_text(log_signer.skey + "\n")
    witness_signer = Signer.generate("witness.example", alg=0x04)
    witness = Witness(tmp_path / "witness.db", witness_signer, [log_signer.verifier])
    log = open_log(
        f"sqlite:///{tmp_path / 'witnessed.db'}",
        tmp_path / "witnessed.skey",
        cosigners=[WitnessCosigner.local(witness)],
    )
    try:
        submission = make_submission(
            read_bundle(release.model / "model.sig"), load_public_key(release.pub)
        )
        index = log.add(parse_entry(submission)).index
        log.proof_bundle(index).write(release.proof)
    finally:
        log.close()
        witness.close()

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"k": 1, "witnesses": [witness_signer.vkey]}))
    options = AuditOptions(
        keys=(release.pub,), log_keys=(tmp_path / "witnessed.vkey",), witness_policy=policy
    )
    link = audit_model(release.model, options).link("transparency")
    assert link.verdict is Verdict.PASS, link.summary
    assert link.evidence["witnesses"] == ["witness.example"]
    assert "1 witness cosignature" in link.summary

    # A policy asking for a second witness that never cosigned is not met.
    other = Signer.generate("other-witness.example", alg=0x04)
    policy.write_text(json.dumps({"k": 2, "witnesses": [witness_signer.vkey, other.vkey]}))
    link = audit_model(release.model, options).link("transparency")
    assert link.verdict is Verdict.FAIL
    assert "policy needs 2" in link.summary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_log_server_is_searched_over_http(release: Release, tmp_path: Path) -> None:
    release.proof.unlink()
    port = _free_port()
    key = tmp_path / "server.skey"
    env = {**os.environ, "GLASSBOX_HOME": str(tmp_path / "server-home")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glassbox.cli.main",
            "log",
            "serve",
            "--store",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--key",
            str(key),
            "--origin",
            "http.log.example",
            "--port",
            str(port),
            "--checkpoint-interval",
            "0.05",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/v1/log", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("log server did not start") from None
                time.sleep(0.2)
        submission = make_submission(
            read_bundle(release.model / "model.sig"), load_public_key(release.pub)
        )
        httpx.post(f"{url}/v1/entries", json=submission, timeout=10).raise_for_status()
        vkey = key.with_suffix(".vkey")
        options = AuditOptions(keys=(release.pub,), log=url, log_keys=(vkey,))
        link = audit_model(release.model, options).link("transparency")
        assert link.verdict is Verdict.PASS, link.summary
        assert link.evidence["origin"] == "http.log.example"
        assert link.evidence["source"].startswith(url)
    finally:
        server.terminate()
        server.wait(timeout=30)
