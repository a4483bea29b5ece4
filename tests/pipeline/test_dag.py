"""Pipelines end to end: the digits example run, reused, rebuilt bit for bit; steps that
overstep what they declare, leave the hermetic sandbox, or label without valid signatures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.digest import commit_dataset
from glassbox.errors import VerificationError
from glassbox.pipeline.dag import LOCK_NAME, rebuild_pipeline, run_pipeline
from glassbox.pipeline.labels import LABEL_PREDICATE_TYPE
from glassbox.sign import load_private_key, load_public_key, read_bundle, verify_bundle
from tests.pipeline.pipeline_example import Prepared, make_key, prepare, sign_as


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare(tmp_path_factory.mktemp("pipeline") / "digits-pipeline")


@pytest.fixture(scope="module")
def ran(example: Prepared) -> Prepared:
    events: list[tuple[str, str]] = []
    result = run_pipeline(
        example.pipeline,
        example.out,
        key=load_private_key(example.builder_key),
        listener=lambda step, event, _m: events.append((step, event)),
    )
    assert result.ok, result.failed
    assert [r.status for r in result.results.values()] == ["built"] * 4
    assert ("train", "built") in events and ("filter", "start") in events
    return example


def test_every_step_has_signed_provenance_linking_its_inputs(ran: Prepared) -> None:
    pub = load_public_key(ran.builder_pub)
    lock = json.loads((ran.out / LOCK_NAME).read_text())
    produced = {
        f"{s['name']}.{name}": o["root"] for s in lock["steps"] for name, o in s["outputs"].items()
    }
    produced["upstream.digits"] = lock["upstream"]["digits"]["commitment"]
    for step in lock["steps"]:
        bundle = read_bundle(ran.out / step["name"] / "provenance.sigstore.json")
        statement = verify_bundle(bundle, pub)
        subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
        files = {Path(n).name: sha for n, sha in step["files"].items()}
        assert {Path(n).name: sha for n, sha in subjects.items()} == files
        deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        datasets = {
            d["name"]: d["digest"]["rfc9162-sha256"]
            for d in deps
            if "rfc9162-sha256" in d["digest"]
        }
        for name, ref in step["inputs"].items():
            assert datasets[f"dataset:{name}"] == produced[ref], (step["name"], name)
    label = verify_bundle(read_bundle(ran.out / "label" / "provenance.sigstore.json"), pub)
    deps = label["predicate"]["buildDefinition"]["resolvedDependencies"]
    attested = {
        d["annotations"]["labeller"] for d in deps if d["name"].startswith("label-attestation:")
    }
    assert attested == {"alice", "bob"}
    bundle = next(d for d in deps if d["name"] == "label-attestation:alice")["annotations"][
        "bundle"
    ]
    alice = verify_bundle(bundle, load_public_key(ran.root / "keys" / "alice.pub"))
    assert alice["predicateType"] == LABEL_PREDICATE_TYPE
    byproducts = {
        b["name"]: b["annotations"] for b in label["predicate"]["runDetails"]["byproducts"]
    }
    assert byproducts["dataset-diffs"]["digits"]["summary"]["relabelled"] == 6
    assert byproducts["hermeticity"]["hermetic"] is True


def test_second_run_reuses_every_step_and_says_so(ran: Prepared) -> None:
    result = CliRunner().invoke(cli, ["pipeline", "run", str(ran.pipeline), "--out", str(ran.out)])
    assert result.exit_code == 0, result.output
    assert "0 built, 4 reused" in result.output
    assert result.output.count("inputs and code unchanged: reused") == 4


def test_rebuild_is_bit_for_bit(ran: Prepared) -> None:
    report = rebuild_pipeline(ran.pipeline, ran.out)
    assert report.identical, report.steps
    assert [r["verdict"] for r in report.steps] == ["identical"] * 4


def test_rebuild_names_the_first_step_that_differs(ran: Prepared, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(ran.out, out)
    lock = json.loads((out / LOCK_NAME).read_text())
    lock["steps"][2]["files"]["data/train.jsonl"] = "0" * 64  # the recorded split differs
    (out / LOCK_NAME).write_text(json.dumps(lock))
    report = rebuild_pipeline(ran.pipeline, out)
    assert not report.identical
    assert report.first_difference == {
        "step": "split",
        "kind": "split",
        "verdict": "differs",
        "files": ["data/train.jsonl"],
    }


def test_tampered_intermediate_output_is_rebuilt_not_reused(ran: Prepared, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(ran.out, out)
    data = out / "label" / "data" / "digits.jsonl"
    honest = data.read_bytes()
    data.write_text(data.read_text().replace('"label":1}', '"label":7}', 1))
    assert data.read_bytes() != honest
    result = run_pipeline(ran.pipeline, out)
    statuses = {n: r.status for n, r in result.results.items()}
    assert statuses == {"filter": "reused", "label": "built", "split": "reused", "train": "reused"}
    assert data.read_bytes() == honest  # rebuilt from its inputs, so the downstream reuse is sound


def test_changed_filter_invalidates_the_labellers_signatures(ran: Prepared, tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(ran.root, root, ignore=shutil.ignore_patterns("out"))
    pipeline = root / "pipeline.toml"
    pipeline.write_text(pipeline.read_text().replace("min_ink = 250", "min_ink = 260"))
    result = run_pipeline(pipeline, root / "out")
    assert result.results["filter"].status == "built"
    error = result.failed["label"]
    assert "pipeline.toml:" in error and "decisions are about dataset" in error
    assert result.skipped == ["split", "train"]


def _labelled_copy(ran: Prepared, tmp_path: Path) -> Path:
    root = tmp_path / "p"
    shutil.copytree(ran.root, root, ignore=shutil.ignore_patterns("out"))
    shutil.copytree(ran.out / "filter", root / "out" / "filter")
    return root


def test_unsigned_decision_is_refused(ran: Prepared, tmp_path: Path) -> None:
    root = _labelled_copy(ran, tmp_path)
    with (root / "labels" / "decisions.jsonl").open("a") as f:
        f.write(json.dumps({"id": 5, "label": 0, "labeller": "mallory"}) + "\n")
    for labeller in ("alice", "bob"):  # their own decisions are unchanged: re-signing is fine
        sign_as(root, labeller, root / "out" / "filter" / "data" / "digits.jsonl")
    result = run_pipeline(root / "pipeline.toml", root / "out", until="label")
    assert "1 label decision(s) by mallory are not covered" in result.failed["label"]


def test_decision_changed_after_signing_is_refused(ran: Prepared, tmp_path: Path) -> None:
    root = _labelled_copy(ran, tmp_path)
    decisions = root / "labels" / "decisions.jsonl"
    decisions.write_text(
        decisions.read_text().replace('"id": 8, "label": 9', '"id": 8, "label": 0')
    )
    result = run_pipeline(root / "pipeline.toml", root / "out", until="label")
    assert "alice's decisions in the batch are not the ones they signed" in result.failed["label"]


def test_labeller_outside_the_list_is_refused(ran: Prepared, tmp_path: Path) -> None:
    root = _labelled_copy(ran, tmp_path)
    make_key(root / "keys" / "eve")
    decisions = root / "labels" / "decisions.jsonl"
    decisions.write_text(decisions.read_text().replace('"labeller": "bob"', '"labeller": "eve"'))
    sign_as(root, "eve", root / "out" / "filter" / "data" / "digits.jsonl")
    shutil.move(root / "labels" / "eve.intoto.json", root / "labels" / "bob.intoto.json")
    result = run_pipeline(root / "pipeline.toml", root / "out", until="label")
    assert "labeller 'eve' is not in the list of labellers (alice, bob)" in result.failed["label"]


def test_signature_by_the_wrong_key_is_refused(ran: Prepared, tmp_path: Path) -> None:
    root = _labelled_copy(ran, tmp_path)
    make_key(root / "keys" / "forger")
    sign_as(
        root,
        "bob",
        root / "out" / "filter" / "data" / "digits.jsonl",
        key=root / "keys" / "forger.key",
    )
    result = run_pipeline(root / "pipeline.toml", root / "out", until="label")
    assert "bob.intoto.json" in result.failed["label"]
    assert "not by the given key" in result.failed["label"], result.failed["label"]


# --- small pipelines for the refusals ------------------------------------------------------


def _mini(tmp_path: Path, code: str, extra: str = "") -> Path:
    root = tmp_path / "mini"
    (root / "steps").mkdir(parents=True)
    data = root / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"id": i, "v": i, "label": i % 2}) + "\n" for i in range(10))
    )
    (root / "steps" / "step.py").write_text(code)
    root_hex = commit_dataset(data).root.hex()
    (root / "pipeline.toml").write_text(
        f"""schema = 1
