"""End to end over real HTTP on 127.0.0.1: a log server that gets cosignatures from a witness
server (tlog-witness over HTTP), used through ``glassbox log --log URL``; the proof bundle then
verifies offline with a 1-of-1 witness policy."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.sign import generate_private_key, sign_statement, write_keypair
from glassbox.tlog import TransparencyLog, Witness, WitnessCosigner, open_store
from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer
from glassbox.tlog.server import create_app, create_witness_app
from tests.tlog.helpers import statement

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(app: object) -> Iterator[str]:
    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, TransparencyLog, Witness]]:
    log = TransparencyLog(open_store(str(tmp_path / "log.db")), Signer.generate("e2e.example/log"))
    witness = Witness(
        tmp_path / "w.db",
        Signer.generate("w.e2e.example", ALG_COSIGNATURE_V1),
        [log.signer.verifier],
    )
    for wurl in _serve(create_witness_app(witness)):
        log.cosigners = [WitnessCosigner.http(witness.signer.verifier, wurl)]
        for lurl in _serve(create_app(log, checkpoint_interval=3600)):
            yield lurl, log, witness
    log.close()
    witness.close()


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


@pytest.mark.slow
def test_cli_against_server_with_http_witness(
    servers: tuple[str, TransparencyLog, Witness], tmp_path: Path
) -> None:
    url, log, witness = servers
    key = generate_private_key("ecdsa-p256")
    _priv, pub = write_keypair(key, tmp_path / "k")
    signed = tmp_path / "model.sig"
    signed.write_text(json.dumps(sign_statement(statement("served-model", "1"), key)))
    added = json.loads(
        run("log", "add", str(signed), "--public-key", str(pub), "--log", url, "--json")
    )
    assert added["index"] == 0
    assert run("log", "search", "--name", "served-model", "--log", url).split() == ["0"]
    proof = tmp_path / "p.json"
    run("log", "prove", "0", "-o", str(proof), "--log", url, "--log-key", log.vkey)
    assert witness.latest(log.origin)[0] == 1  # the log got a cosignature over HTTP
    out = json.loads(
        run(
            "log",
            "verify-proof",
            str(proof),
            "--log-key",
            log.vkey,
            "--witness",
            witness.signer.vkey,
            "-k",
            "1",
            "--remember",
            "--json",
        )
    )
    assert out["witnesses"] == ["w.e2e.example"] and out["seen"] == "first"
    cp = run("log", "checkpoint", "--log", url)
    assert cp.startswith("e2e.example/log\n1\n") and "\u2014 w.e2e.example " in cp
    mon = json.loads(
        run(
            "log",
            "monitor",
            "--log",
            url,
            "--log-key",
            log.vkey,
            "--watch-name",
            "served-model",
            "--state",
            str(tmp_path / "m.db"),
            "--json",
        )
    )
    assert [m["index"] for m in mon["matches"]] == [0]
