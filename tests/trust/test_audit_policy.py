"""``audit --policy``: integrity names the publisher from the user's policy, or says the key
is one the policy does not know; the policy's logs are trusted by the transparency link."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from glassbox.audit import AuditOptions, Verdict, audit_model
from glassbox.cli.main import cli
from glassbox.tlog import Signer
from glassbox.trust.policy import load_policy
from tests.trust.conftest import Keys, release, write_policy


def test_integrity_names_the_publisher(model: Path, policy: Path) -> None:
    options = AuditOptions(policy=load_policy(policy), require=frozenset({"integrity"}))
    report = audit_model(model, options)
    link = report.link("integrity")
    assert link.verdict is Verdict.PASS, link.summary
    assert link.summary.startswith("signed by Acme AI (key ")
    assert link.evidence["publisher"] == "Acme AI"
    assert report.link("transparency").verdict is Verdict.PASS
    assert report.exit_code == 0


def test_integrity_says_the_key_is_unknown(tmp_path: Path, tiny_source: Path, keys: Keys) -> None:
    model = release(tiny_source, tmp_path / "m", keys.other_key, keys.other_pub)
    policy = load_policy(write_policy(tmp_path / "p.toml", keys.acme_pub))
    link = audit_model(model, AuditOptions(policy=policy)).link("integrity")
    assert link.verdict is Verdict.FAIL
    assert link.summary == "signed by a key your policy does not know"


def test_publisher_for_other_names_and_name_option(model: Path, tmp_path: Path, keys: Keys) -> None:
    policy = load_policy(write_policy(tmp_path / "p.toml", keys.acme_pub, models='["acme/*"]'))
    link = audit_model(model, AuditOptions(policy=policy)).link("integrity")
    assert link.verdict is Verdict.FAIL
    assert "trusts only for models named acme/*" in link.summary
    named = audit_model(model, AuditOptions(policy=policy, model_name="acme/tiny"))
    assert named.link("integrity").verdict is Verdict.PASS


def test_changed_file_under_policy(model: Path, policy: Path) -> None:
    (model / "config.json").write_text("{}")
    link = audit_model(model, AuditOptions(policy=load_policy(policy))).link("integrity")
    assert link.verdict is Verdict.FAIL
    assert "signed by Acme AI, but files differ" in link.summary
    assert link.evidence["modified"] == ["config.json"]


def test_policy_log_keys_are_trusted(model: Path, tmp_path: Path, keys: Keys) -> None:
    """Only the logs the policy names count (the embedded log is trusted by audit anyway,
    so a proof from it passes; a policy naming another log adds that one)."""
    other = Signer.generate("other.log.example")
    policy = load_policy(
        write_policy(
            tmp_path / "p.toml",
            keys.acme_pub,
            log=f'require = true\nkeys = ["embedded", "{other.vkey}"]',
        )
    )
    link = audit_model(model, AuditOptions(policy=policy)).link("transparency")
    assert link.verdict is Verdict.PASS
    assert link.evidence["trusted_because"] in {"embedded log", "trust policy (embedded)"}


def test_cli_audit_policy(model: Path, policy: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        cli, ["audit", str(model), "--policy", str(policy), "--require", "signature,log", "--json"]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    integrity = next(link for link in report["links"] if link["link"] == "integrity")
    assert integrity["summary"].startswith("signed by Acme AI")
    bad = runner.invoke(cli, ["audit", str(model), "--name", "x"])
    assert bad.exit_code == 2
