"""``scan_buffer`` (bytes a loader holds in memory) finds what ``scan_file`` finds on disk."""

from __future__ import annotations

import struct
from pathlib import Path

from glassbox.scan.scanner import scan_buffer, scan_file
from tests.scan.attacks import build


def _ids(ctx: object) -> list[tuple[str, str]]:
    return sorted((f.rule_id, f.member or "") for f in ctx.findings)  # type: ignore[attr-defined]


def test_buffer_scan_matches_file_scan_on_the_attack_corpus(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    build(root, tmp_path / "marker")
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        on_disk = scan_file(path, path.name)
        in_memory = scan_buffer(memoryview(data), path.name, path)
        assert _ids(in_memory) == _ids(on_disk), path.name
        assert in_memory.formats == on_disk.formats, path.name
    assert not (tmp_path / "marker").exists()


def test_buffer_scan_flags_a_malformed_safetensors_header(tmp_path: Path) -> None:
    header = b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,64]}}'
    data = struct.pack("<Q", len(header)) + header + b"\0" * 16
    ctx = scan_buffer(memoryview(data), "model.safetensors", tmp_path / "model.safetensors")
    assert "GBX-ST-001" in {f.rule_id for f in ctx.findings}