name = "mini"
version = "1"
licence = "MIT"

[[upstream]]
name = "d"
path = "data.jsonl"
commitment = "{root_hex}"
licence = "MIT"
key = "id"

[[steps]]
name = "filter"
kind = "filter"
inputs = {{ d = "upstream.d" }}
code = "steps"
entry = "step:run"
outputs = ["d.jsonl"]
{extra}
"""
    )
    return root / "pipeline.toml"


GOOD_FILTER = """
import json

def run(ctx):
    with ctx.writer("d") as out:
        for record in ctx.input("d").records():
            row = json.loads(record)
            if row["id"] % 3:
                out.write(record)
"""


def test_filter_that_relabels_is_refused(tmp_path: Path) -> None:
    code = GOOD_FILTER.replace(
        "out.write(record)", "row['label'] = 1 - row['label']; out.write(json.dumps(row).encode())"
    )
    result = run_pipeline(_mini(tmp_path, code), tmp_path / "out")
    error = result.failed["filter"]
    assert "pipeline.toml:" in error
    assert "made changes it may not make to upstream.d" in error and "relabelled" in error


def test_declared_changes_pass(tmp_path: Path) -> None:
    result = run_pipeline(_mini(tmp_path, GOOD_FILTER), tmp_path / "out")
    assert result.ok and result.results["filter"].outputs["d"].size == 6


def test_undeclared_read_and_network_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    code = GOOD_FILTER.replace("def run(ctx):", f"def run(ctx):\n    open({str(secret)!r}).read()")
    result = run_pipeline(_mini(tmp_path, code), tmp_path / "out")
    assert "is not hermetic" in result.failed["filter"] and "secret.txt" in result.failed["filter"]
    net = GOOD_FILTER.replace("def run(ctx):", "def run(ctx):\n    import socket; socket.socket()")
    shutil.rmtree(tmp_path / "mini")
    result = run_pipeline(_mini(tmp_path, net), tmp_path / "out2")
    assert "network access is refused" in result.failed["filter"]


def test_upstream_pin_is_checked_before_any_step(tmp_path: Path) -> None:
    pipeline = _mini(tmp_path, GOOD_FILTER)
    with (pipeline.parent / "data.jsonl").open("a") as f:
        f.write('{"id": 99, "v": 0, "label": 0}\n')
    with pytest.raises(VerificationError, match=r"pipeline.toml:9: upstream 'd' .* does not match"):
        run_pipeline(pipeline, tmp_path / "out")


def test_independent_steps_run_in_parallel(tmp_path: Path) -> None:
    extra = """
