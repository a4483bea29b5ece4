"""Parser parity with the real loaders (issue 18): what CPython, gzip/bz2/lzma, numpy, json and
the config loaders accept, the scanner reads the same way."""

from __future__ import annotations

import bz2
import json
import lzma
import pickle
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.errors import InputError
from glassbox.scan import Severity, classify, parse_allowlist, scan_path
from glassbox.scan.callables import Verdict
from glassbox.scan.pickle_ops import pickle_int_literal
from tests.scan import make_corpus as mc

PAYLOAD = b"cos\nsystem\n(S'true'\ntR."


def rules(tmp_path: Path, name: str, data: bytes) -> set[str]:
    p = tmp_path / name
    p.write_bytes(data)
    return {f.rule_id for f in scan_path(p, workers=1).findings}


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789abcdefxXoObB_+- \t", min_size=1, max_size=12).map(str.encode))
def test_int_literals_are_read_as_cpython_reads_them(text: bytes) -> None:
    if text in (b"00", b"01") or b"\n" in text:
        return
    try:
        want: object = pickle.loads(b"I" + text + b"\n.")
    except Exception:
        want = None
    try:
        got: object = pickle_int_literal(text)
    except (ValueError, UnicodeDecodeError):
        got = None
    if want is not None:  # whatever CPython accepts, the scanner reads to the same value
        assert got == want, text


@pytest.mark.parametrize("prefix", [b"I0x1f\n0", b"I010\n0", b"I 7\n0", b"L0o17\n0", b"I1_0\n0"])
def test_pickle_without_proto_and_with_literal_ints_is_followed(
    tmp_path: Path, prefix: bytes
) -> None:
    assert "GBX-PKL-001" in rules(tmp_path, "x.dat", prefix + PAYLOAD)


def test_padding_past_a_limit_is_reported_not_passed(tmp_path: Path) -> None:
    import glassbox.scan.pickle_ops as ops

    # A weakly detected (no PROTO) stream that hits a limit used to be "not a pickle".
    old = ops.MAX_MEMO
    ops.MAX_MEMO = 1000
    try:
        pad = b"N" + b"".join(b"p%d\n" % i for i in range(1100)) + b"0"
        found = rules(tmp_path, "x.dat", pad + PAYLOAD)
    finally:
        ops.MAX_MEMO = old
    assert "GBX-LIM-002" in found


@pytest.mark.parametrize(
    "name,pack",
    [
        ("x.pkl.gz", lambda a, b: __import__("gzip").compress(a) + __import__("gzip").compress(b)),
        ("x.pkl.bz2", lambda a, b: bz2.compress(a) + bz2.compress(b)),
        ("x.pkl.xz", lambda a, b: lzma.compress(a) + lzma.compress(b)),
        ("x.pkl.z", lambda a, b: zlib.compress(a) + zlib.compress(b)),
    ],
)
def test_payload_split_over_concatenated_streams(tmp_path: Path, name: str, pack: object) -> None:
    data = pack(PAYLOAD[:5], PAYLOAD[5:])  # type: ignore[operator]
    assert "GBX-PKL-001" in rules(tmp_path, name, data)


def test_junk_after_a_bz2_stream_is_ignored_as_bz2_open_does(tmp_path: Path) -> None:
    data = bz2.compress(pickle.dumps({"a": 1})) + b"trailing junk"
    assert rules(tmp_path, "x.pkl.bz2", data) == set()


def test_lzma_alone_lz4_and_zstd_are_followed(tmp_path: Path) -> None:
    import lz4.frame
    import zstandard

    evil = mc.call("os", "system", "true")
    alone = lzma.compress(evil, format=lzma.FORMAT_ALONE)
    assert "GBX-PKL-001" in rules(tmp_path, "a.pkl", alone)
    assert "GBX-PKL-001" in rules(tmp_path, "b.pkl", lz4.frame.compress(evil))
    two = zstandard.ZstdCompressor().compress(evil[:4]) + zstandard.ZstdCompressor().compress(
        evil[4:]
    )
    assert "GBX-PKL-001" in rules(tmp_path, "c.pkl", two)


def test_lz4_bomb_is_stopped(tmp_path: Path) -> None:
    import lz4.frame

    from glassbox.scan import Limits

    p = tmp_path / "bomb.lz4"
    # A pickle the interpreter must read to its end: the expansion check stops it.
    p.write_bytes(lz4.frame.compress(b"\x80\x02" + b"N0" * (32 << 20) + b"N."))
    found = scan_path(p, workers=1, limits=Limits(ratio_floor=1 << 20)).findings
    assert "GBX-ZIP-003" in {f.rule_id for f in found}


@pytest.mark.parametrize("descr", ["object", "|O8", "O", "i4,O", "(2,)O", "object_"])
def test_npy_object_dtype_spellings(tmp_path: Path, descr: str) -> None:
    import struct

    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}".ljust(117) + "\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + PAYLOAD
    assert "GBX-PKL-001" in rules(tmp_path, "a.npy", data)


def test_json_in_utf16_is_read(tmp_path: Path) -> None:
    config = {"auto_map": {"AutoModel": "modeling_x.Model"}}
    for enc in ("utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"):
        found = rules(tmp_path, "config.json", json.dumps(config).encode(enc))
        assert found == {"GBX-CODE-001"}, enc


