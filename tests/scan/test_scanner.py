"""Directory walks: symlinks, parallel workers, progress, robustness."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from glassbox.errors import InputError
from glassbox.scan import Limits, scan_path
from tests.scan import make_corpus as mc

EVIL = mc.call("os", "system", "true")


def tree(root: Path, n: int = 10) -> None:
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        (root / "sub" / f"ok{i}.pkl").write_bytes(mc.benign_pickle())
    (root / "evil.bin").write_bytes(EVIL)
    (root / "README.md").write_text("hello\n")


def test_directory_scan_finds_payload_with_relative_paths(tmp_path: Path) -> None:
    tree(tmp_path)
    report = scan_path(tmp_path, workers=1)
    assert report.files_scanned == 12
    assert [(f.path, f.subject) for f in report.findings] == [("evil.bin", "os.system")]
    assert report.formats == {"pickle": 11}


def test_parallel_scan_equals_serial(tmp_path: Path) -> None:
    tree(tmp_path, n=20)
    serial = scan_path(tmp_path, workers=1).to_dict()
    parallel = scan_path(tmp_path, workers=2).to_dict()
    for d in (serial, parallel):
        d.pop("duration_s")
    assert parallel == serial


def test_progress_reports_every_byte(tmp_path: Path) -> None:
    tree(tmp_path)
    seen: list[int] = []
    scan_path(tmp_path, workers=1, progress=seen.append)
    total = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert sum(seen) == total and len(seen) == 12


def test_symlink_out_of_tree_is_reported_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.pkl").write_bytes(EVIL)
    model = tmp_path / "model"
    model.mkdir()
    (model / "link.pkl").symlink_to(outside / "evil.pkl")
    (model / "dirlink").symlink_to(outside, target_is_directory=True)
    report = scan_path(model, workers=1)
    assert report.files_scanned == 0
    assert sorted((f.rule_id, f.path) for f in report.findings) == [
        ("GBX-FS-001", "dirlink"),
        ("GBX-FS-001", "link.pkl"),
    ]


def test_symlink_inside_tree_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.pkl").write_bytes(EVIL)
    (tmp_path / "b.pkl").symlink_to(tmp_path / "a.pkl")
    report = scan_path(tmp_path, workers=1)
    assert report.files_scanned == 1
    assert [f.path for f in report.findings] == ["a.pkl"]


def test_missing_path_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot scan"):
        scan_path(tmp_path / "nope")


def test_unreadable_file_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "x.pkl"
    p.write_bytes(EVIL)

    import glassbox.scan.scanner as scanner

    def denied(path: Path, size: int, limit: int) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(scanner, "read_small", denied)  # injected fault: root reads everything
    report = scan_path(tmp_path, workers=1)
    assert [f.rule_id for f in report.findings] == ["GBX-FS-002"]


def test_time_limit_gives_a_finding(tmp_path: Path) -> None:
    p = tmp_path / "big.pkl"
    p.write_bytes(b"\x80\x02" + b"N0" * 200_000 + b".")
    report = scan_path(p, workers=1, limits=Limits(seconds_per_file=0.0))
    assert "GBX-LIM-002" in {f.rule_id for f in report.findings}


def test_internal_error_becomes_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import glassbox.scan.scanner as scanner

    def boom(*_a: object, **_k: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(scanner, "scan_source", boom)
    p = tmp_path / "x.pkl"
    p.write_bytes(EVIL)
    (f,) = scan_path(p, workers=1).findings
    assert f.rule_id == "GBX-LIM-002" and "KeyError" in f.message


def test_large_file_streams_past_raw_data(tmp_path: Path) -> None:
    """A legacy torch file: pickles, then megabytes of raw storage that must not be parsed."""
    import torch

    p = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(1 << 20)}, p, _use_new_zipfile_serialization=False)
    report = scan_path(p, workers=1)
    assert report.findings == [] and report.formats == {"pickle": 1}


def test_git_directory_is_skipped(tmp_path: Path) -> None:
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "objects" / "x").write_bytes(EVIL)
    (tmp_path / "model.pkl").write_bytes(mc.benign_pickle())
    report = scan_path(tmp_path, workers=1)
    assert report.files == ["model.pkl"] and report.findings == []


def _crashing_worker(
    path: str, display: str, limits: Limits, size: int
) -> tuple[list[dict[str, object]], list[str]]:
    """Module level so the pool can pickle it; dies like a segfaulting native parser would."""
    import glassbox.scan.scanner as scanner

    if path.endswith("crash.pkl"):
        os._exit(3)
    ctx = scanner.scan_file(Path(path), display, limits, size)
    return [f.to_dict() for f in ctx.findings], sorted(ctx.formats)


def test_dead_worker_is_reported_not_rescanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import glassbox.scan.scanner as scanner

    monkeypatch.setattr(scanner, "_worker", _crashing_worker)
    tree(tmp_path)
    (tmp_path / "crash.pkl").write_bytes(mc.benign_pickle())
    report = scan_path(tmp_path, workers=2)
    assert report.files_scanned == 13 and "crash.pkl: scan worker died" in report.errors
    crashed = [f for f in report.findings if f.path == "crash.pkl"]
    assert [f.rule_id for f in crashed] == ["GBX-LIM-002"]


def test_failing_worker_falls_back_to_scanning_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import glassbox.scan.scanner as scanner

    monkeypatch.setattr(scanner, "_worker", lambda *a: None)  # unpicklable: every submit fails
    tree(tmp_path)
    report = scan_path(tmp_path, workers=2)
    assert len(report.errors) == 12
    assert [(f.path, f.subject) for f in report.findings] == [("evil.bin", "os.system")]


def test_limits_survive_pickling() -> None:
    """The process pool pickles limits for its workers (test_parallel_scan_equals_serial does
    it for real); compiled or not, their reduction must rebuild an equal object."""
    from glassbox.scan import Limits

    limits = Limits(max_depth=3, seconds_per_file=1.5)
    rebuild, args = limits.__reduce__()
    assert rebuild(*args) == limits


def test_report_names_the_formats_of_each_file(tmp_path: Path) -> None:
    """A policy refuses pickle-based files by what they hold, whatever their name."""
    import io
    import pickle
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": [1, 2]}, protocol=2))
    (tmp_path / "weights.txt").write_bytes(buf.getvalue())  # a torch-style zip, oddly named
    (tmp_path / "config.json").write_text("{}")
    report = scan_path(tmp_path, workers=1)
    assert "pickle" in report.file_formats["weights.txt"]
    assert "zip" in report.file_formats["weights.txt"]
    assert "pickle" not in report.file_formats["config.json"]