[[steps]]
name = "other"
kind = "filter"
inputs = { d = "upstream.d" }
code = "steps"
entry = "step:run"
outputs = ["d.jsonl"]
"""
    pipeline = _mini(tmp_path, GOOD_FILTER, extra)
    starts: list[str] = []
    result = run_pipeline(
        pipeline, tmp_path / "out", jobs=2, listener=lambda s, e, _m: starts.append(f"{s}:{e}")
    )
    assert result.ok
    # Both were submitted before either finished: neither waited for the other.
    assert starts.index("other:start") < min(
        starts.index("filter:built"), starts.index("other:built")
    )


def test_moved_run_reuses_every_step_and_finds_its_upstream(ran: Prepared, tmp_path: Path) -> None:
    from glassbox.pipeline.lineage import verify_lineage

    lock = json.loads((ran.out / LOCK_NAME).read_text())
    assert lock["upstream"]["digits"]["path"] == "data/digits.jsonl"  # as the pipeline says
    assert lock["pipeline"]["path"] == "../pipeline.toml"  # from the lock's directory
    copy = tmp_path / "copy"
    shutil.copytree(ran.root, copy)
    result = run_pipeline(copy / "pipeline.toml", copy / "out")
    assert result.ok, result.failed
    assert {n: r.status for n, r in result.results.items()} == dict.fromkeys(
        ("filter", "label", "split", "train"), "reused"
    )
    # Moved again, away from where it last ran: the lineage still finds the upstream data.
    moved = tmp_path / "moved"
    shutil.move(copy, moved)
    report = verify_lineage(moved / "out" / LOCK_NAME, [load_public_key(ran.builder_pub)])
    assert report.upstream["digits"]["verified"] is True
    assert {s.name: s.verdict for s in report.steps} == dict.fromkeys(
        ("filter", "label", "split", "train"), "pass"
    ), report.findings
