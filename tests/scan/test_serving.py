"""TorchServe .mar archives and TensorFlow SavedModel graphs are recognised and their code
paths reported (issue 18: formats never looked at)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from glassbox.scan import scan_path


def _mar(path: Path, handler: str) -> None:
    manifest = {
        "runtime": "python",
        "model": {"modelName": "m", "serializedFile": "model.pt", "handler": handler},
        "archiverVersion": "0.9.0",
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest))
        z.writestr("handler.py", "import os\nos.system('id')\n")
        z.writestr("model.pt", b"")


def test_mar_handler_code_is_reported(tmp_path: Path) -> None:
    _mar(tmp_path / "m.mar", "handler.py")
    report = scan_path(tmp_path / "m.mar", workers=1)
    assert "torchserve-mar" in report.formats
    code = [f for f in report.findings if f.rule_id == "GBX-CODE-002"]
    assert [f.subject for f in code] == ["handler.py"]


def test_mar_with_a_builtin_handler_has_no_code_finding(tmp_path: Path) -> None:
    _mar(tmp_path / "m.mar", "image_classifier")
    report = scan_path(tmp_path / "m.mar", workers=1)
    assert not [f for f in report.findings if f.rule_id == "GBX-CODE-002"]


def _node(name: str, op: str) -> bytes:
    body = b"\x0a" + bytes([len(name)]) + name.encode() + b"\x12" + bytes([len(op)]) + op.encode()
    return b"\x0a" + bytes([len(body)]) + body  # GraphDef.node


def test_savedmodel_file_and_python_ops_are_reported(tmp_path: Path) -> None:
    d = tmp_path / "sm"
    d.mkdir()
    graph = _node("x", "Const") + _node("r", "ReadFile") + _node("p", "EagerPyFunc")
    (d / "saved_model.pb").write_bytes(b"\x08\x01\x12" + bytes([len(graph)]) + graph)
    report = scan_path(d, workers=1)
    assert report.formats == {"tf-savedmodel": 1}
    assert sorted(f.subject or "" for f in report.findings) == ["EagerPyFunc", "ReadFile"]
    (d / "saved_model.pb").write_bytes(b"\x08\x01\x12\x0c" + _node("x", "MatMul"))
    assert scan_path(d, workers=1).findings == []
