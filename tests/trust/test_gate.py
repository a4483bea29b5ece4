"""The whole gate on real releases: each failed link is named, with a typed error."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.errors import VerificationError
from glassbox.sign import load_private_key, sign_model
from glassbox.tlog import Signer, Witness, WitnessCosigner, make_submission, open_log, parse_entry
from glassbox.trust.errors import (
    ChangedFiles,
    LogProofMissing,
    ScanFindings,
    UnknownPublisher,
)
from glassbox.trust.gate import verify_model_with_policy
from glassbox.trust.policy import load_policy
from tests.trust.conftest import Keys, log_release, release, write_policy
from tests.trust.hfcache import add_to_hf_cache


def links(result: object) -> list[str]:
    return [r.link for r in result.reasons]  # type: ignore[attr-defined]


def test_trusted_release_passes_and_names_the_publisher(model: Path, policy: Path) -> None:
    result = verify_model_with_policy(model, load_policy(policy))
    assert result.ok, result.reasons
    assert result.publisher == "Acme AI"
    assert result.model_name == "tiny-bert"
    assert result.log is not None and result.log.status == "pass"
    assert result.log.evidence["trusted_because"] == "embedded"
    assert result.scan is not None and result.scan["files_scanned"] >= 2
    result.raise_if_refused()


def test_publisher_not_in_policy(tmp_path: Path, tiny_source: Path, keys: Keys) -> None:
    model = release(tiny_source, tmp_path / "m", keys.other_key, keys.other_pub)
    policy = load_policy(write_policy(tmp_path / "p.toml", keys.acme_pub))
    result = verify_model_with_policy(model, policy)
    assert links(result)[0] == "publisher"
    assert "a key your policy does not know" in result.reasons[0].message
    assert "'Acme AI'" in result.reasons[0].message
    with pytest.raises(UnknownPublisher) as caught:
        result.raise_if_refused()
    assert isinstance(caught.value, VerificationError) and caught.value.exit_code == 1


def test_publisher_trusted_only_for_other_names(model: Path, tmp_path: Path, keys: Keys) -> None:
    policy = load_policy(write_policy(tmp_path / "p.toml", keys.acme_pub, models='["acme/*"]'))
    result = verify_model_with_policy(model, policy)
    assert "trusts only for models named acme/*, not 'tiny-bert'" in result.reasons[0].message
    assert verify_model_with_policy(model, policy, name="acme/tiny-bert").ok


def test_changed_file_is_named(model: Path, policy: Path) -> None:
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    result = verify_model_with_policy(model, load_policy(policy))
    assert links(result) == ["files"]
    assert "changed: model.safetensors" in result.reasons[0].message
    with pytest.raises(ChangedFiles):
        result.raise_if_refused()


def test_missing_log_proof(model: Path, policy: Path) -> None:
    model.with_name(model.name + ".proof.json").unlink()
    result = verify_model_with_policy(model, load_policy(policy))
    assert links(result) == ["log"]
    assert "no log proof holds" in result.reasons[0].message
    with pytest.raises(LogProofMissing):
        result.raise_if_refused()


def test_log_not_required_means_no_proof_is_fine(model: Path, tmp_path: Path, keys: Keys) -> None:
    model.with_name(model.name + ".proof.json").unlink()
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub, log="require = false")
    assert verify_model_with_policy(model, load_policy(policy)).ok


def test_forged_log_proof(model: Path, policy: Path) -> None:
    proof = model.with_name(model.name + ".proof.json")
    doc = json.loads(proof.read_text())
    leaf = bytearray(base64.b64decode(doc["entry"]["leaf"]))
    leaf[5] ^= 1
    doc["entry"]["leaf"] = base64.b64encode(bytes(leaf)).decode()
    proof.write_text(json.dumps(doc))
    result = verify_model_with_policy(model, load_policy(policy))
    assert links(result) == ["log"]
    assert result.log is not None and result.log.status == "fail"


def test_proof_from_an_untrusted_log(model: Path, tmp_path: Path, keys: Keys) -> None:
    """A proof bundle from a log the policy does not name is no evidence."""
    other = Signer.generate("other.log.example")
    policy = write_policy(
        tmp_path / "p.toml", keys.acme_pub, log=f'require = true\nkeys = ["{other.vkey}"]'
    )
    result = verify_model_with_policy(model, load_policy(policy))
    assert links(result) == ["log"]
    assert "not a trusted log" in result.reasons[0].message


def test_witness_quorum(tmp_path: Path, tiny_source: Path, keys: Keys) -> None:
    """k-of-n cosignatures from the policy: met by a witnessed log, not met without it."""
    log_signer = Signer.generate("witnessed.log.example")
    (tmp_path / "log.skey").write_text(log_signer.skey + "\n")
    witness_signer = Signer.generate("witness.example", alg=0x04)
    absent = Signer.generate("absent-witness.example", alg=0x04)
    witness = Witness(tmp_path / "witness.db", witness_signer, [log_signer.verifier])
    model = tmp_path / "m"
    import shutil

    shutil.copytree(tiny_source, model)
    signed = sign_model(model, load_private_key(keys.acme_key))
    log = open_log(
        f"sqlite:///{tmp_path / 'log.db'}",
        tmp_path / "log.skey",
        cosigners=[WitnessCosigner.local(witness)],
    )
    try:
        from glassbox.sign import load_public_key, read_bundle

        sub = make_submission(read_bundle(signed.signature_path), load_public_key(keys.acme_pub))
        index = log.add(parse_entry(sub)).index
        log.proof_bundle(index).write(model.with_name("m.proof.json"))
    finally:
        log.close()
        witness.close()

    def gate(witnesses: str) -> object:
        policy = write_policy(
            tmp_path / "p.toml",
            keys.acme_pub,
            log=f'require = true\nkeys = ["{log_signer.vkey}"]\n{witnesses}',
        )
        return verify_model_with_policy(model, load_policy(policy))

    ok = gate(f'witnesses = ["{witness_signer.vkey}"]\nwitness-quorum = 1')
    assert ok.ok, ok.reasons  # type: ignore[attr-defined]
    assert ok.log.evidence["witnesses"] == ["witness.example"]  # type: ignore[attr-defined]
    short = gate(f'witnesses = ["{witness_signer.vkey}", "{absent.vkey}"]\nwitness-quorum = 2')
    assert links(short) == ["log"]
    assert "policy needs 2 of 2" in short.reasons[0].message  # type: ignore[attr-defined]


def test_forked_log_is_refused(model: Path, policy: Path, tmp_path: Path, keys: Keys) -> None:
    """Consistency with what this machine saw: a log that rewrote its history is refused."""
    from glassbox.tlog import local_log_dir

    assert verify_model_with_policy(model, load_policy(policy)).ok  # remembers size 1
    # The operator rebuilds the log under the same key with another entry first.
    for suffix in ("", "-wal", "-shm"):
        Path(str(local_log_dir() / "log.db") + suffix).unlink(missing_ok=True)
    decoy = release(model, tmp_path / "decoy", keys.other_key, keys.other_pub)
    assert decoy.exists()
    log_release(model, model / "model.sig", keys.acme_pub)  # entry 1 of the new history
    result = verify_model_with_policy(model, load_policy(policy))
    assert links(result) == ["log"]
    assert "not consistent" in result.reasons[0].message


def test_pickle_payload_in_pytorch_model_bin(tmp_path: Path, tiny_source: Path, keys: Keys) -> None:
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_source, model)
    (model / "pytorch_model.bin").write_bytes(malicious_torch_zip())
    sign_model(model, load_private_key(keys.acme_key))
    log_release(model, model / "model.sig", keys.acme_pub)
    policy = load_policy(write_policy(tmp_path / "p.toml", keys.acme_pub))
    result = verify_model_with_policy(model, policy)
    assert links(result)[0] == "scan"
    assert "pickle" in links(result)
    assert any("pytorch_model.bin" in r.message for r in result.reasons)
    assert any(r.message.startswith("GBX-PKL") for r in result.reasons), result.reasons
    with pytest.raises(ScanFindings):
        result.raise_if_refused()


def malicious_torch_zip() -> bytes:
    """A torch-style zip checkpoint whose data.pkl calls os.system (never unpickled here)."""

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo pwned > /tmp/glassbox-pwned",))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": Payload()}, protocol=2))
        archive.writestr("archive/version", "3\n")
    return buf.getvalue()


def test_hf_cache_snapshot_by_name(
    tmp_path: Path, tiny_source: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate on a cache snapshot named hf:org/name: its repository id selects publishers."""
    repo = add_to_hf_cache(tmp_path / "hub", "acme/tiny-bert", tiny_source)
    monkeypatch.setenv("HF_HUB_CACHE", str(repo.cache_dir))
    signature = tmp_path / "tiny-bert.sig"
    sign_model(repo.snapshot, load_private_key(keys.acme_key), signature_path=signature)
    proof = log_release(repo.snapshot, signature, keys.acme_pub)
    policy = load_policy(write_policy(tmp_path / "p.toml", keys.acme_pub, models='["acme/*"]'))
    result = verify_model_with_policy(
        "hf:acme/tiny-bert@main", policy, signature=signature, proofs=[proof]
    )
    assert result.ok, result.reasons
    assert (result.model_name, result.publisher) == ("acme/tiny-bert", "Acme AI")
    # The same files under another repository id are not Acme's to vouch for.
    other = add_to_hf_cache(tmp_path / "hub", "mallory/tiny-bert", tiny_source)
    refused = verify_model_with_policy(other.snapshot, policy, signature=signature, proofs=[proof])
    assert links(refused) == ["publisher"]


