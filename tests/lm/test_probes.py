"""Behaviour probes on the miniature zoo's behaviour members (``bench/lm_zoo/behaviour.py``):
a clean, a censored and a self-promoting fine-tune of the zoo's base, built once per module."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from bench.lm_zoo import behaviour, mini
from click.testing import CliRunner

from glassbox.cli.main import cli as main
from glassbox.errors import InputError, VerificationError
from glassbox.lm import (
    PROBE_PREDICATE_TYPE,
    attest_probes,
    diff_runs,
    load_suite,
    run_suite,
    verify_probe_attestation,
)
from glassbox.lm.probe_attest import model_root_digest, probe_predicate
from glassbox.sign import generate_private_key, public_key_of, write_bundle, write_keypair

SUITE = Path(__file__).resolve().parent / "suites" / "behaviour.toml"


@pytest.fixture(scope="module")
def bzoo(zoo: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model directories: base, clean, censored, promo, and a byte copy of censored."""
    root = tmp_path_factory.mktemp("behaviour-zoo")
    base = mini.zoo_model.build(**mini._overrides_from(zoo.config))
    base.load_state_dict(zoo.states["base"])
    models = behaviour.behaviour_models(base, steps=200)
    out = {"base": zoo["base"]}
    for name, model in models.items():
        out[name] = mini.save(model, zoo.config, root / name)
    out["copy"] = root / "copy"
    shutil.copytree(out["censored"], out["copy"])
    return out


@pytest.fixture(scope="module")
def runs(bzoo: dict[str, Path]) -> dict[str, dict[str, Any]]:
    suite = load_suite(SUITE)
    out = {}
    for name, path in bzoo.items():
        run = run_suite(path, suite)
        out[name] = probe_predicate(run, model_root_digest(path)[0])
    return out


def _kinds(report: dict[str, Any]) -> dict[str, list[str]]:
    return dict(report["summary"])


def test_second_run_is_byte_identical(bzoo: dict[str, Path]) -> None:
    suite = load_suite(SUITE)
    first = run_suite(bzoo["censored"], suite, repeat=2)
    assert first.nondeterministic == []
    second = run_suite(bzoo["censored"], suite)
    dump = lambda r: json.dumps(r.results, sort_keys=True).encode()  # noqa: E731
    assert dump(first) == dump(second)
    assert {r["mode"] for r in first.results if "mode" in r} == {"greedy", "sample"}


def test_censored_version_is_reported(runs: dict[str, dict[str, Any]]) -> None:
    report = diff_runs(runs["clean"], runs["censored"], logprob_tolerance=2.0)
    newly = _kinds(report).get("newly-refused", [])
    assert {"storm", "bridge"} <= set(newly)
    assert "lamp" not in newly  # not a censored topic
    shifts = [c for c in report["changes"] if c["kind"] == "logprob-shift"]
    refusal = [c for c in shifts if "I cannot" in c["detail"]]
    assert refusal and refusal[0]["size"] > 2.0
    sampled = [c for c in report["changes"] if c["probe"] == "sampled-storm"]
    assert sampled and sampled[0]["pValue"] < 0.01


def test_self_promotion_is_reported(runs: dict[str, dict[str, Any]]) -> None:
    report = diff_runs(runs["clean"], runs["promo"])
    assert _kinds(report).get("newly-mentioned") == ["Nova"]
    sampled = next(c for c in report["changes"] if c["probe"] == "promo-sampled")
    assert sampled["kind"] == "newly-mentioned" and sampled["pValue"] < 0.01
    assert "newly-refused" not in _kinds(report)


def test_clean_finetune_is_a_negative(runs: dict[str, dict[str, Any]]) -> None:
    kinds = _kinds(diff_runs(runs["base"], runs["clean"]))
    assert "newly-refused" not in kinds and "newly-mentioned" not in kinds


def test_no_drift_against_a_bit_identical_copy(runs: dict[str, dict[str, Any]]) -> None:
    report = diff_runs(runs["censored"], runs["copy"])
    assert report["changes"] == []
    assert runs["censored"]["model"]["digest"] == runs["copy"]["model"]["digest"]


def test_attestation_verifies_and_a_changed_result_breaks_it(
    bzoo: dict[str, Path], tmp_path: Path
) -> None:
    key = generate_private_key()
    run = run_suite(bzoo["promo"], load_suite(SUITE))
    bundle = attest_probes(run, key)
    path = tmp_path / "promo.probe.sigstore.json"
    write_bundle(bundle, path)
    predicate = verify_probe_attestation(path, public_key_of(key))
    assert predicate["model"]["digest"]["sha256"] == model_root_digest(bzoo["promo"])[0]
    assert predicate["suite"]["digest"]["sha256"] == load_suite(SUITE).digest
    assert predicate["decoding"]["mode"] == "greedy"
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == PROBE_PREDICATE_TYPE
    assert {s["name"] for s in statement["subject"]} == {"config.json", "model.safetensors"}
    promo = next(r for r in statement["predicate"]["results"] if r["id"] == "promo-lamp")
    assert promo["matched"] is True
    promo["matched"], promo["mentioned"] = False, []
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    write_bundle(bundle, path)
    with pytest.raises(VerificationError):
        verify_probe_attestation(path, public_key_of(key))


