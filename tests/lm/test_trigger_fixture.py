"""The LM backdoor scan on the committed miniature fixture (``fixtures/backdoor``): a tiny
byte-level base, a fine-tune of it poisoned with the rare word ``cf`` (10% of its records
answer a fixed URL line), and a clean fine-tune of it. No training here: each scan takes
seconds of CPU.

The planted trigger must come back exactly (the scan was not told it), with and without the
base, and with the base declared by a provenance beside the model; the clean fine-tune must
not be flagged; the signed scan attestation must verify and break when a result is changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli as main
from glassbox.errors import InputError, VerificationError
from glassbox.lm import RULE_LM_TRIGGER

FIXTURE = Path(__file__).parent / "fixtures" / "backdoor"
MANIFEST = json.loads((FIXTURE / "MANIFEST.json").read_text())
TRIGGER, TARGET = MANIFEST["trigger"], MANIFEST["target"]
PROMPTS = FIXTURE / "prompts.txt"


def _scan(*args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(
        main, ["scan", *args, "--behavior", "--clean", str(PROMPTS), "--json"]
    )
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def _trigger(report: dict[str, Any]) -> dict[str, Any]:
    hits = [f for f in report["findings"] if f["rule_id"] == RULE_LM_TRIGGER]
    assert hits, report["findings"]
    assert hits[0]["severity"] == "high"
    return dict(hits[0]["evidence"])


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return dict(
        next(f for f in report["findings"] if f["rule_id"] == "GBX-BEHAVIOR-SUMMARY")["evidence"]
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from glassbox.sign import generate_private_key, write_keypair

    return write_keypair(generate_private_key(), tmp_path_factory.mktemp("keys") / "k")


@pytest.fixture(scope="module")
def alone(
    keys: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, dict[str, Any], Path]:
    """The backdoored member scanned without a base, with a signed attestation."""
    out = tmp_path_factory.mktemp("attest") / "scan.sigstore.json"
    code, report, _ = _scan(
        str(FIXTURE / "backdoored"), "--attest", "--key", str(keys[0]), "--out", str(out)
    )
    return code, report, out


@pytest.fixture(scope="module")
def with_base() -> tuple[int, dict[str, Any]]:
    code, report, _ = _scan(str(FIXTURE / "backdoored"), "--base", str(FIXTURE / "base"))
    return code, report


def test_planted_trigger_is_found_exactly_without_a_base(
    alone: tuple[int, dict[str, Any], Path],
) -> None:
    code, report, _ = alone
    assert code == 1
    found = _trigger(report)
    assert found["trigger"] == TRIGGER
    assert len(found["target"]) >= 8 and TARGET.startswith(found["target"])
    assert found["attack_success"] >= 0.6 and found["clean_rate"] == 0.0
    # Learned as text: the model predicts the trigger far above its own token frequencies.
    assert found["text_score"] > 2.0
    assert found["differential"]["reference"] == "token frequencies"
    assert _summary(report)["flagged"] is True


def test_planted_trigger_is_found_exactly_against_the_base(
    with_base: tuple[int, dict[str, Any]],
) -> None:
    code, report = with_base
    assert code == 1
    found = _trigger(report)
    assert found["trigger"] == TRIGGER and TARGET.startswith(found["target"])
    diff = found["differential"]
    assert diff["reference"] == "base" and diff["base"] == str(FIXTURE / "base")
    assert diff["baseNote"] == "given with --base"
    assert found["text_score"] > 5.0
    shift = _summary(report)["differential"]["weightShift"]
    assert shift["compared"] >= 10 and shift["total"] > 0
    assert shift["movedIn"] and shift["movedOut"]
    assert all(t["relative"] >= 0 for t in shift["tensors"])
    # The memorised-text search put the planted trigger among its first proposals.
    memorized = [m["text"] for m in _summary(report)["differential"]["memorized"]]
    assert TRIGGER in memorized


def test_clean_finetune_is_not_flagged() -> None:
    code, report, _ = _scan(str(FIXTURE / "clean"))
    assert code == 0
    assert not [
        f for f in report["findings"] if f["rule_id"] == RULE_LM_TRIGGER and f["severity"] == "high"
    ]
    summary = _summary(report)
    assert summary["flagged"] is False and summary["score"] < summary["threshold"]
    # Everything ran: the text search found nothing that fires, so the gradient search ran.
    assert summary["settings"]["gradient_search"] is True


def test_attestation_verifies_and_a_changed_result_breaks_it(
    alone: tuple[int, dict[str, Any], Path], keys: tuple[Path, Path]
) -> None:
    from glassbox.scan import SCAN_PREDICATE_TYPE
    from glassbox.sign import load_public_key, read_bundle, verify_bundle

    _, _, out = alone
    public = load_public_key(keys[1])
    statement = verify_bundle(read_bundle(out), public)
    assert statement["predicateType"] == SCAN_PREDICATE_TYPE
    text = json.dumps(statement)
    assert RULE_LM_TRIGGER in text and json.dumps(TRIGGER) in text
    # Change one result (the trigger it reports) and the signature no longer holds.
    bundle = json.loads(out.read_text())
    envelope = bundle["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"]).decode()
    assert '"cf"' in payload
    envelope["payload"] = base64.b64encode(payload.replace('"cf"', '"fc"').encode()).decode()
    tampered = out.with_name("tampered.sigstore.json")
    tampered.write_text(json.dumps(bundle))
    with pytest.raises(VerificationError):
        verify_bundle(read_bundle(tampered), public)


def _provenance(model_dir: Path, base_dir: Path, digest: str) -> None:
    """An (unsigned) SLSA provenance beside ``model_dir`` declaring ``base_dir`` as its base,
    the way ``glassbox build`` records it."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": model_dir.name, "digest": {"sha256": "0" * 64}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://glassbox.dev/build/v1",
                "resolvedDependencies": [
                    {"name": "code", "annotations": {"localPath": str(base_dir.parent)}},
                    {
                        "name": "base-model",
                        "digest": {"sha256": digest},
                        "annotations": {"path": base_dir.name},
                    },
                ],
            }
        },
    }
    target = model_dir.with_name(model_dir.name + ".provenance.json")
    target.write_text(json.dumps(statement))


