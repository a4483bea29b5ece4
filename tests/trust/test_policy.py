"""The policy file: what it reads, and one-line errors naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.scan import Severity
from glassbox.tlog import Signer
from glassbox.trust.errors import PolicyError
from glassbox.trust.policy import load_policy, parse_policy
from tests.trust.conftest import Keys, write_policy

EXAMPLE = Path(__file__).parents[2] / "examples" / "trust-policy.toml"


def test_reads_every_section(tmp_path: Path, keys: Keys) -> None:
    witness = Signer.generate("witness.example", alg=0x04)
    log_signer = Signer.generate("log.example")
    path = write_policy(
        tmp_path / "p.toml",
        keys.acme_pub,
        models='["acme/*", "acme-*"]',
        log=f'require = true\nkeys = ["embedded", "{log_signer.vkey}"]\n'
        f'witnesses = ["{witness.vkey}"]\nwitness-quorum = 1',
        extra="[provenance]\nrequire = true\n\n[pickle]\nallow = true\n",
    )
    policy = load_policy(path)
    (publisher,) = policy.publishers
    assert publisher.name == "Acme AI"
    assert publisher.covers("acme/bert") and publisher.covers("acme-7b")
    assert not publisher.covers("evil/acme")
    assert [p.name for p in policy.publishers_for("acme/x")] == ["Acme AI"]
    assert policy.publishers_for("other/x") == []
    assert policy.log.require and policy.log.embedded
    assert policy.log.keys == (log_signer.vkey,)
    assert policy.log.witnesses is not None and policy.log.witnesses.k == 1
    assert policy.fail_on is Severity.HIGH
    assert policy.require_provenance and policy.allow_pickle


def test_defaults_are_strict(tmp_path: Path, keys: Keys) -> None:
    """No [pickle] section: pickles refused. No [scan]: fail on high."""
    text = f'version = 1\n[[publisher]]\nname = "A"\nkeys = ["{keys.acme_pub}"]\n'
    policy = parse_policy(text, tmp_path / "p.toml")
    assert not policy.allow_pickle
    assert policy.fail_on is Severity.HIGH
    assert not policy.require_provenance
    assert policy.publishers[0].models == ("*",)


def test_inline_pem_and_relative_paths(tmp_path: Path, keys: Keys) -> None:
    pem = keys.acme_pub.read_text()
    text = f'version = 1\n[[publisher]]\nname = "A"\nkeys = ["""{pem}""", "acme.pub"]\n'
    policy = parse_policy(text, tmp_path / "p.toml")  # acme.pub is beside p.toml
    assert len(policy.publishers[0].keys) == 2
    assert policy.publishers[0].keys[0].key_id == policy.publishers[0].keys[1].key_id


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ("version = 2\n", ":1: version:", "must be 1"),
        ("version = 1\n[scan]\nfail_on = 'low'\n", ":3: scan.fail_on:", "did you mean 'fail-on'"),
        ("version = 1\n[scan]\nfail-on = 'severe'\n", ":3: scan.fail-on:", "unknown severity"),
        ("version = 1\n[pickle]\nallow = 'yes'\n", ":3: pickle.allow:", "true or false"),
        ("version = 1\n\n[[publisher]]\nname = 'A'\n", ":3: publisher.0:", "no keys"),
        (
            "version = 1\n[[publisher]]\nname = 'A'\nkeys = ['missing.pub']\n",
            ":4: publisher.0.keys.0:",
            "key file not found",
        ),
        ("version = 1\n[log]\nrequire = true\n", ":2: log.keys:", "no log key"),
        ("version = 1\n[log]\nkeys = ['nonsense']\n", ":3: log.keys.0:", "not a note verifier"),
        ("version = 1\nowner = 'me'\n", ":2: owner:", "unknown key"),
        ("version = 1\n[log]\nwitness-quorum = 1\n", ":3: log.witness-quorum:", "no witnesses"),
        ("version = 1\n[[code]]\npath = 'x.py'\n", ":2: code.0.reason:", "say why"),
        ("version = 1\n[[code]]\npath = '../x.py'\nreason = 'r'\n", ":3: code.0.path:", "'..'"),
        ("version = 1\n[[code]]\npath = 'x.so'\nreason = 'r'\n", ":3: code.0.path:", ".py"),
        ("version = 1\n[[scan.allow]]\ncallable = 'a.b'\n", ":2: scan.allow:", "no reason"),
        ("version = 1\n[scan]\nallow = 'a.b'\n", ":3: scan.allow:", "array of tables"),
        (
            "version = 1\n[[scan.allow]]\ncallable = 'os'\nreason = 'r'\n",
            ":2: scan.allow:",
            "'module.name' or 'module.*'",
        ),
        (
            "version = 1\n[[scan.allow]]\ncallable = 'a.b'\nreason = 'r'\nwhy = 'x'\n",
            ":2: scan.allow:",
            "unknown keys ['why']",
        ),
        (
            "version = 1\n[[code]]\npath = 'x.py'\nreason = 'r'\nsha256 = 'AB'\n",
            ":5: code.0.sha256:",
            "64 lowercase hex",
        ),
    ],
)
def test_errors_name_line_and_key(tmp_path: Path, body: str, where: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(body)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    text = str(caught.value)
    assert text.startswith(str(path) + where), text
    assert message in text
    assert "\n" not in text
    assert caught.value.exit_code == 2


def test_duplicate_publisher_and_bad_toml(tmp_path: Path, keys: Keys) -> None:
    entry = f'[[publisher]]\nname = "A"\nkeys = ["{keys.acme_pub}"]\n'
    with pytest.raises(PolicyError, match=r":6: publisher\.1\.name: .*defined twice"):
        parse_policy("version = 1\n" + entry + entry, tmp_path / "p.toml")
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("version = = 1", tmp_path / "p.toml")
    with pytest.raises(PolicyError, match="trust policy file not found"):
        load_policy(tmp_path / "none.toml")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_policy_or_one_policy_error(text: str) -> None:
    try:
        parse_policy(text, Path("/nonexistent/p.toml"))
    except PolicyError as exc:
        assert "\n" not in str(exc).strip() or "TOML" in str(exc)


def test_shipped_example_is_valid(tmp_path: Path) -> None:
    """examples/trust-policy.toml parses once its key file exists."""
    import shutil

    example = tmp_path / "trust-policy.toml"
    shutil.copyfile(EXAMPLE, example)
    from glassbox.sign import generate_private_key, write_keypair

    (tmp_path / "keys").mkdir()
    write_keypair(generate_private_key(), tmp_path / "keys" / "acme")
    policy = load_policy(example)
    assert policy.publishers[0].name
    assert not policy.allow_pickle


def test_scan_allow_entries_are_the_scanners(tmp_path: Path) -> None:
    """[[scan.allow]] is read by the scanner's own parser: same fields as `scan --allow`."""
    from glassbox.scan.allowlist import AllowEntry, load_allowlist

    body = "[[allow]]\ncallable = 'mylab.layers.*'\nreason = 'reviewed in PR 9'\n"
    (tmp_path / "allow.toml").write_text(body)
    path = tmp_path / "policy.toml"
    path.write_text(
        "version = 1\n[scan]\nfail-on = 'high'\n" + body.replace("[[allow]]", "[[scan.allow]]")
    )
    policy = load_policy(path)
    assert policy.scan_allow == tuple(load_allowlist(tmp_path / "allow.toml"))
    assert policy.scan_allow == (AllowEntry("mylab.layers.*", "reviewed in PR 9"),)
    assert policy.to_dict()["scan"]["allow"] == [
        {"callable": "mylab.layers.*", "reason": "reviewed in PR 9"}
    ]
