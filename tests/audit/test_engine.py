"""The chain, link by link: a fully evidenced release passes everything, and each kind of
tampering or missing evidence turns exactly the expected links to fail or unknown."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from glassbox.audit import LINKS, AuditOptions, Verdict, audit_model, parse_require
from glassbox.errors import InputError
from glassbox.scan.findings import Finding, Severity
from glassbox.sign import (
    generate_private_key,
    load_private_key,
    make_statement,
    sign_model,
    sign_statement,
    subject,
    write_bundle,
)
from glassbox.tlog import ProofBundle
from tests.audit.conftest import Release, log_signature, safetensors_bytes

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def run(release: Release, **options: object) -> dict[str, Verdict]:
    opts = AuditOptions(keys=(release.pub,), require=frozenset(LINKS))
    for name, value in options.items():
        setattr(opts, name, value)
    report = audit_model(release.model, opts)
    return {link.link: link.verdict for link in report.links}


def verdicts(**given: Verdict) -> dict[str, Verdict]:
    expected = dict.fromkeys(LINKS, P)
    expected.update(given)
    return expected


def test_fully_evidenced_release_passes_every_link(release: Release) -> None:
    report = audit_model(release.model, AuditOptions(keys=(release.pub,), require=frozenset(LINKS)))
    assert {link.link: link.verdict for link in report.links} == verdicts()
    assert report.exit_code == 0
    integrity = report.link("integrity").evidence
    assert integrity["root_digest"] == report.manifest["root_digest"]  # type: ignore[index]
    assert report.link("transparency").evidence["consistency_with_last_seen"] == "first"
    assert report.link("provenance").evidence["subjects_matched"] == 2
    assert report.link("safety").evidence["source"] == "signed scan attestation"
    assert report.link("openness").summary.startswith("MOF Class III")
    kinds = sorted(f.kind for f in report.evidence.files)
    assert kinds == ["log-proof", "provenance", "scan", "signature"]


def test_changed_weights_fail_integrity_and_provenance(release: Release) -> None:
    (release.model / "model.safetensors").write_bytes(safetensors_bytes([9.0, 9.0, 9.0, 9.0]))
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    integrity = report.link("integrity")
    assert integrity.verdict is F
    assert integrity.evidence["modified"] == ["model.safetensors"]
    assert report.link("provenance").verdict is F
    assert "model.safetensors differs" in report.link("provenance").summary
    # The log holds the release as signed, not these bytes: not evidence for them.
    assert report.link("transparency").verdict is U
    # The attestation no longer covers the files, so the scanner ran again.
    safety = report.link("safety")
    assert safety.verdict is P and safety.evidence["source"] == "scanned now"
    assert any("changed since the scan" in d for d in safety.details)
    assert report.exit_code == 1


def test_added_pickle_fails_integrity_and_safety(release: Release) -> None:
    payload = b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93."
    (release.model / "extra.pkl").write_bytes(payload)
    got = run(release)
    assert got == verdicts(integrity=F, transparency=U, safety=F)


def test_signature_by_an_untrusted_key_fails_integrity_only(release: Release) -> None:
    sign_model(release.model, load_private_key(release.other_key), overwrite=True)
    assert run(release) == verdicts(integrity=F)


def test_missing_signature_is_unknown_not_pass(release: Release) -> None:
    (release.model / "model.sig").unlink()
    assert run(release) == verdicts(integrity=U)


def test_corrupt_signature_fails_integrity(release: Release) -> None:
    (release.model / "model.sig").write_text('{"mediaType": "truncated')
    assert run(release) == verdicts(integrity=F)


def test_no_trusted_key_leaves_signed_links_unknown(release: Release) -> None:
    report = audit_model(release.model, AuditOptions(require=frozenset(LINKS)))
    got = {link.link: link.verdict for link in report.links}
    # Without a producer key: nobody's signature means anything, and the scan attestation is
    # ignored in favour of scanning now; the log entry is still checked against the log key.
    assert got == verdicts(integrity=U, provenance=U)
    assert "no trusted producer key" in report.link("integrity").summary


def test_missing_proof_bundle_is_unknown(release: Release) -> None:
    release.proof.unlink()
    assert run(release) == verdicts(transparency=U)


def test_embedded_log_is_searched_when_no_bundle(release: Release) -> None:
    release.proof.unlink()
    assert run(release, log="embedded") == verdicts()


def test_grown_log_is_proven_consistent_with_the_checkpoint_seen_before(
    release: Release,
) -> None:
    first = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    assert first.link("transparency").evidence["consistency_with_last_seen"] == "first"
    # The log grows (another release), and the producer ships a fresh proof bundle.
    other = release.root / "other"
    other.mkdir()
    (other / "w.safetensors").write_bytes(safetensors_bytes([7.0]))
    key = load_private_key(release.key)
    sign_model(other, key)
    log_signature(other, key.public_key(), release.root / "other.proof.json")
    log_signature(release.model, key.public_key(), release.proof)  # same entry, newer tree
    second = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    transparency = second.link("transparency")
    assert transparency.verdict is P
    assert transparency.evidence["tree_size"] == 2
    assert transparency.evidence["consistency_with_last_seen"] == "newer"


def test_forged_inclusion_proof_fails_transparency(release: Release) -> None:
    doc = json.loads(release.proof.read_text())
    leaf = bytearray(base64.b64decode(doc["entry"]["leaf"]))
    leaf[5] ^= 1
    doc["entry"]["leaf"] = base64.b64encode(bytes(leaf)).decode()
    release.proof.write_text(json.dumps(doc))
    assert run(release) == verdicts(transparency=F)


def test_proof_from_an_untrusted_log_is_unknown(release: Release, tmp_path: Path) -> None:
    bundle = ProofBundle.from_dict(json.loads(release.proof.read_text()))
    # Move the embedded log's key away: the bundle's log is no longer one this machine trusts.
    from glassbox.tlog import local_log_dir

    (local_log_dir() / "log.vkey").rename(tmp_path / "log.vkey")
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    assert report.link("transparency").verdict is U
    assert any("not a trusted log" in d for d in report.link("transparency").details)
    # ... and trusted again when named with --log-key.
    report = audit_model(
        release.model, AuditOptions(keys=(release.pub,), log_keys=(tmp_path / "log.vkey",))
    )
    assert report.link("transparency").verdict is P
    assert report.link("transparency").evidence["log"] == bundle.log_vkey


def test_unmet_witness_policy_fails_transparency(release: Release, tmp_path: Path) -> None:
    from glassbox.tlog import Signer

    witness = Signer.generate("witness.example", alg=0x04)  # tlog-cosignature key
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"k": 1, "witnesses": [witness.vkey]}))
    report = audit_model(release.model, AuditOptions(keys=(release.pub,), witness_policy=policy))
    assert report.link("transparency").verdict is F
    assert "witness" in report.link("transparency").summary


def test_malformed_witness_policy_is_a_usage_error(release: Release, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text("{not json")
    with pytest.raises(InputError, match="--witness-policy"):
        audit_model(release.model, AuditOptions(keys=(release.pub,), witness_policy=policy))


def test_unsigned_provenance_is_unknown(release: Release) -> None:
    release.provenance.write_text(json.dumps(release.statement()))
    assert run(release) == verdicts(provenance=U)


def test_provenance_signed_by_another_key_fails(release: Release) -> None:
    other = load_private_key(release.other_key)
    write_bundle(sign_statement(release.statement(), other), release.provenance)
    assert run(release) == verdicts(provenance=F)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"hermetic": False}, "not hermetic"),
        ({"undigested_input": True}, "without a digest"),
        ({"subjects": {"model.safetensors": "00" * 32}}, "differs from the provenance"),
        ({"subjects": {"weights.bin": "00" * 32}}, "not in the model"),
    ],
)
def test_provenance_that_does_not_hold_fails(
    release: Release, change: dict[str, object], reason: str
) -> None:
    key = load_private_key(release.key)
    write_bundle(sign_statement(release.statement(**change), key), release.provenance)
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    provenance = report.link("provenance")
    assert provenance.verdict is F
    assert reason in provenance.summary
    assert {link.link: link.verdict for link in report.links} == verdicts(provenance=F)


def test_missing_provenance_is_unknown(release: Release) -> None:
    release.provenance.unlink()
    assert run(release) == verdicts(provenance=U)


def test_scan_attestation_with_a_critical_finding_fails_safety(release: Release) -> None:
    finding = Finding("PICKLE-DANGEROUS-CALLABLE", Severity.CRITICAL, "x.pkl", "os.system")
    files = sorted(release.model.iterdir())
    statement = make_statement(
        [subject(p.name, hashlib.sha256(p.read_bytes()).digest()) for p in files],
        "https://glassbox.dev/scan/v1",
        {"findings": [finding.to_dict()]},
    )
    write_bundle(sign_statement(statement, load_private_key(release.key)), release.scan)
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    safety = report.link("safety")
    assert safety.verdict is F
    assert safety.evidence["finding_ids"] == ["PICKLE-DANGEROUS-CALLABLE"]
    assert safety.findings[0]["severity"] == "critical"


def test_scan_attestation_by_an_untrusted_key_is_not_used(release: Release) -> None:
    other = generate_private_key()
    statement = make_statement(
        [subject("model.safetensors", b"\0" * 32)],
        "https://glassbox.dev/scan/v1",
        {"findings": []},
    )
    write_bundle(sign_statement(statement, other), release.scan)
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    safety = report.link("safety")
    assert safety.verdict is P
    assert safety.evidence["source"] == "scanned now"
    assert any("no trusted key verifies" in d for d in safety.details)


def test_no_scan_and_no_attestation_is_unknown(release: Release) -> None:
    release.scan.unlink()
    assert run(release, scan_now=False) == verdicts(safety=U)


def test_weights_only_release_fails_openness_but_not_the_default_policy(tmp_path: Path) -> None:
    model = tmp_path / "weights-only"
    model.mkdir()
    (model / "model.safetensors").write_bytes(safetensors_bytes([1.0]))
    (model / "LICENSE").write_text("SPDX-License-Identifier: MIT\n")
    key = generate_private_key()
    sign_model(model, key)
    report = audit_model(model, AuditOptions(require=parse_require("scan")))
    assert report.link("openness").verdict is F
    assert report.link("openness").summary.startswith("open weights, not open source")
    assert report.exit_code == 0
    report = audit_model(model, AuditOptions(require=parse_require("scan,openness")))
    assert report.exit_code == 1


def test_policy_decides_the_exit_code(release: Release) -> None:
    release.proof.unlink()
    for require, code in (("signature,provenance", 0), ("signature,log", 1), ("none", 0)):
        report = audit_model(
            release.model, AuditOptions(keys=(release.pub,), require=parse_require(require))
        )
        assert report.exit_code == code, require


def test_parse_require_names_and_errors() -> None:
    assert parse_require("signature, log ,scan") == {"integrity", "transparency", "safety"}
    assert parse_require("all") == set(LINKS)
    with pytest.raises(InputError, match="unknown link 'sig'"):
        parse_require("sig")


def test_evidence_named_with_the_wrong_kind_is_a_usage_error(release: Release) -> None:
    with pytest.raises(InputError, match="given as provenance evidence, but it is signature"):
        audit_model(
            release.model,
            AuditOptions(evidence={"provenance": [release.model / "model.sig"]}),
        )


def test_missing_model_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        audit_model(tmp_path / "nope")


def test_oversized_and_hostile_evidence_is_skipped_with_a_note(release: Release) -> None:
    (release.root / "digits.huge.json").write_bytes(b"{" * 10)
    (release.root / "digits.deep.json").write_text("[" * 100000 + "]" * 100000)
    outside = release.root.parent / "secret.json"
    outside.write_text(json.dumps({"format": "glassbox-tlog-proof/v1"}))
    (release.root / "digits.link.json").symlink_to(outside)
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    assert {link.link: link.verdict for link in report.links} == verdicts()
    assert all("secret" not in str(f.path) for f in report.evidence.files)


def test_single_file_model(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes([1.0, 2.0]))
    key = generate_private_key()
    from glassbox.sign import write_keypair

    _, pub = write_keypair(key, tmp_path / "k")
    sign_model(path, key)
    report = audit_model(path, AuditOptions(keys=(pub,)))
    assert report.link("integrity").verdict is P
    assert report.link("safety").verdict is P
    assert report.link("openness").verdict is U  # no licence anywhere


def test_signature_made_by_model_signing_passes_integrity(tmp_path: Path) -> None:
    model_signing = pytest.importorskip("model_signing")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(safetensors_bytes([1.0, 2.0]))
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "k.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    model_signing.signing.Config().use_elliptic_key_signer(
        private_key=str(tmp_path / "k.pem")
    ).sign(str(model), str(model / "model.sig"))
    report = audit_model(model, AuditOptions(keys=(tmp_path / "k.pub",)))
    assert report.link("integrity").verdict is P
    (model / "model.safetensors").write_bytes(safetensors_bytes([1.0, 3.0]))
    report = audit_model(model, AuditOptions(keys=(tmp_path / "k.pub",)))
    assert report.link("integrity").evidence["modified"] == ["model.safetensors"]


def test_provenance_as_a_bare_dsse_envelope_is_verified(release: Release) -> None:
    bundle = json.loads(release.provenance.read_text())
    release.provenance.write_text(json.dumps(bundle["dsseEnvelope"]))
    assert run(release) == verdicts()
    other = sign_statement(release.statement(), load_private_key(release.other_key))
    release.provenance.write_text(json.dumps(other["dsseEnvelope"]))
    assert run(release) == verdicts(provenance=F)


def test_scan_errors_make_safety_unknown_not_pass(release: Release) -> None:
    statement = make_statement(
        [
            subject(p.name, hashlib.sha256(p.read_bytes()).digest())
            for p in sorted(release.model.iterdir())
        ],
        "https://glassbox.dev/scan/v1",
        {"findings": [], "errors": ["model.safetensors: worker failed (MemoryError)"]},
    )
    write_bundle(sign_statement(statement, load_private_key(release.key)), release.scan)
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    safety = report.link("safety")
    assert safety.verdict is U
    assert "could not finish 1 file" in safety.summary


def test_many_changed_files_are_summarised_and_all_listed(release: Release) -> None:
    for i in range(8):
        (release.model / f"extra-{i}.json").write_text("{}")
    integrity = audit_model(release.model, AuditOptions(keys=(release.pub,))).link("integrity")
    assert integrity.verdict is F
    assert "(+3 more)" in integrity.summary
    assert len(integrity.evidence["added"]) == 8


def test_empty_model_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match="no files to audit"):
        audit_model(tmp_path / "empty")


def test_safety_is_not_pass_when_the_scanner_recognised_no_file(tmp_path: Path) -> None:
    # Issue 11: a model directory of unrecognised bytes scanned "0 findings" and passed.
    model = tmp_path / "model"
    model.mkdir()
    (model / "README.md").write_bytes(b"# a model card and nothing else\n")
    (model / "weights.dat").write_bytes(bytes(range(256)) * 16)
    safety = audit_model(model, AuditOptions()).link("safety")
    assert safety.verdict is Verdict.UNKNOWN
    assert "nothing was analysed" in safety.summary
    (model / "weights.safetensors").write_bytes(safetensors_bytes([1.0]))
    assert audit_model(model, AuditOptions()).link("safety").verdict is Verdict.PASS
