"""The HTML report in real headless Chromium (Debian's package, driven by Playwright): what a
person sees is the right verdict, in the right colour, with the evidence expandable."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glassbox.audit import AuditOptions, audit_model
from glassbox.audit.report_html import ADVISORY_COLOURS, CHROMIUM_ARGS, COLOURS, write_html
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


LINES_OF = """el => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    return tops.size;
}"""


@pytest.mark.parametrize("width", [1200, 900, 700])
def test_checklist_status_and_licence_never_break_inside_a_word(
    release: Release, browser: Any, tmp_path: Path, width: int
) -> None:
    """ "missin / g" and "Apache- / 2.0" used to wrap in narrow columns: each status and each
    licence term is laid out on one line, at any reasonable window width."""
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    html = write_html(report, tmp_path / "report.html")
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(html.as_uri())
    rows = page.locator("#openness table.mof tr[data-component]")
    assert rows.count() == 17
    headers = page.locator("#openness table.mof th").all_inner_texts()
    assert headers[3:5] == ["status", "licence"]
    statuses = page.locator("#openness table.mof tr[data-component] > td:nth-child(4)")
    licences = page.locator("#openness table.mof tr[data-component] > td:nth-child(5) code")
    assert statuses.count() == 17 and licences.count() > 0
    texts = set()
    for cells in (statuses, licences):
        for i in range(cells.count()):
            cell = cells.nth(i)
            texts.add(cell.inner_text())
            assert cell.evaluate(LINES_OF) == 1, (width, cell.inner_text())
    assert {"open", "missing", "Apache-2.0"} <= texts
    # Nothing spills out of the page sideways either.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(tmp_path / f"checklist-{width}.png"), full_page=True)
    page.close()


def test_bom_and_evidence_show_no_python_or_json_syntax(
    release: Release, browser: Any, tmp_path: Path
) -> None:
    """The BOM section used to show ``True``, ``[]`` and raw ``{...}`` dicts."""
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    html = write_html(report, tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(html.as_uri())
    for section in page.locator("details.link").all():
        section.locator("summary").click()  # open every link, so its evidence is shown too
    bom = page.locator("#bom").inner_text()
    assert "CycloneDX version" in bom and "describes these files" in bom
    assert "yes" in bom
    text = page.locator("main").inner_text()
    for python in ("True", "False", "None", "[]", "{}", "{'", '{"', "':", '":'):
        assert python not in text, python
    page.close()


def test_a_passing_report_shows_its_advisory_link_grey_and_closed(
    weights_only: Release, browser: Any, tmp_path: Path
) -> None:
    report = audit_model(weights_only.model, AuditOptions(keys=(weights_only.pub,)))
    html = write_html(report, tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(html.as_uri())
    assert page.locator("#overall").inner_text().startswith("✔ PASS")
    openness = page.locator("#link-openness")
    assert openness.evaluate("e => e.open") is False
    badge = openness.locator(".verdict")
    assert badge.inner_text().strip() == "ℹ ADVISORY"
    colour = badge.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == rgb(ADVISORY_COLOURS[0])
    assert colour not in {rgb(fg) for fg, _bg in COLOURS.values()}
    node = page.locator("g.node[data-link=openness]")
    assert "ADVISORY" in (node.text_content() or "") and "FAIL" not in (node.text_content() or "")
    assert node.locator("rect").evaluate("e => getComputedStyle(e).stroke") == rgb(
        ADVISORY_COLOURS[0]
    )
    # Nothing on a passing page is red.
    red = rgb(COLOURS[Verdict.FAIL][0])
    assert (
        page.evaluate(
            """red => [...document.querySelectorAll('details.link .verdict, g.node rect')]
            .filter(e => getComputedStyle(e).backgroundColor === red
                      || getComputedStyle(e).stroke === red).length""",
            red,
        )
        == 0
    )
    page.close()
