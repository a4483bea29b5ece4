"""``scan`` on a Hugging Face cache snapshot: the files behind the cache's links are scanned,
and only links that break digest's storage-link rule are findings."""

from __future__ import annotations

import pickle
from pathlib import Path

from glassbox.scan import scan_path
from tests.scan import make_corpus as mc
from tests.trust.hfcache import add_to_hf_cache


def rules(report_path: Path) -> list[tuple[str, str]]:
    return sorted((f.rule_id, f.path) for f in scan_path(report_path, workers=1).findings)


def test_snapshot_files_are_scanned(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "pytorch_model.bin").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    repo = add_to_hf_cache(tmp_path / "hub", "org/m", src)
    report = scan_path(repo.snapshot, workers=1)
    assert report.files_scanned == 2
    assert report.findings == []


def test_malicious_pickle_in_snapshot_is_found(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "pytorch_model.bin").write_bytes(mc.call("os", "system", "true"))
    repo = add_to_hf_cache(tmp_path / "hub", "org/m", src)
    found = rules(repo.snapshot)
    assert found and all(path == "pytorch_model.bin" for _, path in found)
    assert not any(rule.startswith("GBX-FS") for rule, _ in found)


def test_bad_links_in_snapshot_are_findings(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text("{}")
    repo = add_to_hf_cache(tmp_path / "hub", "org/m", src)
    (tmp_path / "outside").write_text("x")
    (repo.snapshot / "escape.json").symlink_to(tmp_path / "outside")
    (repo.snapshot / "dangling.json").symlink_to("../../blobs/missing")
    (repo.snapshot / "loop").symlink_to("loop")
    assert rules(repo.snapshot) == [
        ("GBX-FS-001", "dangling.json"),
        ("GBX-FS-001", "escape.json"),
        ("GBX-FS-001", "loop"),
    ]


def test_onnx_external_data_in_snapshot(tmp_path: Path) -> None:
    """The external data file is a cache link too: the model's own file, not an escape."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.onnx").write_bytes(mc.onnx_model(external="model.onnx.data"))
    (src / "model.onnx.data").write_bytes(bytes(8))
    repo = add_to_hf_cache(tmp_path / "hub", "org/onnx", src)
    assert rules(repo.snapshot) == []
    # A directory link leaving the repository is still an escape, even to a regular file.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "w.bin").write_bytes(bytes(8))
    (repo.snapshot / "door").symlink_to(outside)
    src2 = tmp_path / "src2"
    src2.mkdir()
    (src2 / "evil.onnx").write_bytes(mc.onnx_model(external="door/w.bin"))
    repo2 = add_to_hf_cache(tmp_path / "hub", "org/onnx", src2, ref=None, commit=repo.commit)
    assert ("GBX-ONNX-001", "evil.onnx") in rules(repo2.snapshot)
