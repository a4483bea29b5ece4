"""Report round trip, text grouping, SARIF 2.1.0 shape, attestation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glassbox.errors import InputError
from glassbox.scan import (
    RULES,
    SCAN_PREDICATE_TYPE,
    ScanReport,
    Severity,
    attest_scan,
    render_text,
    scan_path,
    to_sarif,
)
from tests.scan import make_corpus as mc


@pytest.fixture
def report(tmp_path: Path) -> ScanReport:
    (tmp_path / "a.pt").write_bytes(mc.torch_zip(mc.call("os", "system", "true")))
    (tmp_path / "b.pkl").write_bytes(mc.call("pstats", "Stats", "x"))
    (tmp_path / "ok.pkl").write_bytes(mc.benign_pickle())
    return scan_path(tmp_path, workers=1)


def test_round_trip(report: ScanReport) -> None:
    again = ScanReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.to_dict() == report.to_dict()
    assert report.max_severity is Severity.CRITICAL
    assert report.fails(Severity.HIGH) and not ScanReport(root="x").fails(Severity.INFO)


def test_from_dict_rejects_garbage() -> None:
    with pytest.raises(InputError):
        ScanReport.from_dict({"schema": "nope"})
    with pytest.raises(InputError):
        ScanReport.from_dict({"schema": "https://glassbox.dev/scan/report/v1"})


def test_text_groups_by_file(report: ScanReport) -> None:
    text = render_text(report)
    lines = text.splitlines()
    assert lines[0] == "a.pt"
    assert "CRITICAL" in lines[1] and "[archive/data.pkl]" in lines[1]
    assert "b.pkl" in lines
    assert lines[-1].startswith("3 file(s) scanned")


def test_sarif_shape(report: ScanReport) -> None:
    sarif = to_sarif(report)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == set(RULES)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in {"error", "warning", "note"}
        loc = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert loc["uriBaseId"] == "SRCROOT" and not loc["uri"].startswith("/")
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"GBX-PKL-001": "error", "GBX-PKL-002": "error"}  # off the allowlist: high
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"].startswith("file://")


def test_attestation_verifies_and_binds_digests(report: ScanReport) -> None:
    from glassbox.sign import generate_private_key, public_key_of, verify_bundle

    key = generate_private_key("ed25519")
    bundle = attest_scan(report, key)
    statement = verify_bundle(bundle, public_key_of(key))
    assert statement["predicateType"] == SCAN_PREDICATE_TYPE
    assert {s["name"] for s in statement["subject"]} == {"a.pt", "b.pkl", "ok.pkl"}
    assert statement["predicate"]["maxSeverity"] == "critical"
    assert len(statement["predicate"]["findings"]) == len(report.findings)
    import hashlib

    digest = hashlib.sha256((Path(report.root) / "b.pkl").read_bytes()).hexdigest()
    assert {"name": "b.pkl", "digest": {"sha256": digest}} in statement["subject"]


def test_attestation_takes_known_digests_and_hashes_the_rest(report: ScanReport) -> None:
    """A caller that already verified some files' SHA-256 (the hub's staging copy) passes them
    in: those subjects carry the given digest (not re-hashed), every other file is hashed."""
    import hashlib

    from glassbox.scan.attest import scan_statement

    vouched = "ab" * 32  # not the file's real digest: proves it was taken, not recomputed
    statement = scan_statement(report, known={"a.pt": vouched})
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["a.pt"] == vouched
    real = hashlib.sha256((Path(report.root) / "ok.pkl").read_bytes()).hexdigest()
    assert subjects["ok.pkl"] == real


def test_attesting_an_empty_scan_is_refused(tmp_path: Path) -> None:
    from glassbox.sign import generate_private_key

    with pytest.raises(InputError, match="holds no files to scan"):
        scan_path(tmp_path)
    with pytest.raises(InputError, match="nothing was scanned"):
        attest_scan(ScanReport(root=str(tmp_path)), generate_private_key())
