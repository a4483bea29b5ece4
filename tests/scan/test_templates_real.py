"""Real-world chat-template constructs scan clean, sandbox escapes do not (issue 18)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from glassbox.scan import Severity, scan_path
from glassbox.scan.templates import check_template

TEMPLATES = Path(__file__).parent / "templates"
REAL = sorted(p.name for p in TEMPLATES.glob("*.jinja"))
# A directory of published chat templates (a checkout's ``models/templates`` of
# ggml-org/llama.cpp): their text is not copied into this repository, so the test runs where
# such a directory is given.
EXTERNAL = Path(os.environ.get("GLASSBOX_REAL_TEMPLATES", "/nonexistent"))
EXTERNAL_NAMES = sorted(p.name for p in EXTERNAL.glob("*.jinja")) if EXTERNAL.is_dir() else []

ESCAPES = {
    "concat": "{% set k = 'glob' ~ 'als' %}{{ cycler.__init__[k] }}",
    "concat_no_dunder_text": "{% set k = 'glob' ~ 'als' %}{{ x[k] }}",
    "percent_s": "{% set u = '_' * 2 %}{% set n = '%sglobals%s' % (u, u) %}{{ x[n] }}",
    "percent_c": "{{ x['%c%cclass%c%c' % (95, 95, 95, 95)] }}",
    "format_filter": "{% set n = '%sclass%s'|format(u, u) %}{{ x[n] }}",
    "str_format": "{{ '{0.__class__}'.format(x) }}",
    "join": "{% set n = ['_', '_', 'class', '_', '_']|join %}{{ x[n] }}",
    "replace": "{% set n = 'xxclassxx'|replace('x', '_') %}{{ x[n] }}",
    "reverse": "{{ x['ssalc'|reverse] }}",
    "attr_filter": "{{ x|attr('mro') }}",
    "risky_global_in_variable": "{% set g = lipsum %}{{ g.x }}",
    "attribute_chain": "{{ self._TemplateReference__context }}",
    "underscore_escape": "{{ x['\\x5f\\x5fclass\\x5f\\x5f'] }}",
}


@pytest.mark.parametrize("name", REAL)
def test_real_template_constructs_scan_clean(name: str, tmp_path: Path) -> None:
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    problems, error = check_template(text)
    assert (problems, error) == ([], None)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": text}))
    assert not scan_path(tmp_path, workers=1).fails(Severity.MEDIUM)


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_sandbox_escapes_are_caught(name: str, tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": ESCAPES[name]}))
    found = scan_path(tmp_path, workers=1).findings
    assert any(f.rule_id == "GBX-TPL-001" and f.severity >= Severity.HIGH for f in found), name


def test_numeric_look_ahead_is_not_a_computed_name() -> None:
    # The Qwen-style false positive: messages[loop.index0 + 1] indexes by a number.
    text = "{% for m in messages %}{{ messages[loop.index0 + 1].role }}{% endfor %}"
    assert check_template(text) == ([], None)
    assert check_template("{{ x['a' + b] }}")[0] == ["indexes with a name computed at render time"]


@pytest.mark.skipif(not EXTERNAL_NAMES, reason="GLASSBOX_REAL_TEMPLATES names no template dir")
@pytest.mark.parametrize("name", EXTERNAL_NAMES or ["-"])
def test_published_templates_raise_no_high_finding(name: str, tmp_path: Path) -> None:
    text = (EXTERNAL / name).read_text(encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": text}))
    report = scan_path(tmp_path, workers=1)
    assert not report.fails(Severity.HIGH), [f.message for f in report.findings]
