"""A file that claims a model format and cannot be analysed fails the gate; an empty target is
an error; unrecognised files are always reported (issue 11: a pipeline gate passed on garbage)."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.errors import InputError
from glassbox.scan import Severity, render_text, scan_path, to_sarif

GARBAGE = random.Random(11).randbytes(4096)


def rule_ids(path: Path) -> list[str]:
    return [f.rule_id for f in scan_path(path, workers=1).findings]


@pytest.mark.parametrize(
    "name",
    [
        "model.pt",
        "model.pth",
        "pytorch_model.bin",
        "last.ckpt",
        "clf.pkl",
        "clf.joblib",
        "model.safetensors",
        "model.gguf",
        "model.onnx",
        "model.h5",
        "model.keras",
        "arr.npy",
        "arr.npz",
    ],
)
def test_garbage_named_as_a_model_format_fails_the_default_gate(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(GARBAGE)
    report = scan_path(p, workers=1)
    assert report.fails(Severity.HIGH)
    assert "GBX-FMT-001" in {f.rule_id for f in report.findings} or any(
        f.severity >= Severity.HIGH for f in report.findings
    )


def test_random_pt_is_fmt_001_and_an_empty_pt_too(tmp_path: Path) -> None:
    (tmp_path / "m.pt").write_bytes(GARBAGE)
    assert rule_ids(tmp_path / "m.pt") == ["GBX-FMT-001"]
    (tmp_path / "e.pt").write_bytes(b"")
    assert rule_ids(tmp_path / "e.pt") == ["GBX-FMT-001"]


def test_a_real_file_of_the_claimed_format_is_clean(tmp_path: Path) -> None:
    p = tmp_path / "state.pkl"
    p.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    assert rule_ids(p) == []
    # The same bytes under a name that claims another format are reported.
    q = tmp_path / "model.safetensors"
    q.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    assert rule_ids(q) == ["GBX-FMT-001"]


def test_unnamed_unknown_bytes_are_not_a_finding_but_are_listed(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_bytes(b"hello\n")
    (tmp_path / "blob.dat").write_bytes(GARBAGE)
    (tmp_path / "model.pt").write_bytes(GARBAGE)
    report = scan_path(tmp_path, workers=1)
    assert report.unrecognised == ["blob.dat", "model.pt", "notes.txt"]
    assert [f.path for f in report.findings] == ["model.pt"]
    text = render_text(report)
    assert "3 file(s) not recognised" in text
    data = report.to_dict()
    assert data["unrecognised"] == ["blob.dat", "model.pt", "notes.txt"]
    assert data["files_recognised"] == 0
    run = to_sarif(report)["runs"][0]
    assert run["properties"]["filesNotRecognised"] == 3
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("3 file(s) not recognised" in n["message"]["text"] for n in notes)


def test_openvino_weights_beside_their_graph_are_not_a_claim(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(GARBAGE)
    (tmp_path / "model.xml").write_bytes(b"<net/>")
    assert rule_ids(tmp_path / "model.bin") == []


def test_empty_directory_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_bytes(b"ref: x\n")
    with pytest.raises(InputError, match="holds no files to scan"):
        scan_path(tmp_path)


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(cli, ["scan", str(empty)])
    assert res.exit_code == 2
    assert "holds no files to scan" in res.output
    (tmp_path / "m.pt").write_bytes(GARBAGE)
    res = runner.invoke(cli, ["scan", str(tmp_path / "m.pt")])
    assert res.exit_code == 1, res.output
    assert "GBX-FMT-001" in res.output and "1 file(s) not recognised" in res.output
    res = runner.invoke(cli, ["scan", "--json", str(tmp_path / "m.pt")])
    assert json.loads(res.output)["unrecognised"] == ["m.pt"]