def test_cli_verify_policy(model: Path, policy: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify", str(model), "--policy", str(policy)])
    assert ok.exit_code == 0, ok.output
    assert "signed by Acme AI" in ok.output
    as_json = runner.invoke(cli, ["verify", str(model), "--policy", str(policy), "--json"])
    assert json.loads(as_json.output)["publisher"] == "Acme AI"

    (model / "config.json").write_text("{}")
    model.with_name(model.name + ".proof.json").unlink()
    bad = runner.invoke(cli, ["verify", str(model), "--policy", str(policy)])
    assert bad.exit_code == 1
    lines = [line for line in bad.output.splitlines() if line.startswith("refused: ")]
    assert [line.split(":")[1].strip() for line in lines] == ["files", "log"], bad.output
    assert "config.json" in lines[0]

    usage = runner.invoke(cli, ["verify", str(model)])
    assert usage.exit_code == 2
    bad_policy = tmp_path / "bad.toml"
    bad_policy.write_text("version = 1\n[scan]\nfail_on = 'x'\n")
    broken = runner.invoke(cli, ["verify", str(model), "--policy", str(bad_policy)])
    assert broken.exit_code == 2
    assert "scan.fail_on" in broken.output


def test_provenance_required(model: Path, tmp_path: Path, keys: Keys) -> None:
    """[provenance] require: signed SLSA v1 provenance by the same publisher naming these files."""
    import hashlib

    from glassbox.sign import make_statement, sign_statement, subject, write_bundle

    policy = load_policy(
        write_policy(tmp_path / "p.toml", keys.acme_pub, extra="[provenance]\nrequire = true\n")
    )
    missing = verify_model_with_policy(model, policy)
    assert links(missing) == ["provenance"]
    assert "none was found" in missing.reasons[0].message

    files = {
        p.relative_to(model).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in model.rglob("*")
        if p.is_file() and p.name != "model.sig"
    }
    statement = make_statement(
        [subject(name, digest) for name, digest in sorted(files.items())],
        "https://slsa.dev/provenance/v1",
        {"buildDefinition": {"buildType": "https://glassbox.dev/build/recipe/v1"}},
    )
    provenance = model.with_name(model.name + ".provenance.json")
    write_bundle(sign_statement(statement, load_private_key(keys.other_key)), provenance)
    by_other = verify_model_with_policy(model, policy)
    assert links(by_other) == ["provenance"]
    assert "not signed by 'Acme AI'" in by_other.reasons[0].message

    write_bundle(sign_statement(statement, load_private_key(keys.acme_key)), provenance)
    assert verify_model_with_policy(model, policy).ok

    partial = make_statement(
        [subject("config.json", files["config.json"])],
        "https://slsa.dev/provenance/v1",
        {},
    )
    write_bundle(sign_statement(partial, load_private_key(keys.acme_key)), provenance)
    short = verify_model_with_policy(model, policy)
    assert "does not cover these files as signed: model.safetensors" in short.reasons[0].message


def test_policy_scan_allow_clears_a_reviewed_callable(tmp_path: Path, keys: Keys) -> None:
    """A pickle calling a callable the scanner does not know fails the gate; the policy's
    [[scan.allow]] entry (the same as `scan --allow`) clears it in the gate and in the
    loaders' scan, and the report records the entry."""
    from glassbox.trust.loaders import open_verified
    from tests.scan.attacks import stack_global_call

    src = tmp_path / "src"
    src.mkdir()
    (src / "layer.pkl").write_bytes(stack_global_call("mylab.layers", "GatedBlock"))
    model = release(src, tmp_path / "m", keys.acme_key, keys.acme_pub)
    pickles = "[pickle]\nallow = true\n"
    strict = load_policy(write_policy(tmp_path / "strict.toml", keys.acme_pub, extra=pickles))
    refused = verify_model_with_policy(model, strict)
    assert any("GBX-PKL-002" in r.message for r in refused.reasons)
    entry = '[[scan.allow]]\ncallable = "mylab.layers.GatedBlock"\nreason = "reviewed"\n'
    reviewed = load_policy(
        write_policy(tmp_path / "reviewed.toml", keys.acme_pub, extra=pickles + entry)
    )
    passed = verify_model_with_policy(model, reviewed)
    assert passed.ok, passed.reasons
    assert passed.scan is not None
    assert passed.scan["allowlist"] == [
        {"callable": "mylab.layers.GatedBlock", "reason": "reviewed"}
    ]
    with open_verified(model, reviewed) as verified:
        assert verified.result.scan is not None
        assert verified.result.scan["allowlist"] == passed.scan["allowlist"]
    # The loaders' scan cache keys on the entries: the strict policy is refused again.
    with pytest.raises(ScanFindings, match="GBX-PKL-002"), open_verified(model, strict):
        pass
