"""Non-pickle formats: safetensors, GGUF, ONNX, numpy, Keras, chat templates, detection."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.scan import scan_path
from glassbox.scan.detect import Format, detect
from glassbox.scan.templates import check_template
from tests.scan import make_corpus as mc

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def findings(tmp_path: Path, name: str, data: bytes) -> list[tuple[str, str | None]]:
    p = tmp_path / name
    p.write_bytes(data)
    return [(f.rule_id, f.subject) for f in scan_path(p, workers=1).findings]


def test_detection_ignores_names() -> None:
    evil = mc.call("os", "system", "true")
    assert detect(evil, len(evil), "config.json") is Format.PICKLE
    assert detect(b"PK\x03\x04rest", 100, "x.pkl") is Format.ZIP
    assert detect(b"GGUF\x03\x00\x00\x00", 100, "x.bin") is Format.GGUF
    assert detect(b"\x93NUMPY\x01\x00", 100, "") is Format.NPY
    assert detect(b'{"a": 1}', 8, "") is Format.JSON
    assert detect(b"hello world", 11, "") is Format.UNKNOWN
    st_head = struct.pack("<Q", 2) + b"{}"
    assert detect(st_head, 10, "") is Format.SAFETENSORS


# ---------------------------------------------------------------- safetensors
def test_safetensors_valid_header_is_clean(tmp_path: Path) -> None:
    t = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    data = mc.safetensors_raw({"a": t, "__metadata__": {"k": "v"}}, b"\x00" * 8)
    assert findings(tmp_path, "ok.safetensors", data) == []


@pytest.mark.parametrize(
    ("header", "body"),
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}}, 12),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, 0),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, 8),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1}}, 8),
        ({"__metadata__": {"k": 1}}, 0),
        ({"a": [1, 2]}, 0),
    ],
)
def test_safetensors_header_errors(tmp_path: Path, header: object, body: int) -> None:
    data = mc.safetensors_raw(header, b"\x00" * body)  # type: ignore[arg-type]
    assert {r for r, _ in findings(tmp_path, "x.safetensors", data)} == {"GBX-ST-001"}


def test_safetensors_truncated_and_invalid_json(tmp_path: Path) -> None:
    assert (
        findings(tmp_path, "a.safetensors", struct.pack("<Q", 100) + b'{"a"')[0][0] == "GBX-ST-001"
    )
    assert (
        findings(tmp_path, "b.safetensors", struct.pack("<Q", 5) + b"{nope")[0][0] == "GBX-ST-001"
    )


@FUZZ
@given(
    st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            st.integers() | st.text(max_size=4),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
            max_leaves=8,
        ),
        max_size=4,
    ),
    st.binary(max_size=64),
)
def test_safetensors_fuzz(tmp_path: Path, header: dict[str, object], body: bytes) -> None:
    findings(tmp_path, "f.safetensors", mc.safetensors_raw(header, body))


# ---------------------------------------------------------------- GGUF
def test_gguf_from_the_real_writer_is_clean(tmp_path: Path) -> None:
    data = mc.gguf_bytes(tmp_path, "ok", mc.LLAMA3_TEMPLATE)
    assert findings(tmp_path, "ok.gguf", data) == []


def test_gguf_truncation_and_hostile_lengths(tmp_path: Path) -> None:
    data = mc.gguf_bytes(tmp_path, "t", None)
    for cut in (10, 30, len(data) // 2, len(data) - 40):
        assert {r for r, _ in findings(tmp_path, "t.gguf", data[:cut])} == {"GBX-GGUF-001"}
    huge = b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0)
    assert findings(tmp_path, "h.gguf", huge)[0][0] == "GBX-GGUF-001"


@pytest.mark.parametrize("name", sorted(mc.EVIL_TEMPLATES))
def test_gguf_evil_templates(tmp_path: Path, name: str) -> None:
    data = mc.gguf_bytes(tmp_path, name, mc.EVIL_TEMPLATES[name])
    assert ("GBX-TPL-001", "tokenizer.chat_template") in findings(tmp_path, "e.gguf", data)


@FUZZ
@given(st.integers(min_value=0, max_value=10_000), st.binary(min_size=1, max_size=8))
def test_gguf_fuzz(tmp_path: Path, pos: int, patch: bytes) -> None:
    base = _GGUF_BASE or b""
    at = pos % len(base)
    findings(tmp_path, "f.gguf", base[:at] + patch + base[at + len(patch) :])


_GGUF_BASE: bytes | None = None


@pytest.fixture(autouse=True, scope="module")
def _gguf_base(tmp_path_factory: pytest.TempPathFactory) -> None:
    global _GGUF_BASE
    _GGUF_BASE = mc.gguf_bytes(tmp_path_factory.mktemp("g"), "base", mc.BENIGN_TEMPLATE)


# ---------------------------------------------------------------- templates
@pytest.mark.parametrize("template", [mc.BENIGN_TEMPLATE, mc.LLAMA3_TEMPLATE, mc.ZEPHYR_TEMPLATE])
def test_real_templates_are_clean(template: str) -> None:
    assert check_template(template) == ([], None)


def test_template_syntax_error_is_reported(tmp_path: Path) -> None:
    problems, error = check_template("{% for x in %}{{ x.__len__ }}")
    assert error and problems  # the regex pass still reports what it saw
    cfg = json.dumps({"chat_template": "{% for x in %}{{ x|attr('y') }}"}).encode()
    got = findings(tmp_path, "tokenizer_config.json", cfg)
    assert ("GBX-TPL-002", "chat_template") in got


def test_templates_without_escape_ingredients_skip_the_parser() -> None:
    # Nothing in it can reach Python internals, so it is not parsed (syntax is the loader's job).
    assert check_template("{% for x in %}") == ([], None)


def test_named_template_list_in_tokenizer_config(tmp_path: Path) -> None:
    cfg = {
        "chat_template": [
            {"name": "default", "template": mc.BENIGN_TEMPLATE},
            {"name": "tool_use", "template": mc.EVIL_TEMPLATES["jinja-subclasses"]},
        ]
    }
    assert findings(tmp_path, "tokenizer_config.json", json.dumps(cfg).encode()) == [
        ("GBX-TPL-001", "chat_template.tool_use")
    ]


# ---------------------------------------------------------------- ONNX
def test_onnx_external_data(tmp_path: Path) -> None:
    assert findings(tmp_path, "ok.onnx", mc.onnx_model(external="w.bin")) == []
    got = findings(tmp_path, "bad.onnx", mc.onnx_model(external="../../etc/passwd"))
    assert got == [("GBX-ONNX-001", "../../etc/passwd")]
    assert (
        findings(tmp_path, "abs.onnx", mc.onnx_model(external="/etc/passwd"))[0][0]
        == "GBX-ONNX-001"
    )


def test_onnx_external_data_through_symlink(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/etc")
    got = findings(tmp_path, "s.onnx", mc.onnx_model(external="link/passwd"))
    assert ("GBX-ONNX-001", "link/passwd") in got


def test_onnx_domains(tmp_path: Path) -> None:
    got = findings(tmp_path, "d.onnx", mc.onnx_model(domain="evil.custom"))
    assert ("GBX-ONNX-002", "evil.custom") in got
    p = tmp_path / "ms.onnx"
    p.write_bytes(mc.onnx_model(domain="com.microsoft"))
    (f,) = scan_path(p, workers=1).findings
    assert str(f.severity) == "low"


def test_onnx_garbage_is_a_finding(tmp_path: Path) -> None:
    assert findings(tmp_path, "g.onnx", b"\x08\x07\x12\xff\xff\xff\xff\x0f")[0][0] == "GBX-ONNX-003"


# ---------------------------------------------------------------- numpy
def test_npy_object_array_from_numpy_is_flagged_low_only(tmp_path: Path) -> None:
    p = tmp_path / "o.npy"
    np.save(p, np.array([1, "a"], dtype=object), allow_pickle=True)
    got = {(f.rule_id, str(f.severity)) for f in scan_path(p, workers=1).findings}
    assert got == {("GBX-PKL-009", "low")}


def test_npy_header_errors(tmp_path: Path) -> None:
    bad = b"\x93NUMPY\x01\x00" + struct.pack("<H", 10) + b"__import__"
    assert findings(tmp_path, "b.npy", bad) == [("GBX-NPY-001", None)]
    short = (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", 50)
        + b"{'descr': '<f8', 'fortran_order': False, 'shape': (10,)}"[:50]
    )
    assert findings(tmp_path, "s.npy", short)[0][0] == "GBX-NPY-001"


# ---------------------------------------------------------------- Keras
def test_keras_configs(tmp_path: Path) -> None:
    assert findings(tmp_path, "ok.keras", mc.keras_zip(mc.keras_dense_config())) == []
    assert ("GBX-KER-001", "lambda") in findings(
        tmp_path, "l.keras", mc.keras_zip(mc.keras_lambda_config())
    )
    got = findings(tmp_path, "g.json", json.dumps(mc.keras_get_file_gadget()).encode())
    assert ("GBX-KER-002", "keras.utils.get_file") in got or (
        "GBX-KER-001",
        "keras.utils.get_file",
    ) in got
    custom = mc.keras_dense_config()
    custom["config"]["layers"].append({"module": "my_layers", "class_name": "Fancy", "config": {}})  # type: ignore[index]
    assert ("GBX-KER-002", "my_layers.Fancy") in findings(
        tmp_path, "c.json", json.dumps(custom).encode()
    )


def test_broken_config_json_is_reported(tmp_path: Path) -> None:
    assert findings(tmp_path, "config.json", b"{not json") == [("GBX-KER-003", None)]
    assert findings(tmp_path, "other.json", b"{not json") == []


def test_hdf5_without_h5py_is_not_analysed_so_it_fails_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import h5py

    # Scan one HDF5 file first: the compiled scanner once kept the module its first import
    # found and took sys.modules' None for it afterwards (a crash, not this finding).
    ok = tmp_path / "ok.h5"
    with h5py.File(ok, "w") as h5:
        h5.attrs["model_config"] = json.dumps(mc.keras_dense_config())
    assert scan_path(ok, workers=1).findings == []
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    p = tmp_path / "m.h5"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    (f,) = scan_path(p, workers=1).findings
    assert f.rule_id == "GBX-H5-001" and str(f.severity) == "high"


def test_hdf5_after_a_user_block_is_analysed(tmp_path: Path) -> None:
    import h5py

    p = tmp_path / "m.h5"
    config = {"class_name": "Lambda", "config": {"function": ["code", None, None]}}
    with h5py.File(p, "w", userblock_size=1024) as h5:
        h5.attrs["model_config"] = json.dumps(config)
    with p.open("r+b") as f:
        f.write(b"#!/bin/sh\nanything\n")
    found = scan_path(p, workers=1)
    assert found.formats == {"hdf5": 1}
    assert "GBX-KER-001" in {f.rule_id for f in found.findings}


def test_hdf5_read_by_path_and_as_a_member_alike_and_closed_after(tmp_path: Path) -> None:
    """A file on disk is opened through h5py's low-level API (cheaper than ``h5py.File``), a
    member of an archive through ``h5py.File`` on a copy: both read the same model_config,
    and the file is closed when the scan returns (HDF5 refuses to reopen for writing a file
    it still holds open read-only)."""
    import h5py

    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as h5:
        h5.attrs["model_config"] = json.dumps(mc.keras2_lambda_json())
        h5.attrs["other"] = "x"
    direct = scan_path(p, workers=1)
    z = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(p, "model.h5")
    wrapped = scan_path(z, workers=1)
    assert [(f.rule_id, f.subject) for f in direct.findings] == [("GBX-KER-001", "lambda")]
    assert [(f.rule_id, f.subject, f.member) for f in wrapped.findings] == [
        ("GBX-KER-001", "lambda", "model.h5")
    ]
    with h5py.File(p, "r+") as h5:  # raises if the scan left the file open
        assert h5.attrs["other"] == "x"
    broken = tmp_path / "broken.h5"
    broken.write_bytes(p.read_bytes()[:600])
    (f,) = scan_path(broken, workers=1).findings
    assert f.rule_id == "GBX-FS-002"


def test_safetensors_unindexed_bytes_are_hidden_data(tmp_path: Path) -> None:
    t = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
    got = findings(tmp_path, "h.safetensors", mc.safetensors_raw(t, b"\x00" * 16))
    assert got == [("GBX-ST-001", None)]


def test_gguf_duplicate_metadata_key(tmp_path: Path) -> None:
    got = {r for r, _ in findings(tmp_path, "d.gguf", mc.gguf_duplicate_key(tmp_path))}
    assert "GBX-GGUF-001" in got


def test_polyglot_prefix_zip(tmp_path: Path) -> None:
    data = mc.benign_pickle() + mc.keras_zip(mc.keras_lambda_config())
    got = {r for r, _ in findings(tmp_path, "p.keras", data)}
    assert {"GBX-ZIP-008", "GBX-KER-001"} <= got
    assert findings(tmp_path, "plain.pkl", mc.benign_pickle()) == []


@pytest.mark.parametrize(
    "text",
    [
        b"cat\ndog\nbird\n",  # a labels file: parses as GLOBAL at.dog, then breaks
        b"import torch\nimport numpy as np\n\nclass Model:\n    pass\n",
        b"certifi>=2023\ncharset-normalizer\nrequests\n",
        b"I like models\n",
        b"N.",
    ],
)
def test_text_that_looks_like_protocol_0_is_not_flagged(tmp_path: Path, text: bytes) -> None:
    assert findings(tmp_path, "notes.txt", text) == []


def test_onnx_model_local_functions_are_not_custom_ops(tmp_path: Path) -> None:
    import onnx

    assert findings(tmp_path, "f.onnx", mc.onnx_local_function()) == []
    model = onnx.load_model_from_string(mc.onnx_local_function())
    model.functions[0].node[0].domain = "evil.custom"  # a custom op hidden in a function body
    got = findings(tmp_path, "g.onnx", model.SerializeToString())
    assert ("GBX-ONNX-002", "evil.custom") in got


def test_torchscript_archives(tmp_path: Path) -> None:
    import io
    import zipfile

    clean = mc.torchscript_bytes(tmp_path, reads_file=False)
    assert findings(tmp_path, "ts.pt", clean) == []
    got = findings(tmp_path, "r.pt", mc.torchscript_bytes(tmp_path, reads_file=True))
    assert ("GBX-TS-001", "torch.from_file") in got
    # The same code calling an operator from a custom namespace (needs a native library).
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(clean)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("modules/activation.py"):
                data += b"\n    y = ops.evil_ns.run(x)\n"
            dst.writestr(info, data)
    assert ("GBX-TS-001", "evil_ns") in findings(tmp_path, "c.pt", out.getvalue())
    # __torch__ names are only trusted inside a TorchScript archive.
    plain = mc.torch_zip(mc.call("__torch__.x", "Evil"))
    assert ("GBX-PKL-002", "__torch__.x.Evil") in findings(tmp_path, "p.pt", plain)


def test_keras_h5_model_config(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    bad = mc.keras_h5(mc.keras2_lambda_json(), tmp_path)
    ok = mc.keras_h5(mc.keras_dense_config(), tmp_path)
    assert bad is not None and ok is not None
    assert findings(tmp_path, "ok.h5", ok) == []
    assert findings(tmp_path, "bad.h5", bad) == [("GBX-KER-001", "lambda")]


def test_protocol_0_pickle_that_is_also_a_zlib_header_is_scanned_as_a_pickle(
    tmp_path: Path,
) -> None:
    # Regression: b"(S" (MARK, STRING) passes the zlib header check ((0x28 << 8 | 0x53) % 31
    # == 0), so this INST payload was read as zlib: never seen as a pickle, it was reported
    # only as an unreadable stream (medium, no callable named), and a benign pickle that
    # starts the same way was a false positive.
    evil = b"(S'true'\nios\nsystem\n."
    assert (evil[0] << 8 | evil[1]) % 31 == 0
    assert detect(evil, len(evil), "x.pkl") is Format.MAYBE_PICKLE
    assert findings(tmp_path, "evil.pkl", evil) == [("GBX-PKL-001", "os.system")]
    assert findings(tmp_path, "ok.pkl", b"(S'a'\np0\ntp1\n.") == []
    # Real zlib streams are still inflated and scanned, including one whose header byte is
    # also a pickle opcode (a 8 KiB window gives 0x58, BINUNICODE).
    payload = mc.call("os", "system", "true")
    small_window = zlib.compressobj(wbits=13)
    for packed in (
        zlib.compress(payload),
        small_window.compress(payload) + small_window.flush(),
    ):
        assert detect(packed, len(packed), "") is Format.ZLIB
        assert ("GBX-PKL-001", "os.system") in findings(tmp_path, "evil.zlib", packed)


def test_raw_bytes_behind_a_zlib_header_are_not_a_broken_zlib_stream(tmp_path: Path) -> None:
    # Regression: about one byte pair in a thousand is a valid zlib header, so a checkpoint
    # with a few hundred tensors often has a storage that starts with one; it was reported as
    # an unreadable zlib stream (medium), a false positive on a benign model.
    import random

    import torch

    raw = b"\x78\x9c" + random.Random(7).randbytes(70_000)
    tensor = torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone()
    torch.save({"w": tensor}, tmp_path / "model.pt")
    assert [f.rule_id for f in scan_path(tmp_path / "model.pt", workers=1).findings] == []
    assert findings(tmp_path, "raw.dat", raw) == []  # a .bin name claims a format: test_claims
    # A real zlib stream that breaks after the payload is still scanned and reported.
    packed = bytearray(
        zlib.compress(mc.call("os", "system", "true") + random.Random(8).randbytes(200_000))
    )
    packed[-100:] = bytes(100)
    rules = {rule for rule, _ in findings(tmp_path, "broken.zlib", bytes(packed))}
    assert "GBX-PKL-001" in rules
