"""The HTML report in real headless Chromium (Debian's package, driven by Playwright): what a
person sees is the right verdict, in the right colour, with the evidence expandable."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glassbox.audit import AuditOptions, audit_model
from glassbox.audit.report_html import CHROMIUM_ARGS, COLOURS, write_html
from glassbox.audit.verdict import Verdict
from tests.audit.conftest import Release

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)"
    ),
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


def test_report_renders_verdicts_colours_and_expandable_evidence(
    release: Release, browser: Any, tmp_path: Path
) -> None:
    (release.model / "config.json").write_text('{"hidden": 5}\n')
    release.proof.unlink()
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    html = write_html(report, tmp_path / "report.html")

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(html.as_uri())

    assert page.locator("#overall").inner_text().startswith("✘ FAIL")
    expected = {
        "integrity": Verdict.FAIL,
        "transparency": Verdict.UNKNOWN,
        "provenance": Verdict.FAIL,
        "safety": Verdict.PASS,
        "openness": Verdict.PASS,
    }
    for link, verdict in expected.items():
        node = page.locator(f"g.node[data-link={link}]")
        assert verdict.value.upper() in (node.text_content() or "")
        stroke = node.locator("rect").evaluate("e => getComputedStyle(e).stroke")
        assert stroke == rgb(COLOURS[verdict][0])
        badge = page.locator(f"#link-{link} .verdict")
        assert badge.is_visible()
        assert verdict.value.upper() in badge.inner_text()
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == rgb(
            COLOURS[verdict][0]
        )

    # Links that did not pass start expanded; the person sees which file changed.
    integrity = page.locator("#link-integrity")
    assert integrity.evaluate("e => e.open") is True
    assert page.locator("#link-integrity table.evidence").is_visible()
    assert "config.json" in page.locator("#link-integrity table.evidence").inner_text()

    # Passing links are collapsed; clicking the summary expands the evidence.
    safety = page.locator("#link-safety")
    assert safety.evaluate("e => e.open") is False
    assert not page.locator("#link-safety table.evidence").is_visible()
    page.locator("#link-safety > summary").click()
    assert page.locator("#link-safety table.evidence").is_visible()
    assert "signed scan attestation" in page.locator("#link-safety").inner_text() or (
        "scanned now" in page.locator("#link-safety").inner_text()
    )

    # The chain node links to its section.
    page.locator("g.node[data-link=openness]").click()
    assert page.evaluate("location.hash") == "#link-openness"

    checklist = page.locator("#openness table.mof")
    assert (
        checklist.locator("tr[data-component='Model architecture']").get_attribute("data-status")
        == "open"
    )
    assert "MOF Class III" in page.locator("#openness-headline").inner_text()
    assert page.locator("#bom").is_visible()

    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    # Nothing but the file itself was requested: no network, no external assets.
    assert requests == [html.as_uri()]
    page.close()
