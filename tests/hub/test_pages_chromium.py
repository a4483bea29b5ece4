"""The hub's pages in real headless Chromium (Debian's package, driven by Playwright): verdict
words and colours, failing evidence visible, a stolen key's entries flagged, no request leaves
the hub, no JavaScript needed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glassbox.audit.report_html import CHROMIUM_ARGS, COLOURS
from glassbox.audit.verdict import Verdict
from glassbox.hub import Hub, publish_model
from glassbox.sign import load_private_key, make_statement, sign_statement, subject
from glassbox.tlog import make_submission, parse_entry
from tests.hub.conftest import Served, add_publisher, make_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH"),
]


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield browser
        browser.close()


def check_badges(page: Any) -> set[str]:
    """Every verdict badge says PASS/FAIL/UNKNOWN in that verdict's colours."""
    seen = set()
    badges = page.locator(".verdict")
    for i in range(badges.count()):
        badge = badges.nth(i)
        text = badge.inner_text().strip()
        verdict = Verdict(text.lower())
        ink, bg = COLOURS[verdict]
        assert badge.evaluate("e => getComputedStyle(e).color") == rgb(ink)
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == rgb(bg)
        seen.add(text)
    return seen


def test_model_publisher_log_and_search_pages(
    hub: Hub, served: Served, browser: Any, tmp_path: Path
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    key = load_private_key(acme.key)
    publish_model(
        make_model(tmp_path / "v1"), served.url, key, acme.token, name="acme/tiny", version="1.0"
    )
    # Version 2 ships provenance that describes other bytes: the evidence fails, visibly.
    bad = make_statement(
        [subject("model.safetensors", "ab" * 32)],
        "https://slsa.dev/provenance/v1",
        {
            "buildDefinition": {"buildType": "https://example.org/x", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://example.org/builder"}},
        },
    )
    prov = tmp_path / "provenance.json"
    import json

    prov.write_text(json.dumps(sign_statement(bad, key)))
    publish_model(
        make_model(tmp_path / "v2", seed=2),
        served.url,
        key,
        acme.token,
        name="acme/tiny",
        version="2.0",
        evidence=[("provenance", prov)],
    )
    # The key signs something that never went through the hub (a stolen key, say).
    stray = make_statement([subject("elsewhere", "cd" * 32)], "https://example.org/x", {})
    hub.log.add(parse_entry(make_submission(sign_statement(stray, key), acme.pub.read_text())))

    page = browser.new_page(viewport={"width": 1200, "height": 1400}, java_script_enabled=False)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(served.url + "/models/acme/tiny")
    assert page.locator("h1").inner_text() == "acme/tiny"
    seen = check_badges(page)
    assert "FAIL" in seen and "PASS" in seen
    v2 = page.locator("#v-2\\.0")
    prov_row = v2.locator("tr.link-provenance")
    assert prov_row.locator(".verdict").inner_text() == "FAIL"
    assert prov_row.is_visible() and "differs from the provenance" in prov_row.inner_text()
    evidence = v2.locator("table", has_text="predicate")
    assert "provenance" in evidence.inner_text() and "FAIL" in evidence.inner_text()
    assert page.locator("#v-1\\.0 tr.link-integrity .verdict").inner_text() == "PASS"
    assert "Changes between versions" in page.content()
    assert v2.locator("tr.link-transparency .verdict").inner_text() == "PASS"
    if os.environ.get("GLASSBOX_WRITE_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "hub-model-page.png"), full_page=True)

    page.goto(served.url + f"/publishers/{acme.key_id}")
    check_badges(page)
    warning = page.locator(".fork")
    assert warning.is_visible() and "not a release on this hub" in warning.inner_text()
    assert warning.locator(".verdict").inner_text() == "FAIL"

    page.goto(served.url + "/log")
    assert hub.log.origin in page.locator("main").inner_text()
    assert page.locator("pre").is_visible()
    check_badges(page)
    assert "No witness has cosigned" in page.locator("main").inner_text()

    page.goto(served.url + "/search?q=tiny")
    assert "2 release(s)" in page.locator("main").inner_text()
    page.goto(served.url + "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert page.locator("main script").count() == 0  # escaped, not markup

    assert requests and all(r.startswith(served.url) for r in requests), requests
    page.close()


def test_rescan_and_unfinished_publish_pages(
    hub: Hub, served: Served, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release newly flagged by a re-scan shows it in red (and its attestation verified in
    green); a publish that logged and then failed shows orange on the publisher page, with no
    stolen-key alarm."""
    from glassbox.hub.bulk import dask_client, rescan_all
    from glassbox.hub.client import HubError
    from glassbox.hub.db import HubDB
    from tests.hub.test_rescan import _publish_with_zip

    acme, _model = _publish_with_zip(hub, served, tmp_path)
    with dask_client(workers=1, processes=False) as client:
        rescan_all(hub.db.url, str(tmp_path / "blobs"), log_key=tmp_path / "hub.key", client=client)
        rescan_all(
            hub.db.url,
            str(tmp_path / "blobs"),
            log_key=tmp_path / "hub.key",
            fail_on="medium",
            client=client,
        )
    monkeypatch.setattr(HubDB, "insert_release", lambda self, *a, **k: False)
    with pytest.raises(HubError):
        publish_model(
            make_model(tmp_path / "v2", seed=2),
            served.url,
            load_private_key(acme.key),
            acme.token,
            name="acme/z",
            version="2",
        )

    page = browser.new_page(viewport={"width": 1200, "height": 1400}, java_script_enabled=False)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(served.url + "/models/acme/z")
    assert "FAIL" in check_badges(page)
    flagged = page.locator(".newly-flagged")
    assert flagged.is_visible() and "Newly flagged" in flagged.inner_text()
    assert flagged.locator(".verdict").inner_text() == "FAIL"
    assert page.locator(".flagged .verdict").inner_text() == "FAIL"
    assert page.locator(".rescan .sig .verdict").inner_text() == "PASS"
    assert "GBX-ZIP-004" in page.locator(".rescan .blocking").inner_text()

    page.goto(served.url + f"/publishers/{acme.key_id}")
    check_badges(page)
    unfinished = page.locator(".unfinished")
    assert unfinished.is_visible() and unfinished.locator(".verdict").inner_text() == "UNKNOWN"
    assert "acme/z@2, logged by this hub for a publish that did not complete" in (
        unfinished.inner_text()
    )
    assert page.locator(".fork").count() == 0
    assert requests and all(r.startswith(served.url) for r in requests), requests
    page.close()
