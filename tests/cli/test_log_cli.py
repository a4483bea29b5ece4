"""``glassbox log`` and ``glassbox witness`` end to end on the embedded log (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.sign import generate_private_key, sign_statement, write_keypair
from tests.tlog.helpers import statement


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    key = generate_private_key("ed25519")
    _priv, pub = write_keypair(key, tmp_path / "dev")
    bundle = tmp_path / "model.sig"
    bundle.write_text(json.dumps(sign_statement(statement("my-model", "w1"), key)))
    other = tmp_path / "other.sig"
    other.write_text(json.dumps(sign_statement(statement("my-model", "w2"), key)))
    return bundle, other, pub


def test_add_get_search_prove_verify(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    bundle, other, pub = signed
    out = json.loads(run("log", "add", str(bundle), "--public-key", str(pub), "--json"))
    assert out["index"] == 0 and not out["duplicate"]
    assert "already in the log" in run("log", "add", str(bundle), "--public-key", str(pub))
    run("log", "add", str(other), "--public-key", str(pub))
    got = json.loads(run("log", "get", "1", "--json"))
    assert got["entry"]["subjects"][0]["name"] == "my-model"
    assert json.loads(run("log", "search", "--name", "my-model", "--json"))["indexes"] == [0, 1]
    assert run("log", "search", "--signer", out["key_id"]).split() == ["0", "1"]
    cp = json.loads(run("log", "checkpoint", "--json"))
    assert cp["size"] == 2
    proof = tmp_path / "proof.json"
    run("log", "prove", "1", "-o", str(proof))
    ok = json.loads(run("log", "verify-proof", str(proof), "--log-key", cp["vkey"], "--json"))
    assert ok["index"] == 1 and ok["tree_size"] == 2
    assert ok["entry"]["key_id"] == out["key_id"]
    # wrong log key -> verification failure (exit 1); a witness policy nobody met -> exit 1
    from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer

    bad = Signer.generate(cp["origin"]).vkey
    assert "error:" in run("log", "verify-proof", str(proof), "--log-key", bad, code=1)
    wit = Signer.generate("w.example", ALG_COSIGNATURE_V1).vkey
    run("log", "verify-proof", str(proof), "--log-key", cp["vkey"], "--witness", wit, code=1)


def test_search_says_when_nothing_matches_and_takes_short_ids(
    signed: tuple[Path, Path, Path],
) -> None:
    """It used to print nothing and exit 0 on no match, and want ``sha256:`` and all 64 hex
    digits of a key id; now: "no entries match" (exit 1, as grep), bare hex, the short id."""
    bundle, _, pub = signed
    out = json.loads(run("log", "add", str(bundle), "--public-key", str(pub), "--json"))
    result = CliRunner().invoke(cli, ["log", "search", "--name", "no-such-model"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "no entries match --name no-such-model"
    result = CliRunner().invoke(cli, ["log", "search", "--signer", "0" * 16, "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout) == {"indexes": []}
    assert run("log", "search", "--signer", out["key_id"][:16]).split() == ["0"]
    digest = json.loads(run("log", "get", "0", "--json"))["entry"]["subjects"][0]["digest"]
    assert run("log", "search", "--digest", digest["sha256"]).split() == ["0"]
    assert run("log", "search", "--digest", f"sha256:{digest['sha256']}").split() == ["0"]
    bad = CliRunner().invoke(cli, ["log", "search", "--signer", "not-hex"])
    assert bad.exit_code == 2 and "hex digits" in bad.stderr


def test_bad_inputs_exit_2(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    bundle, _, pub = signed
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert "not JSON" in run("log", "add", str(garbage), "--public-key", str(pub), code=2)
    assert "--public-key" in run("log", "add", str(bundle), code=2)
    run("log", "get", "5", code=2)
    run("log", "search", code=2)
    run("log", "verify-proof", str(garbage), "--log-key", "x+00000000+AA==", code=2)


def test_wrong_signer_is_refused_exit_1(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    bundle, _, _ = signed
    _p, other_pub = write_keypair(generate_private_key("ed25519"), tmp_path / "other")
    run("log", "add", str(bundle), "--public-key", str(other_pub), code=1)


def test_monitor_export_import(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    bundle, other, pub = signed
    key_id = json.loads(run("log", "add", str(bundle), "--public-key", str(pub), "--json"))[
        "key_id"
    ]
    state = tmp_path / "mon.db"
    report = json.loads(
        run("log", "monitor", "--state", str(state), "--watch-key", key_id, "--json")
    )
    assert report["size"] == 0 or report["matches"]  # no checkpoint yet, or one was issued
    run("log", "checkpoint")
    report = json.loads(
        run("log", "monitor", "--state", str(state), "--watch-name", "my-model", "--json")
    )
    assert report["size"] == 1 and [m["index"] for m in report["matches"]] == [0]
    run("log", "add", str(other), "--public-key", str(pub))
    run("log", "checkpoint")
    report = json.loads(
        run("log", "monitor", "--state", str(state), "--watch-key", key_id[:16], "--json")
    )
    # The short key id (what verify prints) is watched as well as the whole one.
    assert report["previous_size"] == 1 and [m["index"] for m in report["matches"]] == [1]
    archive = tmp_path / "log.jsonl.gz"
    assert json.loads(run("log", "export", str(archive), "--json"))["size"] == 2
    target = tmp_path / "copy.db"
    res = json.loads(run("log", "import", str(archive), "--store", str(target), "--json"))
    assert res["size"] == 2 and res["checkpoints"] == 2
    run("log", "import", str(archive), "--store", str(target), code=2)  # not empty


def test_witness_keygen(tmp_path: Path) -> None:
    vkey = run("witness", "keygen", "w.example", "-o", str(tmp_path / "w.skey")).strip()
    from glassbox.tlog.note import ALG_COSIGNATURE_V1, parse_vkey

    assert parse_vkey(vkey).alg == ALG_COSIGNATURE_V1
    run("witness", "keygen", "w.example", "-o", str(tmp_path / "w.skey"), code=2)


def test_checkpoint_remembers_and_catches_an_edited_tree(signed: tuple[Path, Path, Path]) -> None:
    bundle, other, pub = signed
    run("log", "add", str(bundle), "--public-key", str(pub))
    assert json.loads(run("log", "checkpoint", "--json"))["seen"] == "first"
    run("log", "add", str(other), "--public-key", str(pub))
    assert json.loads(run("log", "checkpoint", "--json"))["seen"] == "newer"
    from glassbox.tlog import local_log_dir, open_store
    from tests.tlog.helpers import corrupt_node

    assert json.loads(run("log", "verify-store", "--json"))["checkpoints"] == 2
    store = open_store(str(local_log_dir() / "log.db"))
    corrupt_node(store, 1, 0)  # the stored hash of leaves 0..1, edited in the database
    store.close()
    assert "level 1, index 0" in run("log", "verify-store", code=1)
    key = generate_private_key("ed25519")
    _priv, pub3 = write_keypair(key, bundle.with_name("third"))
    third = bundle.with_name("third.sig")
    third.write_text(json.dumps(sign_statement(statement("my-model", "w3"), key)))
    run("log", "add", str(third), "--public-key", str(pub3))
    out = run("log", "checkpoint", code=1)  # the log will not sign a tree that rewrote history
    assert "consistency proof does not reproduce the" in out


def test_prove_since_checks_consistency_offline(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """``prove`` adds a consistency proof from the checkpoint this machine remembers (or
    ``--since``); ``verify-proof --remember`` then relates it offline (``newer``, not
    ``unverified``), and a forged consistency proof exits 1."""
    import base64

    bundle, other, pub = signed
    run("log", "add", str(bundle), "--public-key", str(pub))
    cp = json.loads(run("log", "checkpoint", "--json"))  # remembered here: size 1
    assert cp["seen"] == "first"
    run("log", "add", str(other), "--public-key", str(pub))
    auto = tmp_path / "auto.json"
    out = json.loads(run("log", "prove", "1", "-o", str(auto), "--json"))
    assert out["since"] == 1 and out["consistent_from"] == 1 and out["tree_size"] == 2
    ok = json.loads(
        run("log", "verify-proof", str(auto), "--log-key", cp["vkey"], "--remember", "--json")
    )
    assert ok["seen"] == "newer" and ok["consistent_from"] == 1
    none = tmp_path / "none.json"
    assert (
        json.loads(run("log", "prove", "0", "-o", str(none), "--no-since", "--json"))["since"]
        is None
    )
    assert "consistency" not in json.loads(none.read_text())
    explicit = tmp_path / "explicit.json"
    assert "from size 1" in run("log", "prove", "0", "-o", str(explicit), "--since", "1")
    run("log", "prove", "0", "-o", str(explicit), "--since", "9", code=2)
    run("log", "prove", "0", "-o", str(explicit), "--since", "1", "--no-since", code=2)
    doc = json.loads(auto.read_text())
    h = base64.b64decode(doc["consistency"]["hashes"][0])
    doc["consistency"]["hashes"][0] = base64.b64encode(bytes([h[0] ^ 1]) + h[1:]).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    msg = run("log", "verify-proof", str(forged), "--log-key", cp["vkey"], code=1)
    assert "not consistent" in msg
