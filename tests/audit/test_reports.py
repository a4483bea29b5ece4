"""Report formats: the JSON matches its documented schema; terminal and HTML say the verdicts."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import jsonschema
from rich.console import Console

from glassbox.audit import LINKS, SCHEMA_ID, AuditOptions, audit_model
from glassbox.audit.report_html import render_html
from glassbox.audit.report_terminal import render
from glassbox.audit.verdict import Verdict
from tests.audit.conftest import Release

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "audit-report.schema.json"


def test_json_report_validates_against_the_documented_schema(release: Release) -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$id"] == SCHEMA_ID
    jsonschema.Draft202012Validator.check_schema(schema)
    (release.model / "model.safetensors").write_bytes(b"tampered")
    for options in (AuditOptions(keys=(release.pub,)), AuditOptions()):
        doc = json.loads(json.dumps(audit_model(release.model, options).to_dict()))
        jsonschema.validate(doc, schema)
        assert [link["link"] for link in doc["links"]] == list(LINKS)


def test_schema_rejects_an_invented_verdict(release: Release) -> None:
    schema = json.loads(SCHEMA.read_text())
    doc = json.loads(json.dumps(audit_model(release.model).to_dict()))
    doc["links"][0]["verdict"] = "probably fine"
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("schema accepted an unknown verdict")


def test_terminal_report_shows_each_link_and_the_failure(release: Release) -> None:
    (release.model / "config.json").write_text("{}")
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    buffer = io.StringIO()
    render(report, Console(file=buffer, width=160, color_system=None))
    text = buffer.getvalue()
    for title in ("Integrity", "Transparency", "Provenance", "Safety", "Openness"):
        assert title in text
    assert "✘ FAIL" in text and "modified: config.json" in text
    assert "Verdict: ✘ FAIL" in text and "exit 1" in text


def test_terminal_shows_a_failing_advisory_link_as_advisory_not_as_a_failure(
    weights_only: Release,
) -> None:
    report = audit_model(weights_only.model, AuditOptions(keys=(weights_only.pub,)))
    assert report.exit_code == 0
    assert report.link("openness").verdict is Verdict.FAIL  # the JSON keeps the real verdict
    buffer = io.StringIO()
    render(report, Console(file=buffer, width=160, color_system="truecolor"))
    text = buffer.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    openness_row = next(line for line in plain.splitlines() if "Openness" in line)
    assert "ADVISORY" in openness_row and "FAIL" not in openness_row
    assert "✘" not in plain  # nothing on a passing report is drawn as a failure
    assert "Openness (advisory, fail):" in plain
    # Its own colour: not the red of a failure (rich's "red" is SGR 31, red3 a 256-colour).
    row = next(line for line in text.splitlines() if "ADVISORY" in line)
    assert "\x1b[1;31m" not in row and "\x1b[31m" not in row

    # The same link, when the policy requires it, is a failure again.
    strict = audit_model(
        weights_only.model, AuditOptions(keys=(weights_only.pub,), require=frozenset(LINKS))
    )
    buffer = io.StringIO()
    render(strict, Console(file=buffer, width=160, color_system=None))
    row = next(line for line in buffer.getvalue().splitlines() if "Openness" in line)
    assert "✘ FAIL" in row and "ADVISORY" not in row


def test_html_shows_an_advisory_link_closed_in_a_neutral_colour(weights_only: Release) -> None:
    report = audit_model(weights_only.model, AuditOptions(keys=(weights_only.pub,)))
    html = render_html(report)
    section = re.search(r'<details class="link" id="link-openness"[^>]*>.*?</summary>', html, re.S)
    assert section is not None
    opening = section.group(0)
    assert 'data-advisory="true"' in opening
    assert " open>" not in opening.split(">")[0] + ">"  # a passing report opens nothing
    assert "ADVISORY" in opening and "FAIL" not in opening
    assert "#b3261e" not in opening  # not the failure red
    node = re.search(r'<g class="node" data-link="openness".*?</g>', html, re.S)
    assert node is not None and "ADVISORY" in node.group(0) and "FAIL" not in node.group(0)
    assert "<details" in html and " open>" not in html


def test_html_is_self_contained_and_escapes_model_text(release: Release, tmp_path: Path) -> None:
    hostile = release.root / "<img src=x onerror=alert(1)>"
    release.model.rename(hostile)
    report = audit_model(hostile, AuditOptions(keys=(release.pub,)))
    html = render_html(report)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html.lower()
    # No network and no external assets: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html.replace("url(#arrow)", "")
    assert html.count("<details") == len(LINKS)
    assert "default-src 'none'" in html


def test_shipped_bom_is_checked_against_the_files(release: Release) -> None:
    from glassbox.bom.cyclonedx import bom_for_model

    shipped = release.root / "digits.cdx.json"
    shipped.write_text(json.dumps(bom_for_model(release.model)))
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    assert report.bom is not None and report.bom["matches_model"] is True
    assert report.bom["source"] == str(shipped)
    assert report.bom["model_card_section"] is True
    (release.model / "config.json").write_text("{}")
    report = audit_model(release.model, AuditOptions(keys=(release.pub,)))
    assert report.bom is not None and report.bom["matches_model"] is False
    assert any("describes other bytes" in d for d in report.link("openness").details)


def test_trigger_images_are_inlined_only_when_they_are_pngs() -> None:
    import base64

    import numpy as np

    from glassbox.audit.report_html import _trigger_image
    from glassbox.scan.behavior.png import png_base64

    good = png_base64(np.zeros((8, 8)), scale=2)
    html = _trigger_image({"evidence": {"trigger_png_base64": good}})
    assert html.startswith('<br><img class="trigger"') and "data:image/png;base64," in html
    script = base64.b64encode(b"<script>alert(1)</script>").decode()
    for bad in (script, "not base64!", 7, "A" * 10_000_000):
        assert _trigger_image({"evidence": {"trigger_png_base64": bad}}) == ""
    assert _trigger_image({"evidence": "x"}) == ""


def test_evidence_values_are_written_for_people() -> None:
    from glassbox.audit.report_html import _value

    assert ">yes<" in _value(True) and ">no<" in _value(False)
    assert "True" not in _value(True) and "False" not in _value(False)
    assert ">none<" in _value([]) and ">none<" in _value({})
    assert "None" not in _value(None)
    flat = _value({"data": 2, "library": 189})
    assert "data:</span> <code>2</code>" in flat and "{" not in flat
    tried = _value([{"signature": "model.sig", "key_id": "ab" * 8}, {"signature": "b.sig"}])
    assert tried.count("<br>") == 1 and "{" not in tried and "key_id:</span>" in tried
    nested = _value({"a": {"b": [1, 2]}})  # only deep structures stay JSON (never Python)
    assert nested.startswith("<pre>") and "&quot;b&quot;" in nested
