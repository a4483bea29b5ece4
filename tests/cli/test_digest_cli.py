"""``glassbox digest`` and ``glassbox dataset``: output, exit codes, and the model_signing root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.digest import Manifest, hash_model


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(30_000))
    (root / "sub" / "config.json").write_bytes(b"{}")
    return root


def test_digest_prints_the_model_signing_root(model: Path) -> None:
    oms = pytest.importorskip("model_signing.hashing")
    import hashlib

    expected = hashlib.sha256(
        b"".join(rd.digest.digest_value for rd in oms.hash(model).resource_descriptors())
    ).hexdigest()
    code, out, _ = run("digest", str(model))
    assert code == 0
    assert out == f"{expected}  {model}\n"


def test_digest_json_is_the_manifest(model: Path) -> None:
    code, out, _ = run("digest", str(model), "--json", "--method", "sha256-sharded-10000")
    assert code == 0
    manifest = Manifest.from_dict(json.loads(out))
    assert manifest.method.shard_size == 10000
    assert [i.name for i in manifest.items][:3] == [
        "sub/config.json:0:2",
        "weights.bin:0:10000",
        "weights.bin:10000:20000",
    ]
    assert "model.sig" in manifest.ignore_paths


def test_digest_ignores_the_signature_and_given_paths(model: Path) -> None:
    _, before, _ = run("digest", str(model))
    (model / "model.sig").write_text("{}")
    (model / "README.md").write_text("docs")
    _, after, _ = run("digest", str(model), "--ignore", "README.md")
    assert before == after


def test_digest_blake3_and_no_cache(model: Path) -> None:
    code, out, _ = run("digest", str(model), "--method", "blake3", "--no-cache", "--json")
    assert code == 0
    assert json.loads(out)["method"] == "blake3"
    assert Manifest.from_dict(json.loads(out)) == hash_model(
        model, Manifest.from_dict(json.loads(out)).method, ignore_paths=["model.sig"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "md5"], "unknown hash method"),
        (["--method", "sha256-sharded-x"], "shard size must be an integer"),
        (["--method", "blake3-sharded-100"], "BLAKE3 is not sharded"),
        (["--format", "csv"], "apply to --dataset only"),
        (["--workers", "2"], "apply to --dataset only"),
    ],
)
def test_digest_bad_usage_exits_2(model: Path, args: list[str], message: str) -> None:
    code, _, err = run("digest", str(model), *args)
    assert code == 2
    assert message in err


def test_digest_errors_name_the_problem(tmp_path: Path, model: Path) -> None:
    code, _, err = run("digest", str(tmp_path / "missing"))
    assert (code, err.count("\n")) == (2, 1)
    assert "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run("digest", str(tmp_path / "empty"))
    assert code == 2 and "no files to hash" in err
    (model / "escape").symlink_to(tmp_path)
    code, _, err = run("digest", str(model), "--allow-symlinks")
    assert code == 2 and "escape points outside the model directory" in err


def test_dataset_commit_prove_verify(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("id,text\n1,alpha\n2,beta\n3,gamma\n")
    code, out, _ = run("digest", "--dataset", str(data), "--json")
    assert code == 0
    commitment = json.loads(out)
    assert commitment["size"] == 3 and commitment["metadata"]["header"] == ["id", "text"]
    code, out, _ = run("digest", "--dataset", str(data))
    assert out == f"{commitment['root']}  {data}  (3 csv records)\n"
    (tmp_path / "c.json").write_text(json.dumps(commitment))

    proof = tmp_path / "proof.json"
    code, _, _ = run("dataset", "prove", str(data), "--record", "1", "--out", str(proof))
    assert code == 0
    assert json.loads(proof.read_text())["index"] == 1

    code, out, err = run("dataset", "verify-record", str(proof), "--root", commitment["root"])
    assert code == 0
    assert out == 'verified: record is in the dataset: ["2","beta"]\n'
    assert "index was not checked" in err
    code, out, _ = run(
        "dataset", "verify-record", str(proof), "--commitment", str(tmp_path / "c.json")
    )
    assert (code, out) == (0, 'verified: record 1 is in the dataset: ["2","beta"]\n')

    forged = json.loads(proof.read_text())
    forged["record"] = "WyIyIiwiZ2FtbWEiXQ=="  # ["2","gamma"]
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    code, _, err = run(
        "dataset", "verify-record", str(tmp_path / "forged.json"), "--root", commitment["root"]
    )
    assert code == 1 and "does not lead to the tree root" in err

    code, _, err = run("dataset", "verify-record", str(proof), "--root", "00" * 32)
    assert code == 1

    # A proof path naming an endless device is refused after a bounded read, never read out.
    code, _, err = run("dataset", "verify-record", "/dev/zero", "--root", commitment["root"])
    assert code == 2 and "too large to be a JSON file" in err
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run("dataset", "verify-record", str(tmp_path / "deep.json"), "--root", "00")
    assert code == 2 and "error:" in err


def test_dataset_workers_give_the_same_root(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(50)))
    code, one, _ = run("digest", "--dataset", str(data))
    assert code == 0
    assert run("digest", "--dataset", str(data), "--workers", "2") == (0, one, "")
    code, _, err = run("digest", "--dataset", str(data), "--workers", "0")
    assert code == 2 and "--workers" in err


def test_dataset_absence_via_cli(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": 1}\n{"id": 2}\n')
    code, out, _ = run("digest", "--dataset", str(data), "--sorted", "--json")
    commitment = json.loads(out)
    assert commitment["sorted"] is True
    code, out, _ = run("dataset", "prove", str(data), "--absent", '{"id": 3}')
    assert code == 0
    (tmp_path / "absent.json").write_text(out)
    code, out, _ = run(
        "dataset",
        "verify-record",
        str(tmp_path / "absent.json"),
        "--root",
        commitment["root"],
        "--size",
        "2",
        "--json",
    )
    assert code == 0 and json.loads(out)["result"] == "absent"
    code, _, err = run("dataset", "prove", str(data), "--absent", '{"id": 1}')
    assert code == 2 and "is in the dataset" in err


def test_dataset_usage_errors(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("[1]\n")
    assert run("dataset", "prove", str(data))[0] == 2
    code, _, err = run("dataset", "prove", str(data), "--record", "5")
    assert code == 2 and "record 5 does not exist" in err
    (tmp_path / "p.json").write_text("not json")
    code, _, err = run("dataset", "verify-record", str(tmp_path / "p.json"), "--root", "00" * 32)
    assert code == 2 and "not valid JSON" in err
    (tmp_path / "p.json").write_text("{}")
    code, _, err = run("dataset", "verify-record", str(tmp_path / "p.json"), "--root", "00" * 32)
    assert code == 2 and "malformed record proof" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1]\n{oops\n")
    code, _, err = run("digest", "--dataset", str(bad))
    assert code == 2 and "line 2 is not valid JSON" in err


def test_digest_startup_is_light() -> None:
    """The digest command must not pull in rich, model_signing or the other parts."""
    code = (
        "import sys, glassbox.cli.digest;"
        "bad = [m for m in ('rich', 'model_signing', 'torch', 'numpy', 'pyarrow', 'blake3')"
        " if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_progress_bar_gets_the_total_and_every_byte(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    from collections.abc import Iterator

    import glassbox.cli.digest as digest_cli
    from glassbox.cli._common import Progress

    calls: list[tuple[str, int | None]] = []
    advanced: list[int] = []

    @contextlib.contextmanager
    def fake_progress(description: str, total: int | None) -> Iterator[Progress]:
        calls.append((description, total))
        yield Progress(advanced.append)

    monkeypatch.setattr(digest_cli, "_is_terminal", lambda: True)
    monkeypatch.setattr(digest_cli, "progress", fake_progress)
    code, _, _ = run("digest", str(model), "--no-cache")
    assert code == 0
    assert calls == [("hashing model", 30_002)]
    assert sum(advanced) == 30_002


def test_verify_record_escapes_control_characters_and_reports_json_failure(
    tmp_path: Path,
) -> None:
    """A hostile proof may carry any bytes; printing them must not drive the terminal."""
    import base64

    from glassbox.digest.merkle import leaf_hash

    record = b"\x1b[2J\rforged"
    proof = {
        "type": "https://glassbox.dev/dataset-record-proof/v1",
        "index": 0,
        "tree_size": 1,
        "root": leaf_hash(record).hex(),  # a one-record tree: the root is the leaf
        "record": base64.b64encode(record).decode(),
        "audit_path": [],
    }
    (tmp_path / "p.json").write_text(json.dumps(proof))
    code, out, _ = run(
        "dataset", "verify-record", str(tmp_path / "p.json"), "--root", proof["root"]
    )
    assert code == 0
    assert "\x1b" not in out and "\r" not in out
    assert "\\x1b[2J\\rforged" in out
    code, out, _ = run(
        "dataset", "verify-record", str(tmp_path / "p.json"), "--root", "11" * 32, "--json"
    )
    assert code == 1
    assert json.loads(out)["verified"] is False
