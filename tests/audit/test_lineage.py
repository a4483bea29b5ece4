"""``audit`` walks a pipeline-built model's data back to the upstream commitments: an honest
run passes; a tampered intermediate output, a forged labeller signature and a relabel outside
any step are each caught and named. The HTML report draws the DAG (checked in Chromium)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glassbox.audit import AuditOptions, Verdict, audit_model
from glassbox.audit.report_html import CHROMIUM_ARGS, write_html
from glassbox.pipeline.dag import run_pipeline
from glassbox.sign import (
    bundle_envelope,
    load_private_key,
    parse_statement,
    sign_statement,
    write_bundle,
)
from tests.pipeline.pipeline_example import Prepared, make_key, prepare

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    example = prepare(tmp_path_factory.mktemp("lineage") / "digits-pipeline")
    result = run_pipeline(example.pipeline, example.out, key=load_private_key(example.builder_key))
    assert result.ok, result.failed
    return example


def copy_run(ran: Prepared, tmp_path: Path) -> Prepared:
    """A copy of the whole pipeline directory; the lock and provenance name absolute paths,
    so they are rewritten to the copy's."""
    root = tmp_path / "digits-pipeline"
    shutil.copytree(ran.root, root)
    for path in [*root.glob("out/*/provenance.*"), root / "out" / "pipeline.lock.json"]:
        path.write_text(path.read_text().replace(str(ran.root), str(root)))
    key = load_private_key(ran.builder_key)
    for statement_path in root.glob("out/*/provenance.intoto.json"):
        write_bundle(
            sign_statement(json.loads(statement_path.read_text()), key),
            statement_path.with_name("provenance.sigstore.json"),
        )
    return Prepared(
        root,
        root / "pipeline.toml",
        root / "out",
        root / "keys" / "builder.key",
        root / "keys" / "builder.pub",
    )


def lineage_audit(run: Prepared, **options: Any) -> tuple[Any, dict[str, Any]]:
    report = audit_model(
        run.out / "train" / "model", AuditOptions(keys=(run.builder_pub,), **options)
    )
    link = report.link("provenance")
    return link, link.evidence.get("lineage", {})


def steps(lineage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in lineage["steps"]}


def test_honest_pipeline_verifies_to_upstream(ran: Prepared) -> None:
    link, lineage = lineage_audit(
        ran,
        labellers={"alice": ran.root / "keys" / "alice.pub", "bob": ran.root / "keys" / "bob.pub"},
    )
    assert link.verdict is Verdict.PASS, (link.summary, link.details)
    assert "data lineage of 4 pipeline step(s) verified to upstream" in link.summary
    assert {s: v["verdict"] for s, v in steps(lineage).items()} == dict.fromkeys(
        ("filter", "label", "split", "train"), "pass"
    )
    assert lineage["upstream"]["digits"]["verified"] is True
    refs = {d["ref"]: d["parents"] for d in lineage["datasets"]}
    assert refs["split.train"] == ["label.digits"] and refs["label.digits"] == ["filter.digits"]


def test_bom_lists_every_dataset_with_its_lineage(ran: Prepared) -> None:
    from dataclasses import replace

    from glassbox.audit.context import AuditContext
    from glassbox.audit.engine import _lineage_datasets
    from glassbox.audit.evidence import discover
    from glassbox.bom.cyclonedx import build_bom
    from glassbox.bom.provenance import bom_inputs_from_provenance
    from glassbox.digest import hash_model

    model = ran.out / "train" / "model"
    report = audit_model(model, AuditOptions(keys=(ran.builder_pub,)))
    assert set(report.bom["datasets"]) >= {
        "upstream.digits",
        "filter.digits",
        "label.digits",
        "split.train",
        "split.test",
    }
    ctx = AuditContext(model, discover(model), AuditOptions())
    ctx.lineage = report.link("provenance").evidence["lineage"]
    statement = json.loads((ran.out / "train" / "provenance.intoto.json").read_text())
    inputs = replace(bom_inputs_from_provenance(statement), lineage=_lineage_datasets(ctx))
    doc = build_bom(hash_model(model), inputs)  # schema-validated inside
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    depends = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert depends["dataset:lineage:label.digits"] == ["dataset:lineage:filter.digits"]
    assert depends["dataset:training:train"] == ["dataset:lineage:split.train"]
    props = {p["name"]: p["value"] for p in by_ref["dataset:lineage:label.digits"]["properties"]}
    assert props["glassbox:dataset:producer"] == "label:label"


