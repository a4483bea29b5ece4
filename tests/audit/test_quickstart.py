"""``glassbox quickstart`` end to end with the real parts: the example is built from its recipe,
signed, logged, scanned and audited; a tampered copy is caught."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.audit import LINKS, AuditOptions, Verdict, audit_model
from glassbox.audit.quickstart import (
    MARKER,
    QuickstartResult,
    _prepare,
    outcome_lines,
    run_quickstart,
)
from glassbox.cli.main import cli
from glassbox.errors import InputError
from tests.audit.conftest import Release


@pytest.mark.slow
def test_quickstart_passes_the_release_and_catches_the_tampered_copy(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_quickstart(tmp_path / "qs", say=lambda _line: None)
    elapsed = time.monotonic() - started
    honest = {link.link: link.verdict for link in result.report.links}
    assert {n: honest[n] for n in LINKS if n != "openness"} == dict.fromkeys(
        ("integrity", "transparency", "provenance", "safety"), Verdict.PASS
    )
    # The example ships weights and training code but no model card: graded as what it is.
    assert honest["openness"] is Verdict.FAIL
    tampered = {link.link: link.verdict for link in result.tampered_report.links}
    assert tampered["integrity"] is Verdict.FAIL
    assert tampered["provenance"] is Verdict.FAIL
    assert result.tampered_report.link("integrity").evidence["modified"] == ["model.safetensors"]
    assert result.ok
    assert result.report_html.is_file() and result.tampered_html.is_file()
    assert elapsed < 120, f"quickstart took {elapsed:.0f} s"

    # The README's search example finds the release in the log quickstart wrote, and so do
    # the key id verify prints and the bare root digest.
    runner = CliRunner()
    found = runner.invoke(cli, ["log", "search", "--name", "digits-mlp"])
    assert found.exit_code == 0, found.output
    (index,) = found.stdout.split()
    got = runner.invoke(cli, ["log", "get", index, "--json"])
    names = {s["name"] for s in json.loads(got.stdout)["entry"]["subjects"]}
    assert "model.safetensors" in names
    verify = runner.invoke(
        cli, ["verify", str(result.model), "--key", str(result.workdir / "producer.pub")]
    )
    short_id = verify.stdout.split("signed by key ")[1].split(",")[0]
    assert runner.invoke(cli, ["log", "search", "--signer", short_id]).stdout.split() == [
        "0",
        "1",
        "2",
    ]
    root = result.report.manifest["root_digest"].split(":")[1] if result.report.manifest else ""
    assert runner.invoke(cli, ["log", "search", "--digest", root]).stdout.split() == ["0"]

    # The consumer re-runs the build from the provenance, and replays two trail segments.
    pub = result.workdir / "producer.pub"
    deep = audit_model(result.model, AuditOptions(keys=(pub,), rebuild=True, spot_check=2))
    provenance = deep.link("provenance")
    assert provenance.verdict is Verdict.PASS, provenance.summary
    assert provenance.evidence["rebuild"]["verdict"] == "bit-identical"
    assert provenance.evidence["spot_check"]["passed"] is True

    # --behavior adds the backdoor probe's findings (on the declared training data) to safety.
    probed = audit_model(result.model, AuditOptions(keys=(pub,), behavior=True))
    safety = probed.link("safety")
    assert safety.verdict is Verdict.PASS
    assert "GBX-BEHAVIOR-SUMMARY" in safety.evidence["finding_ids"]


def test_quickstart_reuses_only_its_own_directory(tmp_path: Path) -> None:
    workdir = tmp_path / "qs"
    workdir.mkdir()
    (workdir / MARKER).write_text("")
    (workdir / "release").mkdir()
    (workdir / "release" / "stale").write_text("old output")
    (workdir / "notes.txt").write_text("mine")
    _prepare(workdir)
    assert not (workdir / "release").exists()
    assert (workdir / "notes.txt").read_text() == "mine"


def test_quickstart_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="not made by quickstart"):
        run_quickstart(tmp_path, say=lambda _line: None)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_quickstart_cli_reports_a_missing_recipe(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["quickstart", "--dir", str(tmp_path / "qs"), "--recipe", str(tmp_path / "no.toml")]
    )
    assert result.exit_code == 2
    assert "recipe not found" in result.stderr


def test_quickstart_summary_says_what_each_link_returned(release: Release) -> None:
    """The summary used to say the tampered copy was "caught by ... transparency" when that link
    was unknown: only a failure is a catch, and every link's own verdict is printed."""
    options = AuditOptions(keys=(release.pub,))
    honest = audit_model(release.model, options)
    (release.model / "model.safetensors").write_bytes(b"tampered")
    tampered = audit_model(release.model, options)
    verdicts = {link.link: link.verdict for link in tampered.links}
    assert verdicts["integrity"] is Verdict.FAIL and verdicts["transparency"] is Verdict.UNKNOWN
    result = QuickstartResult(
        release.root, release.model, honest, Path("r.html"), tampered, Path("t.html")
    )
    lines = outcome_lines(result)
    assert lines[0].startswith("honest release: pass (exit 0): integrity pass, transparency pass")
    assert "transparency unknown" in lines[1] and "integrity fail" in lines[1]
    caught = lines[2]
    assert caught.startswith("tampered copy caught by: integrity")
    assert "transparency" not in caught.split(";")[0]
    assert "unknown: transparency" in caught
    for link in tampered.links:
        assert f"{link.link} {link.verdict.value}" in lines[1]
