"""``glassbox scan``: formats, exit codes, attestation, behaviour hand-off."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from tests.scan import make_corpus as mc


@pytest.fixture
def model(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "pytorch_model.bin").write_bytes(mc.torch_zip(mc.call("os", "system", "true")))
    (d / "extra.pkl").write_bytes(mc.call("pstats", "Stats", "x"))
    return d


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["scan", *args])
    return result.exit_code, result.output


def test_text_and_exit_codes(model: Path, tmp_path: Path) -> None:
    code, out = run(str(model))
    assert code == 1 and "GBX-PKL-001" in out and "pytorch_model.bin" in out
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "ok.pkl").write_bytes(mc.benign_pickle())
    assert run(str(clean))[0] == 0
    (model / "pytorch_model.bin").unlink()
    # pstats.Stats is off the allowlist: high (issue 18), so the default gate fails ...
    assert run(str(model))[0] == 1
    assert run(str(model), "--fail-on", "critical")[0] == 0
    # ... until a reviewed entry admits it.
    allow = tmp_path / "allow.toml"
    allow.write_text('[[allow]]\ncallable = "pstats.Stats"\nreason = "reviewed: builds a report"\n')
    code, out = run(str(model), "--allow", str(allow))
    assert code == 0, out
    code, out = run(str(model), "--allow", str(allow), "--json")
    assert json.loads(out)["allowlist"] == [
        {"callable": "pstats.Stats", "reason": "reviewed: builds a report"}
    ]
    # An entry never admits what the scanner knows is dangerous.
    allow.write_text('[[allow]]\ncallable = "os.system"\nreason = "no"\n')
    (model / "evil.pkl").write_bytes(mc.call("os", "system", "true"))
    assert run(str(model), "--allow", str(allow), "--fail-on", "critical")[0] == 1
    allow.write_text('[[allow]]\ncallable = "pstats.Stats"\n')
    code, out = run(str(model), "--allow", str(allow))
    assert code == 2 and "has no reason" in out


def test_json_and_sarif(model: Path) -> None:
    code, out = run(str(model), "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["max_severity"] == "critical" and data["files_scanned"] == 2
    code, out = run(str(model), "--json", "--fail-on", "critical")
    assert code == 1 and json.loads(out)["counts"]["critical"] == 1
    code, out = run(str(model), "--format", "sarif")
    assert json.loads(out)["version"] == "2.1.0"


def test_missing_path_is_exit_2(tmp_path: Path) -> None:
    code, out = run(str(tmp_path / "nope"))
    assert code == 2 and "no such file" in out


def test_attest_writes_a_verifiable_bundle(model: Path, tmp_path: Path) -> None:
    from glassbox.scan import SCAN_PREDICATE_TYPE
    from glassbox.sign import (
        generate_private_key,
        load_public_key,
        read_bundle,
        verify_bundle,
        write_keypair,
    )

    priv, pub = write_keypair(generate_private_key(), tmp_path / "k")
    out = tmp_path / "scan.sigstore.json"
    code, _ = run(str(model), "--attest", "--key", str(priv), "--out", str(out), "--json")
    assert code == 1 and out.exists()
    statement = verify_bundle(read_bundle(out), load_public_key(pub))
    assert statement["predicateType"] == SCAN_PREDICATE_TYPE


def test_attest_needs_key(model: Path, tmp_path: Path) -> None:
    code, out = run(str(model), "--attest")
    assert code == 2 and "--key" in out
    code, out = run(str(model), "--out", str(tmp_path / "x.json"))
    assert code == 2 and "--attest" in out


def test_data_without_behavior_is_usage_error(model: Path) -> None:
    assert run(str(model), "--data", "x")[0] == 2


def test_behavior_unavailable_is_a_clear_error(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> object:
        if name == "glassbox.scan.behavior":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    code, out = run(str(model), "--behavior")
    assert code == 2 and "--behavior is not available" in out


def test_behavior_findings_are_merged(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from glassbox.scan import Finding, Severity

    calls: list[tuple[object, ...]] = []

    def scan_behavior(
        path: Path,
        *,
        data: str | None = None,
        arch: str | None = None,
        reference: Path | None = None,
        trigger_dir: Path | None = None,
    ) -> list[Finding]:
        calls.append((path, data, arch, reference, trigger_dir))
        return [Finding("GBX-BHV-TEST", Severity.HIGH, "model", "backdoor suspected")]

    fake = types.ModuleType("glassbox.scan.behavior")
    fake.scan_behavior = scan_behavior  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "glassbox.scan.behavior", fake)
    code, out = run(str(model), "--behavior", "--data", "d.npz", "--arch", "m:f", "--json")
    assert code == 1
    assert calls == [(model, "d.npz", "m:f", None, None)]
    assert "GBX-BHV-TEST" in {f["rule_id"] for f in json.loads(out)["findings"]}


def test_rules_catalogue() -> None:
    from glassbox.scan import RULES

    code, out = run("--rules")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(RULES)