def test_tampered_intermediate_output_is_named(ran: Prepared, tmp_path: Path) -> None:
    run = copy_run(ran, tmp_path)
    data = run.out / "filter" / "data" / "digits.jsonl"
    lines = data.read_text().splitlines()
    lines[7] = lines[7].replace('"pixels":"00', '"pixels":"0g', 1)
    assert lines[7] != data.read_text().splitlines()[7]
    data.write_text("\n".join(lines) + "\n")
    link, lineage = lineage_audit(run)
    assert link.verdict is Verdict.FAIL
    found = steps(lineage)
    assert found["filter"]["verdict"] == "fail"
    assert (
        "output data/digits.jsonl differs from its signed provenance" in found["filter"]["problems"]
    )
    assert any(
        "no longer commits to what the step read (records 6..7)" in p
        for p in found["label"]["problems"]
    )
    assert any("modified" in p for p in found["filter"]["problems"])  # the re-diff names it


def test_forged_labeller_signature_is_named(ran: Prepared, tmp_path: Path) -> None:
    """A builder that skipped the label checks (it holds the builder key, not bob's): bob's
    attestation inside the label step's provenance is signed by someone else."""
    run = copy_run(ran, tmp_path)
    forger = load_private_key(make_key(run.root / "keys" / "forger").with_suffix(".key"))
    statement_path = run.out / "label" / "provenance.intoto.json"
    statement = json.loads(statement_path.read_text())
    for dep in statement["predicate"]["buildDefinition"]["resolvedDependencies"]:
        if dep["name"] == "label-attestation:bob":
            inner = parse_statement(bundle_envelope(dep["annotations"]["bundle"]).payload)
            dep["annotations"]["bundle"] = sign_statement(inner, forger)
    write_bundle(
        sign_statement(statement, load_private_key(run.builder_key)),
        statement_path.with_name("provenance.sigstore.json"),
    )
    link, lineage = lineage_audit(run)
    assert link.verdict is Verdict.FAIL
    problems = steps(lineage)["label"]["problems"]
    assert any("bob's attestation" in p and "not by the given key" in p for p in problems), problems
    assert any("not covered by a valid labeller signature" in p for p in problems)


def test_labeller_outside_the_consumers_list_is_named(ran: Prepared) -> None:
    link, lineage = lineage_audit(ran, labellers={"alice": ran.root / "keys" / "alice.pub"})
    assert link.verdict is Verdict.FAIL
    problems = steps(lineage)["label"]["problems"]
    assert any("labeller 'bob' is not in the list of labellers (alice)" in p for p in problems)
    assert any(
        "record 55 relabelled" in p and "without a valid labeller signature" in p for p in problems
    )


def test_relabel_outside_any_step_is_named(ran: Prepared, tmp_path: Path) -> None:
    """Someone relabels a record in the label step's output, covers it in the unsigned
    ``step.json`` and re-runs: the downstream steps are rebuilt on the poisoned data."""
    run = copy_run(ran, tmp_path)
    data = run.out / "label" / "data" / "digits.jsonl"
    lines = data.read_text().splitlines()
    row = json.loads(lines[40])
    row["label"] = (row["label"] + 3) % 10
    lines[40] = json.dumps(row, separators=(",", ":"))
    data.write_text("\n".join(lines) + "\n")
    record = json.loads((run.out / "label" / "step.json").read_text())
    from glassbox.digest import commit_dataset, hash_file

    record["files"]["data/digits.jsonl"] = hash_file(data).hex()
    record["outputs"]["digits"]["root"] = commit_dataset(data).root.hex()
    (run.out / "label" / "step.json").write_text(json.dumps(record))
    again = run_pipeline(run.pipeline, run.out, key=load_private_key(run.builder_key))
    assert again.results["label"].status == "reused" and again.results["train"].status == "built"
    link, lineage = lineage_audit(run)
    assert link.verdict is Verdict.FAIL
    problems = steps(lineage)["label"]["problems"]
    assert "output data/digits.jsonl differs from its signed provenance" in problems
    assert any(
        f"record {row['id']} relabelled" in p and "without a valid labeller signature" in p
        for p in problems
    ), problems
    assert steps(lineage)["split"]["verdict"] == "fail"  # it consumed what label never signed for


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no chromium binary on PATH")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield launched
        launched.close()