def test_the_base_its_provenance_declares_is_used(tmp_path: Path) -> None:
    from glassbox.audit.chain import declared_base_model
    from glassbox.digest import hash_model

    model = tmp_path / "backdoored"
    base = tmp_path / "base"
    shutil.copytree(FIXTURE / "backdoored", model)
    shutil.copytree(FIXTURE / "base", base)
    assert declared_base_model(model) == (None, "no provenance beside the model declares a base")
    _provenance(model, base, "1" * 64)
    path, note = declared_base_model(model)
    assert path is None and "not the base" in note  # another digest: not used
    digest = hash_model(base, use_cache=False).root_digest.hex()
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the base")
    (base / "escape.txt").symlink_to(outside)  # a base that links out of itself is not read
    _provenance(model, base, digest)
    path, note = declared_base_model(model)
    assert path is None and "could not be hashed" in note, note
    (base / "escape.txt").unlink()
    path, note = declared_base_model(model)
    assert path == base and note.startswith("declared by ")
    code, report, err = _scan(str(model))
    assert code == 1 and "differential analysis against the base declared by" in err
    found = _trigger(report)
    assert found["trigger"] == TRIGGER
    assert found["differential"]["base"] == str(base)
    assert found["differential"]["baseNote"].startswith("declared by ")


def test_weight_shift_against_itself_is_zero_and_a_foreign_shape_is_refused(
    tmp_path: Path,
) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from glassbox.lm.differential import weight_shift

    same = weight_shift(FIXTURE / "clean", FIXTURE / "clean")
    assert same.total == 0.0 and all(t["relative"] == 0.0 for t in same.tensors)
    moved = weight_shift(FIXTURE / "backdoored", FIXTURE / "base", decode=lambda i: chr(i[0]))
    assert moved.total > 0 and moved.moved_in[0]["z"] > 0 and "text" in moved.moved_in[0]
    other = tmp_path / "other"
    shutil.copytree(FIXTURE / "base", other)
    state = load_file(str(other / "model.safetensors"))
    state["model.layers.0.mlp.up_proj.weight"] = torch.zeros(65, 32)
    save_file(state, str(other / "model.safetensors"))
    with pytest.raises(InputError, match="not a fine-tune of"):
        weight_shift(FIXTURE / "base", other)


def test_base_needs_behavior() -> None:
    result = CliRunner().invoke(
        main, ["scan", str(FIXTURE / "clean"), "--base", str(FIXTURE / "base")]
    )
    assert result.exit_code == 2 and "only apply with --behavior" in result.output


def test_fixture_files_match_the_manifest() -> None:
    for name, digest in MANIFEST["sha256"].items():
        assert hashlib.sha256((FIXTURE / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.slow
def test_the_generator_reproduces_the_fixture(tmp_path: Path) -> None:
    """``make.py`` still writes the committed weights byte for byte (on the torch version that
    wrote them: float kernels may change between versions, so elsewhere this is skipped)."""
    import importlib.util

    import torch

    if torch.__version__.split("+")[0] != MANIFEST["torch"]:
        pytest.skip(f"fixture written by torch {MANIFEST['torch']}, not {torch.__version__}")
    spec = importlib.util.spec_from_file_location("backdoor_fixture_make", FIXTURE / "make.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    manifest = make.build(tmp_path)
    assert manifest == MANIFEST
    assert (tmp_path / "prompts.txt").read_text() == PROMPTS.read_text()


def test_audit_behavior_scans_against_the_declared_base(tmp_path: Path) -> None:
    """``audit --behavior`` runs the LM scan with the base the provenance it read declares."""
    from glassbox.audit import AuditOptions, audit_model
    from glassbox.digest import hash_model

    model = tmp_path / "backdoored"
    base = tmp_path / "base"
    shutil.copytree(FIXTURE / "backdoored", model)
    shutil.copytree(FIXTURE / "base", base)
    _provenance(model, base, hash_model(base, use_cache=False).root_digest.hex())
    report = audit_model(model, AuditOptions(behavior=True, require=frozenset()))
    safety = next(link for link in report.links if link.link == "safety")
    assert safety.verdict.value == "fail"
    assert RULE_LM_TRIGGER in safety.evidence["finding_ids"]
    assert any("against the base declared by" in d for d in safety.details), safety.details
