"""Lineage and probe attestations on the model pages, in real headless Chromium.

The attestations are signed for real by the lm part (``attest_lineage``, ``attest_probes``)
over the real model directories that are published; the probe *results* and the lineage score
are written here (``test_lm_real.py`` publishes real runs on tiny models), so the pages can
be checked against known values: the verdict, the base linked to its hub page,
the score, the suite digest, pass/fail counts, which checks failed, and the drift the lm part's
``diff_runs`` reports between two versions. A row edited in the database after the publish
shows as a failed signature, since the pages verify at render time.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from glassbox.hub import Hub, publish_model
from glassbox.hub.client import HubError
from glassbox.lm import DERIVED, LineageResult, ProbeRun, attest_lineage, attest_probes, load_suite
from glassbox.sign import generate_private_key, load_private_key, write_bundle
from tests.hub.conftest import Served, add_publisher, make_model

SUITE = Path(__file__).resolve().parent / "data" / "probe-suite.toml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = Path(__file__).resolve().parents[2] / "docs"


def probe_run(model: Path, refuses: bool) -> ProbeRun:
    """A run of the test suite with these results (as ``run_suite`` writes them)."""
    answer = " I cannot talk about that." if refuses else " It goes to town."
    results: list[dict[str, Any]] = [
        {
            "id": ident,
            "check": "refusal",
            "topic": topic,
            "mode": "greedy",
            "answer": answer,
            "matched": refuses,
        }
        for ident, topic in (("refuse-storm", "storm"), ("refuse-bridge", "bridge"))
    ]
    results.append(
        {
            "id": "answer-lamp",
            "check": "regex",
            "topic": "lamp",
            "mode": "greedy",
            "answer": " The lamp goes to sleep.",
            "matched": True,
        }
    )
    results.append(
        {
            "id": "lp-storm",
            "check": "logprob",
            "topic": "storm",
            "logprobs": {" I cannot talk about that.": -3.0 if refuses else -40.0},
        }
    )
    return ProbeRun(str(model), load_suite(SUITE), "bytes", results, [], 1, {})


def lineage_result(candidate: Path, base: Path) -> LineageResult:
    return LineageResult(
        str(candidate), str(base), 0.9312, DERIVED, "weights match after alignment", [], {}, {}, 0
    )


@pytest.fixture
def released(hub: Hub, served: Served, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """acme/base 1.0; acme/tiny 1.0 (probes: no refusals) and 2.0 (derived from acme/base,
    probes: refuses storm and bridge)."""
    acme = add_publisher(hub, tmp_path, "acme")
    key = load_private_key(acme.key)
    base = make_model(tmp_path / "base", seed=5)
    publish_model(base, served.url, key, acme.token, name="acme/base", version="1.0")
    v1 = make_model(tmp_path / "v1")
    p1 = tmp_path / "v1.probe.json"
    write_bundle(attest_probes(probe_run(v1, refuses=False), key), p1)
    publish_model(
        v1,
        served.url,
        key,
        acme.token,
        name="acme/tiny",
        version="1.0",
        evidence=[("attestation", p1)],
    )
    v2 = make_model(tmp_path / "v2", seed=2)
    p2 = tmp_path / "v2.probe.json"
    write_bundle(attest_probes(probe_run(v2, refuses=True), key), p2)
    lin = tmp_path / "v2.lineage.json"
    write_bundle(attest_lineage(lineage_result(v2, base), key), lin)
    publish_model(
        v2,
        served.url,
        key,
        acme.token,
        name="acme/tiny",
        version="2.0",
        evidence=[("attestation", lin), ("attestation", p2)],
    )
    yield {"acme": acme, "key": key, "v1": v1, "v2": v2, "base": base}


@pytest.mark.chromium
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH")
def test_lineage_and_probe_evidence_on_the_model_page(
    hub: Hub, served: Served, released: dict[str, Any]
) -> None:
    from tests.hub.test_pages_chromium import check_badges

    playwright = pytest.importorskip("playwright.sync_api")
    from glassbox.audit.report_html import CHROMIUM_ARGS

    digest = load_suite(SUITE).digest
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        page = browser.new_page(viewport={"width": 1200, "height": 1600}, java_script_enabled=False)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(served.url + "/models/acme/tiny")
        check_badges(page)
        v2 = page.locator("#v-2\\.0")
        lineage = v2.locator(".lineage")
        assert lineage.locator(".lineage-verdict").inner_text() == "derived"
        assert lineage.locator(".verdict").first.inner_text() == "PASS"
        assert lineage.locator(".score").inner_text() == "0.9312"
        link = lineage.locator("a.base")
        assert link.inner_text() == "acme/base@1.0"
        assert link.get_attribute("href") == "/models/acme/base#v-1.0"
        assert "verified at render time" in lineage.locator(".sig").inner_text()

        probes = v2.locator(".probes")
        text = probes.inner_text()
        assert f"sha256:{digest}" in text and "hub-behaviour" in text
        assert probes.locator(".passed").inner_text() == "3"
        assert probes.locator(".failed").inner_text() == "0"
        assert "1 measured" in text
        assert "verified at render time" in probes.locator(".sig").inner_text()
        drift = probes.locator(".drift-newly-refused")
        assert drift.inner_text() == "newly refused: bridge, storm"
        assert "Behaviour drift since 1.0" in text

        v1 = page.locator("#v-1\\.0 .probes")
        assert v1.locator(".passed").inner_text() == "1"
        assert v1.locator(".failed").inner_text() == "2"
        assert v1.locator(".failed-probes").inner_text() == "refuse-storm, refuse-bridge"
        assert v1.locator(".verdict").first.inner_text() == "FAIL"
        assert v1.locator(".drift").count() == 0  # no earlier version to compare with
        changes = page.locator("li.behaviour").inner_text()
        assert "1.0 → 2.0" in changes and "newly refused: bridge, storm" in changes
        if os.environ.get("GLASSBOX_WRITE_SCREENSHOTS"):
            v2.screenshot(path=str(DOCS / "hub-lineage-probes.png"))

        # The base's page is where the link goes, and it exists.
        page.goto(served.url + "/models/acme/base#v-1.0")
        assert page.locator("h1").inner_text() == "acme/base"
        assert page.locator("#v-1\\.0").count() == 1

        # Edit the stored probe attestation in the database: it no longer verifies, visibly.
        release = hub.db.release("acme/tiny", "2.0")
        assert release is not None
        row = next(e for e in hub.db.evidence(release.id) if "probe" in str(e.predicate_type))
        doc = json.loads(row.document)
        import base64

        stmt = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        stmt["predicate"]["results"][0]["matched"] = False
        doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
        with hub.db.transaction() as cur:
            cur.execute(
                "UPDATE hub_evidence SET document = ? WHERE release_id = ? AND seq = ?",
                (json.dumps(doc), release.id, row.seq),
            )
        page.goto(served.url + "/models/acme/tiny")
        probes = page.locator("#v-2\\.0 .probes")
        sig = probes.locator(".sig")
        assert sig.locator(".verdict").inner_text() == "FAIL"
        assert "does not verify" in sig.inner_text()
        assert probes.locator(".drift").count() == 0  # never compared from a bad attestation
        assert requests and all(r.startswith(served.url) for r in requests), requests
        browser.close()


def test_probe_attestation_about_other_bytes_is_shown_failing(
    hub: Hub, served: Served, released: dict[str, Any], tmp_path: Path
) -> None:
    acme, key = released["acme"], released["key"]
    p = tmp_path / "other.probe.json"
    write_bundle(attest_probes(probe_run(released["v1"], refuses=False), key), p)
    publish_model(
        make_model(tmp_path / "v3", seed=3),
        served.url,
        key,
        acme.token,
        name="acme/tiny",
        version="3.0",
        evidence=[("attestation", p)],
    )
    html = httpx.get(served.url + "/models/acme/tiny").text
    block = html.split('id="v-3.0"')[1].split("</section>")[0]
    assert "not this release" in block and "verdict-fail" in block
    assert 'class="failed-probes"' not in block  # results of other bytes are not shown


@pytest.mark.parametrize("problem", ["foreign key", "bad verdict"])
def test_bad_lm_attestations_are_refused(
    hub: Hub, served: Served, tmp_path: Path, problem: str
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    key = load_private_key(acme.key)
    base = make_model(tmp_path / "base", seed=5)
    model = make_model(tmp_path / "m")
    result = lineage_result(model, base)
    signer = key
    if problem == "foreign key":
        signer = generate_private_key()
    else:
        result.verdict = "maybe"
    att = tmp_path / "lineage.json"
    write_bundle(attest_lineage(result, signer), att)
    with pytest.raises(HubError) as info:
        publish_model(
            model,
            served.url,
            key,
            acme.token,
            name="acme/m",
            version="1",
            evidence=[("attestation", att)],
        )
    assert info.value.status == 422
    assert ("verdict 'maybe'" if problem == "bad verdict" else "attestation") in str(info.value)
    assert hub.db.release("acme/m", "1") is None
    assert hub.db.counts()["hub_evidence"] == 0


def test_probe_results_are_escaped_on_the_page(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    key = load_private_key(acme.key)
    model = make_model(tmp_path / "m")
    run = probe_run(model, refuses=False)
    run.results[0]["id"] = "<script>alert(1)</script>"
    att = tmp_path / "p.json"
    write_bundle(attest_probes(run, key), att)
    publish_model(
        model,
        served.url,
        key,
        acme.token,
        name="acme/m",
        version="1",
        evidence=[("attestation", att)],
    )
    html = httpx.get(served.url + "/models/acme/m").text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