@pytest.mark.chromium
@pytest.mark.slow
def test_html_draws_the_dag_with_each_steps_verdict(
    ran: Prepared, browser: Any, tmp_path: Path
) -> None:
    report = audit_model(
        ran.out / "train" / "model",
        AuditOptions(keys=(ran.builder_pub,), labellers={"alice": ran.root / "keys" / "alice.pub"}),
    )
    html = write_html(report, tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(html.as_uri())
    dag = page.locator("#lineage-dag")
    assert dag.is_visible()
    verdicts = {
        node.get_attribute("data-step"): node.get_attribute("data-verdict")
        for node in dag.locator("g.step").all()
    }
    assert verdicts == {
        "upstream.digits": "pass",
        "filter": "pass",
        "label": "fail",
        "split": "pass",
        "train": "pass",
    }
    box = dag.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 50
    assert "not in the list of labellers" in page.locator("#lineage-steps").inner_text()
    assert all(url.startswith("file:") for url in requests)
    page.screenshot(path=str(tmp_path / "lineage.png"), full_page=True)
    assert (tmp_path / "lineage.png").stat().st_size > 10_000


def test_hostile_lock_cannot_point_outside_the_run(ran: Prepared, tmp_path: Path) -> None:
    from glassbox.pipeline import verify_lineage
    from glassbox.sign import load_public_key

    run = copy_run(ran, tmp_path)
    lock_path = run.out / "pipeline.lock.json"
    lock = json.loads(lock_path.read_text())
    lock["steps"][0]["dir"] = "../../../etc"
    lock["steps"][1]["outputs"]["digits"]["file"] = "/etc/passwd"
    lock_path.write_text(json.dumps(lock))
    report = verify_lineage(lock_path, [load_public_key(run.builder_pub)])
    by_name = {s.name: s for s in report.steps}
    assert by_name["filter"].verdict == "fail"
    assert "outside the run" in by_name["filter"].problems[0]
    assert report.verdict == "fail"


def test_bom_command_lists_the_pipeline_lineage(ran: Prepared, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from glassbox.cli.main import cli

    out = tmp_path / "bom.json"
    model = ran.out / "train" / "model"
    result = CliRunner().invoke(
        cli, ["bom", str(model), "--key", str(ran.builder_pub), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "data lineage: 5 datasets from 4 pipeline step(s), verdict pass" in result.output
    doc = json.loads(out.read_text())
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    depends = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert depends["dataset:lineage:split.train"] == ["dataset:lineage:label.digits"]
    assert depends["dataset:lineage:label.digits"] == ["dataset:lineage:filter.digits"]
    assert depends["dataset:lineage:filter.digits"] == ["dataset:lineage:upstream.digits"]
    assert depends["dataset:training:train"] == ["dataset:lineage:split.train"]
    props = {p["name"]: p["value"] for p in by_ref["dataset:lineage:label.digits"]["properties"]}
    assert props["glassbox:dataset:producer"] == "label:label"
    assert props["glassbox:dataset:provenance"] == "label/provenance.sigstore.json"
    assert props["glassbox:dataset:provenance-verdict"] == "pass"
    assert len(props["glassbox:dataset:provenance-signed-by"]) == 64
    upstream = {
        p["name"]: p["value"] for p in by_ref["dataset:lineage:upstream.digits"]["properties"]
    }
    assert upstream["glassbox:dataset:producer"] == "upstream"
    assert upstream["glassbox:dataset:commitment"].startswith("rfc9162-sha256:")
    # Without a key the lineage is still listed, each step's provenance marked unknown.
    plain = CliRunner().invoke(cli, ["bom", str(model)])
    assert plain.exit_code == 0, plain.output
    assert "no --key" in plain.output


def test_spdx3_bom_command_carries_the_pipeline_lineage(ran: Prepared, tmp_path: Path) -> None:
    """The same walked lineage reaches the SPDX 3 export: every dataset of the pipeline is a
    ``dataset_DatasetPackage`` that is ``descendantOf`` the dataset it came from."""
    pytest.importorskip("spdx_python_model")
    from click.testing import CliRunner

    from glassbox.cli.main import cli

    out = tmp_path / "bom.spdx.json"
    model = ran.out / "train" / "model"
    result = CliRunner().invoke(
        cli,
        ["bom", str(model), "--key", str(ran.builder_pub), "--format", "spdx3", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    graph = json.loads(out.read_text())["@graph"]
    names = {o["spdxId"]: o["name"] for o in graph if o["type"] == "dataset_DatasetPackage"}
    assert {"upstream.digits", "filter.digits", "label.digits", "split.train"} <= set(
        names.values()
    )
    derived = {
        (names[r["from"]], names[t])
        for r in graph
        if r["type"] == "Relationship"
        and r["relationshipType"] == "descendantOf"
        and r["from"] in names
        for t in r["to"]
        if t in names
    }
    assert ("label.digits", "filter.digits") in derived
    assert ("filter.digits", "upstream.digits") in derived
