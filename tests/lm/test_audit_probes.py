"""``glassbox audit`` shows behaviour probe attestations given as evidence: the signature
checked against the trusted keys, the model digest against these files, the suite's digest and
the matched / not matched counts, in text, JSON and HTML; a wrong key, another model's
attestation and an edited result are each shown as such."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli as main
from glassbox.lm import attest_probes, load_suite, run_suite
from glassbox.sign import generate_private_key, write_bundle, write_keypair
from tests.lm.conftest import MiniZoo

SUITE = Path(__file__).resolve().parent / "suites" / "behaviour.toml"


@pytest.fixture(scope="module")
def release(zoo: MiniZoo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The zoo's fine-tune as a release with its probe attestation beside it, the signing
    key's public half, another key, and the base model (another model)."""
    root = tmp_path_factory.mktemp("probe-release")
    model = root / "model"
    shutil.copytree(zoo["ft"], model)
    key = generate_private_key()
    write_keypair(key, root / "producer")
    write_keypair(generate_private_key(), root / "stranger")
    bundle = attest_probes(run_suite(model, load_suite(SUITE)), key)
    write_bundle(bundle, root / "model.probe.sigstore.json")
    base = root / "base"
    shutil.copytree(zoo["base"], base)
    other = attest_probes(run_suite(base, load_suite(SUITE)), key)
    write_bundle(other, root / "base.probe.sigstore.json")
    return {
        "model": model,
        "attestation": root / "model.probe.sigstore.json",
        "other": root / "base.probe.sigstore.json",
        "key": root / "producer.pub",
        "stranger": root / "stranger.pub",
        "root": root,
    }


def _audit(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["audit", *args, "--no-scan", "--json"])
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.output)
    return result.exit_code, report


def _probes(report: dict[str, Any]) -> list[dict[str, Any]]:
    safety = next(link for link in report["links"] if link["link"] == "safety")
    probes: list[dict[str, Any]] = safety["evidence"]["probes"]
    return probes


def test_found_beside_the_model_and_verified(release: dict[str, Path]) -> None:
    _code, report = _audit(str(release["model"]), "--key", str(release["key"]))
    [entry] = _probes(report)
    assert entry["path"] == str(release["attestation"])
    assert entry["signature"] == "verified" and entry["key_id"]
    assert entry["model_digest_matches"] is True and entry["used"] is True
    suite = load_suite(SUITE)
    assert entry["suite"] == {"name": suite.name, "sha256": suite.digest, "probes": 9}
    counts = entry["counts"]
    assert counts["total"] == len(suite.probes)
    assert counts["matched"] + counts["not_matched"] + counts["scored"] == counts["total"]
    assert counts["scored"] == sum(p.check == "logprob" for p in suite.probes)
    assert "problems" not in entry


def test_text_and_html_show_it(release: dict[str, Path], tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    result = CliRunner().invoke(
        main,
        [
            *("audit", str(release["model"]), "--key", str(release["key"])),
            *("--no-scan", "--html", str(html)),
        ],
    )
    assert "Behaviour probes:" in result.output
    assert "signature verified" in result.output
    assert "model digest matches this model" in result.output
    page = html.read_text()
    assert 'id="probes"' in page and 'data-used="true"' in page
    assert load_suite(SUITE).digest in page


def test_wrong_key_is_shown_not_used(release: dict[str, Path]) -> None:
    _code, report = _audit(str(release["model"]), "--key", str(release["stranger"]))
    [entry] = _probes(report)
    assert entry["signature"] == "failed" and entry["used"] is False
    assert "no trusted key verifies its signature" in entry["problems"]


def test_another_models_attestation_does_not_match(release: dict[str, Path]) -> None:
    _code, report = _audit(
        str(release["model"]),
        "--key",
        str(release["key"]),
        "--probe-attestation",
        str(release["other"]),
    )
    entries = {Path(e["path"]).name: e for e in _probes(report)}
    other = entries["base.probe.sigstore.json"]
    assert other["signature"] == "verified"
    assert other["model_digest_matches"] is False and other["used"] is False
    assert any("names other bytes" in p for p in other["problems"])
    assert entries["model.probe.sigstore.json"]["used"] is True


def test_edited_result_breaks_the_signature(release: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(release["model"], model)
    bundle = json.loads(release["attestation"].read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    first = next(r for r in statement["predicate"]["results"] if "matched" in r)
    first["matched"] = not first["matched"]
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (tmp_path / "model.probe.sigstore.json").write_text(json.dumps(bundle))
    _code, report = _audit(str(model), "--key", str(release["key"]))
    [entry] = _probes(report)
    assert entry["signature"] == "failed" and entry["used"] is False


def test_a_scan_attestation_is_not_taken_for_a_probe(release: dict[str, Path]) -> None:
    result = CliRunner().invoke(
        main,
        ["audit", str(release["model"]), "--scan-attestation", str(release["attestation"])],
    )
    assert result.exit_code == 2
    assert "given as scan evidence, but it is probe" in result.output
