"""Fine-tune chains in ``audit``: a provenance that names a base model is checked against the
weights' lineage. A fine-tune whose provenance names the wrong base fails the provenance link
with the lineage evidence."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from glassbox.audit import AuditOptions, Verdict, audit_model
from glassbox.digest import hash_model
from glassbox.sign import (
    generate_private_key,
    make_statement,
    sign_statement,
    subject,
    write_bundle,
    write_keypair,
)
from tests.lm.conftest import MiniZoo


def _release(zoo: MiniZoo, tmp: Path, *, model: str, declared_base: str) -> tuple[Path, Path]:
    """A release of ``model`` whose signed provenance declares ``declared_base`` (by its OMS
    digest, at ``base`` in the recipe's code directory, as ``glassbox build`` records it)."""
    code = tmp / "recipe"
    code.mkdir()
    shutil.copytree(zoo[declared_base], code / "base")
    release = tmp / "release" / "model"
    shutil.copytree(zoo[model], release)
    files = {
        n: hashlib.sha256((release / n).read_bytes()).hexdigest()
        for n in ("model.safetensors", "config.json")
    }
    deps: list[dict[str, Any]] = [
        {"name": "code", "digest": {"sha256": "aa" * 32}, "annotations": {"localPath": str(code)}},
        {
            "name": "base-model",
            "digest": {"sha256": hash_model(code / "base").root_digest.hex()},
            "annotations": {"kind": "base-model", "path": "base"},
        },
    ]
    predicate = {
        "buildDefinition": {
            "buildType": "https://glassbox.dev/build/recipe/v1",
            "externalParameters": {},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": "https://glassbox.dev/builder/local/v1"},
            "byproducts": [{"name": "hermeticity", "annotations": {"hermetic": True}}],
        },
    }
    statement = make_statement(
        [subject(n, d) for n, d in sorted(files.items())],
        "https://slsa.dev/provenance/v1",
        predicate,
    )
    key = generate_private_key()
    _, pub = write_keypair(key, tmp / "producer")
    write_bundle(sign_statement(statement, key), tmp / "release" / "model.provenance.json")
    return release, pub


def _provenance(model: Path, pub: Path) -> Any:
    report = audit_model(model, AuditOptions(keys=(pub,), scan_now=False))
    return report.link("provenance")


def test_fine_tune_of_the_declared_base_passes_with_lineage(zoo: MiniZoo, tmp_path: Path) -> None:
    model, pub = _release(zoo, tmp_path, model="ft", declared_base="base")
    link = _provenance(model, pub)
    assert link.verdict is Verdict.PASS, link.summary
    assert "derives from the declared base" in link.summary
    assert link.evidence["base_model"]["verdict"] == "derived"


def test_fine_tune_naming_the_wrong_base_fails_with_the_evidence(
    zoo: MiniZoo, tmp_path: Path
) -> None:
    model, pub = _release(zoo, tmp_path, model="ft", declared_base="other")
    link = _provenance(model, pub)
    assert link.verdict is Verdict.FAIL
    assert "do not derive from the declared base" in link.summary
    lineage = link.evidence["base_model"]
    assert lineage["verdict"] == "not derived" and lineage["score"] < 0.2
    assert [layer["layer"] for layer in lineage["layers"]] == [None, 0, 1]


def test_html_report_shows_the_base_model_chain(zoo: MiniZoo, tmp_path: Path) -> None:
    from glassbox.audit.report_html import render_html

    model, pub = _release(zoo, tmp_path, model="ft", declared_base="other")
    report = audit_model(model, AuditOptions(keys=(pub,), scan_now=False))
    html = render_html(report)
    assert 'id="lineage-chain" data-verdict="fail"' in html
    assert "lineage: not derived (score" in html and "this model" in html


def test_swapped_base_files_fail(zoo: MiniZoo, tmp_path: Path) -> None:
    model, pub = _release(zoo, tmp_path, model="ft", declared_base="base")
    shutil.copyfile(
        zoo["other"] / "model.safetensors", tmp_path / "recipe" / "base" / "model.safetensors"
    )
    link = _provenance(model, pub)
    assert link.verdict is Verdict.FAIL
    assert "is not the one the provenance declares" in link.summary


def test_missing_base_is_reported_not_passed_silently(zoo: MiniZoo, tmp_path: Path) -> None:
    model, pub = _release(zoo, tmp_path, model="ft", declared_base="base")
    shutil.rmtree(tmp_path / "recipe" / "base")
    link = _provenance(model, pub)
    assert link.evidence["base_model"] == {"checked": False, "reason": "base model not found"}
    assert any("lineage of the weights was not checked" in d for d in link.details)


def test_html_chain_in_chromium(zoo: MiniZoo, tmp_path: Path) -> None:
    """What a person sees: the base -> lineage -> model chain, in the failure colour."""
    import shutil as sh

    chromium = sh.which("chromium") or sh.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium binary on PATH")
    playwright = pytest.importorskip("playwright.sync_api")
    from glassbox.audit.report_html import CHROMIUM_ARGS, COLOURS, write_html

    model, pub = _release(zoo, tmp_path, model="ft", declared_base="other")
    html = write_html(
        audit_model(model, AuditOptions(keys=(pub,), scan_now=False)), tmp_path / "r.html"
    )
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(html.as_uri())
        chain = page.locator("#lineage-chain")
        assert chain.is_visible()
        text = chain.inner_text()
        assert "base model" in text and "lineage: not derived" in text and "this model" in text
        pill = chain.locator(".pill").nth(1)
        r, g, b = (int(COLOURS[Verdict.FAIL][0][i : i + 2], 16) for i in (1, 3, 5))
        assert pill.evaluate("e => getComputedStyle(e).color") == f"rgb({r}, {g}, {b})"
        assert page.locator("#link-provenance").evaluate("e => e.open") is True
        browser.close()
