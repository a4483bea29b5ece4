"""End to end: build the digits example, rebuild it bit for bit, and detect every kind of change.

Each build or rebuild trains in a child process (a few seconds, mostly start-up), so these are
marked slow; they are the "Done means" of the build issue.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import torch

from glassbox.digest import hash_file
from glassbox.errors import InputError, VerificationError
from glassbox.pipeline import (
    BUNDLE_NAME,
    SLSA_PREDICATE_TYPE,
    STATEMENT_NAME,
    BuildFailed,
    build,
    load_built_model,
    load_provenance,
    rebuild,
)
from glassbox.pipeline.rebuild import BIT_IDENTICAL, INPUTS_DIFFER, WITHIN_TOLERANCE
from glassbox.sign import load_public_key, read_bundle, verify_bundle
from tests.pipeline.conftest import Built, change_label

SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "slsa_provenance_v1.schema.json").read_text()
)

pytestmark = pytest.mark.slow


def test_provenance_is_valid_slsa_v1_and_verifies(built: Built) -> None:
    statement = json.loads((built.out / STATEMENT_NAME).read_text())
    jsonschema.validate(statement, SCHEMA, format_checker=jsonschema.FormatChecker())
    bundle = read_bundle(built.out / BUNDLE_NAME)
    assert verify_bundle(bundle, load_public_key(built.public_key)) == statement
    # Subjects are the kept outputs, by the SHA-256 of their bytes.
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert set(subjects) == {"model.safetensors", "metrics.json"}
    for name, digest in subjects.items():
        assert hash_file(built.out / "model" / name).hex() == digest
    definition = statement["predicate"]["buildDefinition"]
    assert statement["predicateType"] == SLSA_PREDICATE_TYPE
    assert definition["buildType"] == "https://glassbox.dev/build/recipe/v1"
    assert definition["internalParameters"]["cpuCapability"] == "default"
    names = [d["name"] for d in definition["resolvedDependencies"]]
    assert names == ["code", "dataset:train", "dataset:test"]
    assert definition["externalParameters"]["model"]["factory"] == "model:build"
    byproducts = [b["name"] for b in statement["predicate"]["runDetails"]["byproducts"]]
    assert byproducts == ["checkpoint-trail", "hermeticity", "environment", "output-manifest"]


def test_tampered_signed_provenance_fails(built: Built, tmp_path: Path) -> None:
    bundle = read_bundle(built.out / BUNDLE_NAME)
    import base64

    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["buildDefinition"]["internalParameters"]["seed"] = 1
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    path = tmp_path / BUNDLE_NAME
    path.write_text(json.dumps(bundle))
    with pytest.raises(VerificationError):
        load_provenance(path, built.public_key)


def test_build_records_environment_and_hermeticity(built: Built) -> None:
    result = built.result
    assert result.hermeticity.hermetic
    assert result.hermeticity.declared_reads >= 4  # train.py, model.py, two datasets
    env = result.environment
    assert env["threads"] == 1 and env["aten_cpu_capability_env"] == "default"
    assert env["cpu_capability"] == "DEFAULT"
    assert env["deterministic_algorithms"] is True
    assert env["packages"]["torch"].startswith("2.13.0")
    assert [e.step for e in result.trail.entries] == [0, 10, 20, 30, 40]
    assert (
        sorted(p.name for p in (built.out / "checkpoints").iterdir())[0]
        == "step-0000000000.safetensors"
    )


def test_example_rebuilds_bit_identically(built: Built) -> None:
    report = rebuild(built.out / BUNDLE_NAME, public_key=built.public_key)
    assert report.verdict == BIT_IDENTICAL, report.to_dict()
    assert report.exact and report.ok
    assert report.signature.startswith("verified")
    assert report.outputs == {"metrics.json": "identical", "model.safetensors": "identical"}
    assert report.first_divergence is None and not report.input_changes


def test_unmatched_environment_is_a_weaker_tolerance_result(built: Built) -> None:
    report = rebuild(built.out / STATEMENT_NAME, threads=2)
    assert not report.exact
    assert any(d.startswith("threads: 1 -> 2") for d in report.environment_differences)
    assert report.verdict in (WITHIN_TOLERANCE, BIT_IDENTICAL)
    assert "WEAKER" in "tolerance (weaker than bit-identical)".upper()
    assert report.to_dict()["strength"].startswith("tolerance")
    if report.verdict == WITHIN_TOLERANCE:
        assert report.tolerance is not None
        size = report.tolerance["outputs"]["model.safetensors"]["max_abs_diff"]
        assert 0 < size < 1e-4


def test_changed_dataset_record_is_detected_and_named(
    built: Built, example_copy: Callable[..., Path]
) -> None:
    recipe = example_copy()
    change_label(recipe.parent / "data" / "digits-train.jsonl", 3)
    report = rebuild(built.out / STATEMENT_NAME, recipe_dir=recipe.parent)
    assert report.verdict == INPUTS_DIFFER
    # 1438 records in at most 1024 chunks: runs of two, so the change is named to within two.
    assert any(
        c.startswith("dataset 'train' (data/digits-train.jsonl) changed at records 2-3:")
        for c in report.input_changes
    ), report.input_changes
    assert not any("code file" in c for c in report.input_changes)
    # Training on the poisoned record leaves the recorded trail at a named checkpoint.
    assert report.first_divergence is not None
    assert report.first_divergence["step"] in (10, 20, 30, 40)
    assert "divergence" in report.first_divergence
    assert report.first_divergence["divergence"]["max_abs_diff"] > 0
    # And a fresh build with that data is refused before training starts.
    with pytest.raises(VerificationError, match=r"recipe.toml:\d+: dataset 'train'"):
        build(recipe, recipe.parent / "out")


def test_changed_hyperparameter_is_named(built: Built, example_copy: Callable[..., Path]) -> None:
    recipe = example_copy({"lr = 0.05": "lr = 0.06"})
    report = rebuild(built.out / STATEMENT_NAME, recipe_dir=recipe.parent)
    assert report.verdict == INPUTS_DIFFER
    assert "parameter hyperparameters.lr: 0.05 -> 0.06" in report.input_changes
    line = next(i for i, t in enumerate(recipe.read_text().splitlines(), 1) if t == "lr = 0.06")
    assert f"code file recipe.toml changed at line {line}" in report.input_changes
    # The learning rate is part of the optimizer state, so the trail differs from its first entry.
    assert report.first_divergence is not None and report.first_divergence["step"] == 0
    assert report.outputs["model.safetensors"] == "differs"


def test_changed_line_of_training_code_is_named(
    built: Built, example_copy: Callable[..., Path]
) -> None:
    recipe = example_copy()
    train = recipe.parent / "train.py"
    text = train.read_text()
    old = "loss_fn = torch.nn.CrossEntropyLoss()"
    train.write_text(text.replace(old, "loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)"))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if old in t)
    report = rebuild(built.out / STATEMENT_NAME, recipe_dir=recipe.parent)
    assert report.verdict == INPUTS_DIFFER
    assert report.input_changes == [f"code file train.py changed at line {line}"]
    assert report.first_divergence is not None and report.first_divergence["step"] == 10


def test_socket_in_training_fails_the_build(example_copy: Callable[..., Path]) -> None:
    recipe = example_copy()
    train = recipe.parent / "train.py"
    # Even training code that swallows the refusal does not get a build out of it.
    train.write_text(
        train.read_text().replace(
            "    params = ctx.params\n",
            "    params = ctx.params\n    import socket\n    try:\n"
            "        socket.create_connection(('127.0.0.1', 9))\n"
            "    except OSError:\n        pass\n",
        )
    )
    with pytest.raises(BuildFailed, match="network"):
        build(recipe, recipe.parent / "out")
    # Nothing but the training log is left of the failed build.
    assert sorted(p.name for p in (recipe.parent / "out").iterdir()) == ["train.log"]


def test_load_built_model_runs_the_recorded_architecture(built: Built) -> None:
    module = load_built_model(built.out / STATEMENT_NAME)
    assert isinstance(module, torch.nn.Module)
    from safetensors.torch import load_file

    weights = load_file(str(built.out / "model" / "model.safetensors"))
    assert torch.equal(module.state_dict()["0.weight"], weights["0.weight"])


def test_build_refuses_non_empty_output(built: Built) -> None:
    with pytest.raises(InputError, match="not empty"):
        build(built.recipe, built.out)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda s: s.update(predicateType="https://example.com/other"), "not SLSA provenance"),
        (
            lambda s: s["predicate"]["buildDefinition"].update(buildType="https://x/y"),
            "cannot rebuild",
        ),
        (
            lambda s: s["predicate"]["runDetails"]["byproducts"][0]["annotations"]["entries"].pop(),
            "does not match its digest",
        ),
        (
            lambda s: s["subject"][0].update(name="../../etc/passwd"),
            "leaves the model directory",
        ),
        (
            lambda s: s["predicate"]["buildDefinition"]["externalParameters"].update(
                recipe="../../elsewhere.toml"
            ),
            "leaves the recipe directory",
        ),
    ],
)
def test_malformed_provenance_is_input_error(
    built: Built, tmp_path: Path, mutate: Callable[[dict[str, object]], None], pattern: str
) -> None:
    statement = json.loads((built.out / STATEMENT_NAME).read_text())
    mutate(statement)
    path = tmp_path / STATEMENT_NAME
    path.write_text(json.dumps(statement))
    with pytest.raises(InputError, match=pattern):
        prov = load_provenance(path)
        _ = prov.trail
        _ = prov.subjects()
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        load_provenance(tmp_path / "garbage.json")


def test_copy_of_output_dir_is_self_contained(built: Built, tmp_path: Path) -> None:
    # Provenance names the recipe directory; a moved output directory still loads.
    moved = tmp_path / "moved"
    shutil.copytree(built.out, moved)
    assert load_provenance(moved).trail == built.result.trail


def test_base_model_is_verified_recorded_and_readable(built: Built, tmp_path: Path) -> None:
    from tests.pipeline.conftest import copy_example

    base = tmp_path / "base"
    base.mkdir()
    shutil.copy(built.out / "model" / "model.safetensors", base / "model.safetensors")
    from glassbox.digest import hash_model

    digest = hash_model(base, use_cache=False).root_digest.hex()
    recipe = copy_example(
        tmp_path / "ft",
        {
            "[hyperparameters]": f'[base_model]\npath = "{base}"\ndigest = "sha256:{"0" * 64}"\n\n'
            "[hyperparameters]"
        },
    )
    train = recipe.parent / "train.py"
    train.write_text(
        train.read_text().replace(
            "    ctx.track(model, optimizer)\n",
            "    from safetensors.torch import load_file\n"
            '    model.load_state_dict(load_file(str(ctx.base_model / "model.safetensors")))\n'
            "    ctx.track(model, optimizer)\n",
        )
    )
    line = next(i for i, t in enumerate(recipe.read_text().splitlines(), 1) if "0" * 64 in t)
    with pytest.raises(VerificationError, match=rf"recipe.toml:{line}: base model .*set digest"):
        build(recipe, tmp_path / "refused")
    recipe.write_text(recipe.read_text().replace("0" * 64, digest))
    result = build(recipe, tmp_path / "out")
    deps = result.statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {"name": "base-model", "digest": {"sha256": digest}}.items() <= {
        k: v for k, v in deps[-1].items() if k in ("name", "digest")
    }.items()
    # Fine-tuning started from the base weights: the trail's first state is the base model.
    from safetensors.torch import load_file

    from glassbox.pipeline.trail import weights_digest

    assert result.trail.entries[0].weights == weights_digest(
        load_file(str(base / "model.safetensors"))
    )


def test_changed_code_that_breaks_training_is_still_named(
    built: Built, example_copy: Callable[..., Path]
) -> None:
    recipe = example_copy()
    train = recipe.parent / "train.py"
    text = train.read_text()
    train.write_text(text.replace("    params = ctx.params\n", "    params = ctx.paramz\n"))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t == "    params = ctx.params")
    report = rebuild(built.out / STATEMENT_NAME, recipe_dir=recipe.parent)
    assert report.verdict == INPUTS_DIFFER and not report.ok
    assert report.input_changes == [f"code file train.py changed at line {line}"]
    assert "training failed" in report.notes[0] and "paramz" in report.notes[0]


def test_base_model_signed_by_the_declared_key_is_required(built: Built, tmp_path: Path) -> None:
    """A recipe can name the key that must have signed its base: the build verifies the
    base's OMS signature before training and records the signer in the provenance."""
    from glassbox.digest import hash_model
    from glassbox.sign import generate_private_key, public_key_id, sign_model, write_keypair
    from tests.pipeline.conftest import copy_example

    base = tmp_path / "base"
    base.mkdir()
    shutil.copy(built.out / "model" / "model.safetensors", base / "model.safetensors")
    digest = hash_model(base, use_cache=False).root_digest.hex()
    publisher = generate_private_key()
    attacker = generate_private_key()
    recipe = copy_example(
        tmp_path / "ft",
        {
            "[hyperparameters]": f'[base_model]\npath = "{base}"\ndigest = "sha256:{digest}"\n'
            'key = "publisher.pub"\n\n[hyperparameters]'
        },
    )
    _, pub = write_keypair(publisher, recipe.parent / "publisher")
    line = next(i for i, t in enumerate(recipe.read_text().splitlines(), 1) if t.startswith("key"))
    with pytest.raises(
        VerificationError, match=rf"recipe.toml:{line}: base model .* is not signed"
    ):
        build(recipe, tmp_path / "unsigned")
    sign_model(base, attacker)
    with pytest.raises(VerificationError, match=r"is not signed by publisher\.pub"):
        build(recipe, tmp_path / "wrong-signer")
    sign_model(base, publisher, overwrite=True)  # the publisher re-signs over the attacker
    result = build(recipe, tmp_path / "out")
    deps = result.statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    base_dep = next(d for d in deps if d["name"] == "base-model")
    assert base_dep["digest"] == {"sha256": digest}
    assert base_dep["annotations"]["signedBy"] == public_key_id(publisher)
    # Where the key is, so ``audit`` can check the base's signature again on its chain walk.
    assert base_dep["annotations"]["key"] == "publisher.pub"
    assert "signature" not in base_dep["annotations"]  # the base's own model.sig
    params = result.statement["predicate"]["buildDefinition"]["externalParameters"]
    assert params["base_model"]["key"] == "publisher.pub"
    del pub