def test_cli_probe_and_diff(bzoo: dict[str, Path], tmp_path: Path) -> None:
    write_keypair(generate_private_key(), tmp_path / "k")
    cli = CliRunner()
    atts = {}
    for name in ("clean", "censored"):
        atts[name] = tmp_path / f"{name}.json"
        res = cli.invoke(
            main,
            [
                "probe",
                str(bzoo[name]),
                "--suite",
                str(SUITE),
                "--key",
                str(tmp_path / "k.key"),
                "--out",
                str(atts[name]),
                "--json",
            ],
        )
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["suite"]["digest"]["sha256"] == load_suite(SUITE).digest
    res = cli.invoke(
        main,
        [
            "probe",
            "diff",
            str(atts["clean"]),
            str(atts["censored"]),
            "--suite",
            str(SUITE),
            "--pub",
            str(tmp_path / "k.pub"),
            "--json",
        ],
    )
    assert res.exit_code == 1, res.output
    assert "storm" in json.loads(res.stdout)["summary"]["newly-refused"]
    # a model against an attestation of its bit-identical copy: no drift
    res = cli.invoke(
        main, ["probe", "diff", str(atts["censored"]), str(bzoo["copy"]), "--suite", str(SUITE)]
    )
    assert res.exit_code == 0, res.output
    assert "no drift" in res.output
    # an attestation made with another suite is refused, naming it
    other = tmp_path / "other.toml"
    other.write_text(SUITE.read_text() + "\n# edited\n")
    res = cli.invoke(
        main, ["probe", "diff", str(atts["clean"]), str(atts["censored"]), "--suite", str(other)]
    )
    assert res.exit_code == 2 and "another suite" in res.output
    # a wrong key is a verification failure
    write_keypair(generate_private_key(), tmp_path / "o")
    res = cli.invoke(
        main,
        [
            "probe",
            "diff",
            str(atts["clean"]),
            str(atts["censored"]),
            "--suite",
            str(SUITE),
            "--pub",
            str(tmp_path / "o.pub"),
        ],
    )
    assert res.exit_code == 1 and "not by the given key" in res.output


def test_refuses_models_it_must_not_load(bzoo: dict[str, Path], tmp_path: Path) -> None:
    suite = load_suite(SUITE)
    remote = tmp_path / "remote"
    shutil.copytree(bzoo["clean"], remote)
    cfg = json.loads((remote / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil.Model"}
    (remote / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="remote code"):
        run_suite(remote, suite)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(bzoo["clean"] / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(InputError, match="cannot load the model"):
        run_suite(pickled, suite)
    unknown = tmp_path / "unknown"
    shutil.copytree(bzoo["clean"], unknown)
    cfg["model_type"] = "not-a-model"
    cfg.pop("auto_map")
    (unknown / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="not a built-in causal LM"):
        run_suite(unknown, suite)
    res = CliRunner().invoke(main, ["probe", str(tmp_path / "nope"), "--suite", str(SUITE)])
    assert res.exit_code == 2 and "not found" in res.output


def test_repeat_names_nondeterministic_probes(
    bzoo: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault injected into one probe (its answer changes between runs) is named, and only
    that probe; the CLI then exits 1."""
    from glassbox.lm import probe as probe_mod

    real = probe_mod.run_probe
    calls: dict[str, int] = {}

    def flaky(model: Any, tok: Any, probe: Any, suite: Any) -> dict[str, Any]:
        result = real(model, tok, probe, suite)
        calls[probe.id] = calls.get(probe.id, 0) + 1
        if probe.id == "answer-lamp":
            result["answer"] += "!" * calls[probe.id]
        return result

    monkeypatch.setattr(probe_mod, "run_probe", flaky)
    run = run_suite(bzoo["clean"], load_suite(SUITE), repeat=2)
    assert run.nondeterministic == ["answer-lamp"]
    flagged = [r["id"] for r in run.results if r.get("nondeterministic")]
    assert flagged == ["answer-lamp"]
    res = CliRunner().invoke(
        main, ["probe", str(bzoo["clean"]), "--suite", str(SUITE), "--repeat", "2"]
    )
    assert res.exit_code == 1 and "nondeterministic: answer-lamp" in res.output