def test_auto_map_names_each_code_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auto_map": {
                    "AutoConfig": "configuration_x.XConfig",
                    "AutoModel": "other/repo--modeling_x.XModel",
                    "AutoTokenizer": ["tokenization_x.XTok", None],
                }
            }
        )
    )
    found = scan_path(tmp_path / "config.json", workers=1).findings
    assert sorted(f.subject or "" for f in found) == [
        "configuration_x.py",
        "other/repo:modeling_x.py",
        "tokenization_x.py",
    ]
    assert all(f.severity is Severity.HIGH for f in found)


def test_yaml_targets_are_judged_against_the_allowlist(tmp_path: Path) -> None:
    (tmp_path / "model_config.yaml").write_text(
        "model:\n"
        "  encoder:\n    _target_: nemo.collections.asr.modules.ConformerEncoder\n"
        "  hook:\n    _target_: os.system\n    command: touch x\n"
        "  layer:\n    class_path: collections.OrderedDict\n"
    )
    found = {f.subject: f.severity for f in scan_path(tmp_path, workers=1).findings}
    assert found == {
        "nemo.collections.asr.modules.ConformerEncoder": Severity.HIGH,
        "os.system": Severity.CRITICAL,
    }
    # A YAML tag that would build an object is not followed: safe_load refuses it.
    (tmp_path / "model_config.yaml").write_text("a: !!python/object/apply:os.system [x]\n")
    assert {f.rule_id for f in scan_path(tmp_path, workers=1).findings} == {"GBX-CFG-002"}


def test_dotted_names_are_judged_by_what_they_reach() -> None:
    assert classify("logging", "os.system").verdict is Verdict.DANGEROUS
    assert classify("torch.serialization", "os.system").verdict is Verdict.DANGEROUS
    assert classify("collections", "abc.Mapping").verdict is Verdict.UNKNOWN
    for module, name in [
        ("_xxsubinterpreters", "run_string"),
        ("sympy", "sympify"),
        ("numexpr", "evaluate"),
        ("pandas", "eval"),
        ("_frozen_importlib", "_call_with_frames_removed"),
    ]:
        assert classify(module, name).verdict is Verdict.DANGEROUS, (module, name)


def test_allowlist_entries_need_a_reason_and_a_dotted_name() -> None:
    ok = parse_allowlist({"allow": [{"callable": "a.B", "reason": "reviewed"}]}, "t")
    assert [e.callable for e in ok] == ["a.B"]
    for bad in (
        {"allow": [{"callable": "a.B"}]},
        {"allow": [{"callable": "B", "reason": "x"}]},
        {"allow": [{"callable": "a.B", "reason": "x", "extra": 1}]},
        {"allow": "a.B"},
    ):
        with pytest.raises(InputError):
            parse_allowlist(bad, "t")


def test_allowlist_wildcard_and_no_override_of_dangerous(tmp_path: Path) -> None:
    from glassbox.scan import AllowEntry

    p = tmp_path / "x.pkl"
    p.write_bytes(mc.call("mylab.layers", "Block", "x"))
    assert scan_path(p, workers=1).fails(Severity.HIGH)
    allow = [AllowEntry("mylab.*", "our code, reviewed")]
    assert scan_path(p, workers=1, allow=allow).findings == []
    p.write_bytes(mc.call("os", "system", "x"))
    assert scan_path(p, workers=1, allow=[AllowEntry("os.*", "no")]).fails(Severity.CRITICAL)


def test_zip_read_differently_by_zipfile_and_torch_is_reported(tmp_path: Path) -> None:
    import io
    import zipfile

    from tests.scan.attacks import torch_zipfile_differential

    data = torch_zipfile_differential(PAYLOAD, pickle.dumps({"w": 1}, protocol=2))
    # zipfile (what most scanners use) sees only the benign pickle ...
    assert b"system" not in zipfile.ZipFile(io.BytesIO(data)).read("archive/data.pkl")
    # ... the scanner reports the disagreement and scans what PyTorch's reader would load.
    found = {f.rule_id: f for f in scan_path(_write(tmp_path, "m.pt", data), workers=1).findings}
    assert found["GBX-ZIP-009"].severity is Severity.HIGH
    assert found["GBX-PKL-001"].subject == "os.system"


def test_prepended_bytes_before_a_zip_are_a_disagreement(tmp_path: Path) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "x")
    found = rules(tmp_path, "m.zip", b"\x00" * 64 + buf.getvalue())
    assert "GBX-ZIP-009" in found
    assert rules(tmp_path, "ok.zip", buf.getvalue()) == set()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_nemo_tar_holding_a_torch_zip_is_not_a_polyglot(tmp_path: Path) -> None:
    import io
    import tarfile
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
    weights = buf.getvalue()
    config = b"model:\n  encoder:\n    _target_: collections.OrderedDict\n"
    nemo = tmp_path / "m.nemo"
    with tarfile.open(nemo, "w") as t:
        for name, data in (("model_config.yaml", config), ("model_weights.ckpt", weights)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    report = scan_path(nemo, workers=1)
    assert report.findings == [] and {"tar", "zip", "yaml"} <= set(report.formats)
    # A zip appended after the tar is still a polyglot.
    nemo.write_bytes(nemo.read_bytes() + weights)
    assert "GBX-ZIP-008" in {f.rule_id for f in scan_path(nemo, workers=1).findings}


def test_unpickler_reached_through_a_module_path_has_its_payload_scanned(tmp_path: Path) -> None:
    from tests.scan.attacks import _unpickler_by_module_path

    p = _write(tmp_path, "n.pt", _unpickler_by_module_path(tmp_path / "M"))
    found = {(f.subject, f.member) for f in scan_path(p, workers=1).findings}
    assert ("torch.serialization.pickle.loads", None) in found
    assert any(s == "os.system" and m and "pickle.loads" in m for s, m in found)
