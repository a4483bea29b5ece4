"""Archives and compressed streams: members by content, bombs and tricks refused."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.scan import Limits, Severity, scan_path
from glassbox.scan.containers import unsafe_member_name
from tests.scan import make_corpus as mc

EVIL = mc.call("os", "system", "true")


def rules(path: Path, **kw: object) -> set[str]:
    return {f.rule_id for f in scan_path(path, workers=1, **kw).findings}  # type: ignore[arg-type]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_pickle_in_oddly_named_zip_member_is_found(tmp_path: Path) -> None:
    p = write(tmp_path, "m.bin", mc.torch_zip(mc.benign_pickle(), extra={"x/notes.txt": EVIL}))
    report = scan_path(p, workers=1)
    assert [f.member for f in report.findings if f.rule_id == "GBX-PKL-001"] == ["x/notes.txt"]


def test_nested_member_names_chain(tmp_path: Path) -> None:
    p = write(tmp_path, "n.zip", mc.plain_zip({"inner.zip": mc.plain_zip({"a/b.pkl": EVIL})}))
    (finding,) = [f for f in scan_path(p, workers=1).findings if f.rule_id == "GBX-PKL-001"]
    assert finding.member == "inner.zip!a/b.pkl"
    assert finding.location == "n.zip!inner.zip!a/b.pkl"


def test_crc_mismatch_is_reported_and_content_still_scanned(tmp_path: Path) -> None:
    assert {"GBX-ZIP-004", "GBX-PKL-001"} <= rules(write(tmp_path, "c.pt", mc.zip_bad_crc(EVIL)))


def test_encryption_flag_is_reported_and_content_still_scanned(tmp_path: Path) -> None:
    found = rules(write(tmp_path, "e.pt", mc.zip_encrypted_flag(EVIL)))
    assert {"GBX-ZIP-004", "GBX-PKL-001"} <= found


def test_local_central_mismatch(tmp_path: Path) -> None:
    found = rules(write(tmp_path, "l.pt", mc.zip_mismatched_local_name(EVIL)))
    assert {"GBX-ZIP-002", "GBX-PKL-001"} <= found


def test_traversal_names() -> None:
    assert unsafe_member_name("../x") and unsafe_member_name("/etc/passwd")
    assert unsafe_member_name("a/../../b") and unsafe_member_name("C:\\x")
    assert unsafe_member_name("a\\..\\..\\b") and unsafe_member_name("a\x00b")
    assert unsafe_member_name("archive/data.pkl") is None
    # Any '..' component is reported, even one that stays inside: model archives never need it.
    assert unsafe_member_name("a/./b/../c") == "contains '..'"


def test_zip_bomb_is_refused_without_inflating(tmp_path: Path) -> None:
    p = write(tmp_path, "b.zip", mc.zip_bomb())
    report = scan_path(p, workers=1)
    assert [f.rule_id for f in report.findings] == ["GBX-ZIP-003"]


def test_lying_declared_size_is_caught_while_streaming(tmp_path: Path) -> None:
    data = bytearray(mc.plain_zip({"x.pkl": b"\x00" * (1 << 22)}))
    # Declare 100 bytes uncompressed in the central directory: inflation must stop there.
    cd = data.find(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    report = scan_path(write(tmp_path, "l.zip", bytes(data)), workers=1)
    assert "GBX-ZIP-003" in {f.rule_id for f in report.findings}


def test_gzip_bomb_by_trailer_and_by_stream(tmp_path: Path) -> None:
    assert rules(write(tmp_path, "g.gz", mc.gzip_bomb())) == {"GBX-ZIP-003"}
    lying = bytearray(mc.gzip_bomb())
    lying[-4:] = (10).to_bytes(4, "little")
    limits = Limits(ratio_floor=1 << 20)
    # A pickle-looking start forces a full read, where the stream limit applies.
    bomb = gzip.compress(b"\x80\x02(" + b"\x00" * (32 << 20))
    assert "GBX-ZIP-003" in rules(write(tmp_path, "s.gz", bomb), limits=limits)


def test_deep_nesting_stops_at_the_limit(tmp_path: Path) -> None:
    report = scan_path(write(tmp_path, "d.zip", mc.deep_nesting(EVIL, depth=12)), workers=1)
    assert "GBX-LIM-001" in {f.rule_id for f in report.findings}
    shallow = scan_path(write(tmp_path, "s.zip", mc.deep_nesting(EVIL, depth=3)), workers=1)
    assert "GBX-PKL-001" in {f.rule_id for f in shallow.findings}


def test_duplicate_members(tmp_path: Path) -> None:
    assert "GBX-ZIP-005" in rules(write(tmp_path, "d.pt", mc.zip_duplicate_names(EVIL)))


def test_overlapping_members(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a", b"x" * 100)
    data = bytearray(buf.getvalue())
    cd = data.find(b"PK\x01\x02")
    eocd = data.find(b"PK\x05\x06")
    entry = bytes(data[cd:eocd]).replace(b"\x01\x00a", b"\x01\x00b")
    # Second central entry pointing at the same local header: overlapping members.
    new = data[:eocd] + entry + data[eocd:]
    e = new.find(b"PK\x05\x06")
    new[e + 8 : e + 12] = (2).to_bytes(2, "little") * 2
    new[e + 12 : e + 16] = (2 * len(entry)).to_bytes(4, "little")
    assert "GBX-ZIP-005" in rules(write(tmp_path, "o.zip", bytes(new)))


def test_broken_central_directory_falls_back_to_local_headers(tmp_path: Path) -> None:
    data = mc.plain_zip({"data.pkl": EVIL}, method=zipfile.ZIP_STORED)
    cut = data[: data.find(b"PK\x01\x02")]
    assert {"GBX-ZIP-006", "GBX-PKL-001"} <= rules(write(tmp_path, "t.zip", cut))


def test_tar_members(tmp_path: Path) -> None:
    found = rules(write(tmp_path, "t.tar", mc.tar_of({"../../x.pkl": EVIL})))
    assert {"GBX-ZIP-001", "GBX-PKL-001"} <= found


def test_legacy_torch_tar_is_followed_past_raw_storage_bytes(tmp_path: Path) -> None:
    clean = scan_path(write(tmp_path, "ok.tar", mc.legacy_torch_tar()), workers=1)
    assert clean.findings == []
    report = scan_path(write(tmp_path, "bad.tar", mc.legacy_torch_tar(EVIL)), workers=1)
    hits = [f for f in report.findings if f.rule_id == "GBX-PKL-001"]
    assert [(f.member, f.evidence["stream"]) for f in hits] == [("storages", 2)]


def test_compressed_wrappers(tmp_path: Path) -> None:
    import bz2
    import lzma

    for name, data in (
        ("a.gz", gzip.compress(EVIL)),
        ("a.bz2", bz2.compress(EVIL)),
        ("a.xz", lzma.compress(EVIL)),
        ("a.z", __import__("zlib").compress(EVIL)),
    ):
        assert "GBX-PKL-001" in rules(write(tmp_path, name, data)), name


def test_zip_methods_bz2_and_lzma(tmp_path: Path) -> None:
    for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        p = write(tmp_path, f"m{method}.zip", mc.plain_zip({"x": EVIL}, method=method))
        assert "GBX-PKL-001" in rules(p)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.integers(min_value=0, max_value=2000), st.binary(min_size=1, max_size=16))
def test_mutated_archives_never_crash(tmp_path: Path, pos: int, patch: bytes) -> None:
    for i, base in enumerate((mc.torch_zip(EVIL), mc.tar_of({"p": EVIL}), gzip.compress(EVIL))):
        at = pos % len(base)
        p = tmp_path / f"f{i}"
        p.write_bytes(base[:at] + patch + base[at + len(patch) :])
        report = scan_path(p, workers=1)
        assert report.files_scanned == 1
        assert all(f.severity in Severity for f in report.findings)
        assert not report.errors


REGRESSIONS = Path(__file__).parent / "regressions"


def test_fuzzer_regressions_scan_cleanly(tmp_path: Path) -> None:
    """Inputs atheris found crashing the scanner (first byte: the fuzz harness's wrapper mode)."""
    from tests.scan.fuzz_atheris import one_input

    for case in sorted(REGRESSIONS.glob("*.bin")):
        one_input(case.read_bytes())  # raises on a scanner failure


def test_nul_in_member_name_is_a_finding(tmp_path: Path) -> None:
    # zipfile truncates the name at the NUL (to ''); loaders and scanners then disagree.
    data = (REGRESSIONS / "zip-empty-member-name.bin").read_bytes()[1:]
    assert {"GBX-ZIP-001", "GBX-ZIP-002"} <= rules(write(tmp_path, "e.zip", data))


def test_forged_entry_count_is_refused_before_parsing(tmp_path: Path) -> None:
    data = bytearray(mc.plain_zip({"a": b"x"}))
    e = data.rfind(b"PK\x05\x06")
    data[e + 8 : e + 12] = (60_000).to_bytes(2, "little") * 2
    report = scan_path(write(tmp_path, "f.zip", bytes(data)), workers=1)
    assert [f.rule_id for f in report.findings] == ["GBX-ZIP-003"]
    ok = scan_path(
        write(tmp_path, "f.zip", bytes(data)), workers=1, limits=Limits(max_members=70_000)
    )
    assert "GBX-ZIP-003" not in {f.rule_id for f in ok.findings}
