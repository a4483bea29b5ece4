"""The HTML report: one self-contained file a person can open anywhere, offline.

No network, no external assets, no JavaScript: inline CSS, an inline SVG drawing of the chain
coloured by verdict (each node links to its section), and ``<details>`` elements so every
link's evidence can be expanded. Required links that did not pass start expanded, because that
is what the reader came to see; an advisory link (not required, not passing) is drawn in its
own neutral colour with its own word and starts closed, since it cannot fail the audit. Every
value from the model or its evidence is HTML-escaped: a model name or a finding message is
attacker-controlled text.
"""

from __future__ import annotations

import base64
import binascii
import json
from html import escape
from pathlib import Path
from typing import Any

from glassbox.audit.engine import AuditReport
from glassbox.audit.verdict import LINK_QUESTIONS, LINK_TITLES, LinkResult, Verdict, is_advisory
from glassbox.errors import InputError
from glassbox.files import check_output_file

COLOURS = {
    Verdict.PASS: ("#1b7f3b", "#e6f4ea"),
    Verdict.FAIL: ("#b3261e", "#fce8e6"),
    Verdict.UNKNOWN: ("#c2410c", "#fff1e6"),
}
LABELS = {Verdict.PASS: "PASS", Verdict.FAIL: "FAIL", Verdict.UNKNOWN: "UNKNOWN"}
ICONS = {Verdict.PASS: "✔", Verdict.FAIL: "✘", Verdict.UNKNOWN: "?"}
ADVISORY_COLOURS = ("#57606a", "#f6f8fa")
ADVISORY_LABEL = "ADVISORY"
ADVISORY_ICON = "ℹ"


def link_look(link: LinkResult, required: frozenset[str]) -> tuple[str, str, str, str]:
    """(foreground, background, icon, word) a person is shown for ``link``."""
    if is_advisory(link, required):
        # An advisory unknown still says unknown (missing evidence is never hidden).
        if link.verdict is Verdict.UNKNOWN:
            return (*ADVISORY_COLOURS, ICONS[Verdict.UNKNOWN], LABELS[Verdict.UNKNOWN])
        return (*ADVISORY_COLOURS, ADVISORY_ICON, ADVISORY_LABEL)
    fg, bg = COLOURS[link.verdict]
    return fg, bg, ICONS[link.verdict], LABELS[link.verdict]


# Flags for photographing a report in headless Chromium (Debian's package, offline, no
# profile): the one list the browser test and docs/make_screenshot.py both launch with.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

CSS = """
:root { --ink:#1f2328; --muted:#59636e; --line:#d0d7de; --bg:#ffffff; --panel:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: var(--bg); margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 10px; }
.sub { color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 700;
  font-size: 13px; letter-spacing: .04em; color: #fff; white-space: nowrap; flex-shrink: 0; }
.overall { display: flex; gap: 16px; align-items: center; margin: 16px 0 8px; padding: 14px 18px;
  border-radius: 10px; border: 1px solid var(--line); }
.overall .big { font-size: 22px; font-weight: 800; white-space: nowrap; }
svg.chain { width: 100%; height: auto; margin: 8px 0 4px; }
svg.chain text { font-family: system-ui, sans-serif; }
details.link { border: 1px solid var(--line); border-left-width: 6px; border-radius: 8px;
  margin: 10px 0; background: #fff; }
details.link > summary { cursor: pointer; padding: 10px 14px; list-style: none; display: flex;
  gap: 12px; align-items: baseline; }
details.link > summary::-webkit-details-marker { display: none; }
details.link > summary::before { content: "▸"; color: var(--muted); }
details.link[open] > summary::before { content: "▾"; }
details.link .title { font-weight: 700; min-width: 124px; flex-shrink: 0; }
details.link .pill { margin-left: auto; white-space: nowrap; flex-shrink: 0; padding: 0 6px;
  border-radius: 4px; }
details.link .body { padding: 0 16px 14px 34px; }
.q { color: var(--muted); font-style: italic; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 6px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
td.k { width: 190px; color: var(--muted); font-family: ui-monospace, monospace; }
td.word, th.word { white-space: nowrap; overflow-wrap: normal; }
td.licence { overflow-wrap: normal; min-width: 7em; }
.nobreak { white-space: nowrap; }
.muted { color: var(--muted); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
pre { background: var(--panel); padding: 8px 10px; border-radius: 6px; margin: 0;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 320px; overflow: auto; }
ul.details { margin: 6px 0; padding-left: 20px; }
.ok { color: #1b7f3b; font-weight: 700; } .no { color: #b3261e; font-weight: 700; }
.sev-critical, .sev-high { color: #b3261e; font-weight: 700; }
.sev-medium { color: #c2410c; font-weight: 600; } .sev-low, .sev-info { color: var(--muted); }
img.trigger { image-rendering: pixelated; width: 96px; height: 96px; margin-top: 6px;
  border: 1px solid var(--line); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def render_html(report: AuditReport) -> str:
    """The report as one HTML document (a string)."""
    data = report.to_dict()
    overall = report.overall
    title = _display_name(report)
    fg, bg = COLOURS[overall]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>Glassbox audit: {escape(title)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>Glassbox audit: {escape(title)}</h1>",
        f'<div class="sub">{escape(str(report.model))} · generated {escape(report.generated_at)}'
        f" · report schema {escape(str(data['schema_version']))}</div>",
        f'<div class="overall" id="overall" data-verdict="{overall.value}" '
        f'style="background:{bg};border-color:{fg}">',
        f'<span class="big" style="color:{fg}">{ICONS[overall]} {LABELS[overall]}</span>',
        f"<span>{escape(_policy_line(report))}</span></div>",
        _manifest_line(report),
        "<h2>The chain</h2>",
        _chain_svg(report),
        _lineage_chain(report),
        "<h2>Links</h2>",
        *(_link_section(link, report.required) for link in report.links),
        _lineage_section(report.link("provenance")),
        _findings_section(report.link("safety")),
        _probes_section(report.link("safety")),
        _openness_section(report.link("openness")),
        _bom_section(report.bom),
        _evidence_section(data["evidence"]),
        "<footer>Glassbox "
        f"{escape(str(data['tool']['version']))}. Missing evidence is reported as unknown, "
        "never as pass. Machine-readable form: <code>glassbox audit --json</code>.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _release_name(report: AuditReport) -> str:
    """The release's own name (from its MOF file or provenance), else the file name."""
    release = report.link("openness").evidence.get("release")
    name = release.get("name") if isinstance(release, dict) else None
    return name if isinstance(name, str) and name else report.model.name


def _display_name(report: AuditReport) -> str:
    """The release's name and version beside the directory name."""
    release = report.link("openness").evidence.get("release")
    name = _release_name(report)
    version = release.get("version") if isinstance(release, dict) else None
    if name == report.model.name:
        return name
    label = f"{name} {version}" if isinstance(version, str) else name
    return f"{label} ({report.model.name})"


def check_html_target(path: Path) -> None:
    """Refuse an HTML report path that cannot be written (see ``check_output_file``)."""
    check_output_file(path, "HTML report")


def write_html(report: AuditReport, path: Path) -> Path:
    """Write the report to ``path`` (its directory must exist) and return it."""
    check_html_target(path)
    text = render_html(report)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the HTML report: {exc.strerror or exc}") from exc
    return path


def _policy_line(report: AuditReport) -> str:
    required = [LINK_TITLES[n] for n in LINK_TITLES if n in report.required]
    if not required:
        return "No link is required by the policy; exit code 0."
    failing = [
        LINK_TITLES[link.link]
        for link in report.links
        if link.link in report.required and link.verdict is not Verdict.PASS
    ]
    line = f"Required: {', '.join(required)}."
    if failing:
        line += f" Not holding: {', '.join(failing)}."
    return line + f" Exit code {report.exit_code}."


def _manifest_line(report: AuditReport) -> str:
    m = report.manifest
    if not m:
        return ""
    state = "verified against the signature" if m["verified"] else "hashed now (not verified)"
    return (
        f'<div class="sub">Model root digest <code>{escape(str(m["root_digest"]))}</code> '
        f"({escape(str(m['hash_method']))}, {m['files']} files, {m['total_size']} bytes, "
        f"{state})</div>"
    )


def _chain_svg(report: AuditReport) -> str:
    """Model box on the left, the five links as a chain to the right, coloured by verdict."""
    width, height = 1040, 112
    node_w, node_h, gap = 158, 92, 22
    x0 = 16
    out = [
        f'<svg class="chain" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" '
        'role="img" aria-label="the chain of evidence, coloured by verdict">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker>'
        "</defs>",
        f'<rect x="{x0}" y="{(height - node_h) // 2}" width="{node_w - 40}" height="{node_h}" '
        'rx="10" fill="#f6f8fa" stroke="#57606a" stroke-width="1.5"/>',
        f'<text x="{x0 + (node_w - 40) // 2}" y="{height // 2 - 4}" text-anchor="middle" '
        'font-size="14" font-weight="700" fill="#1f2328">model</text>',
        f'<text x="{x0 + (node_w - 40) // 2}" y="{height // 2 + 16}" text-anchor="middle" '
        f'font-size="11" fill="#59636e">{escape(_short(_release_name(report), 16))}</text>',
    ]
    x = x0 + node_w - 40 + gap
    for link in report.links:
        fg, bg, icon, word = link_look(link, report.required)
        y = (height - node_h) // 2
        out.append(
            f'<line x1="{x - gap}" y1="{height // 2}" x2="{x - 2}" y2="{height // 2}" '
            'stroke="#8c959f" stroke-width="2" marker-end="url(#arrow)"/>'
        )
        dash = ' stroke-dasharray="6 4"' if link.link not in report.required else ""
        out.append(
            f'<a href="#link-{link.link}"><g class="node" data-link="{link.link}" '
            f'data-verdict="{link.verdict.value}" '
            f'data-advisory="{str(is_advisory(link, report.required)).lower()}">'
            f'<rect x="{x}" y="{y}" width="{node_w}" height="{node_h}" rx="10" fill="{bg}" '
            f'stroke="{fg}" stroke-width="2.5"{dash}/>'
            f'<text x="{x + node_w // 2}" y="{y + 30}" text-anchor="middle" font-size="15" '
            f'font-weight="700" fill="#1f2328">{LINK_TITLES[link.link]}</text>'
            f'<text x="{x + node_w // 2}" y="{y + 56}" text-anchor="middle" font-size="15" '
            f'font-weight="800" fill="{fg}">{icon} {word}</text>'
            f'<text x="{x + node_w // 2}" y="{y + 77}" text-anchor="middle" font-size="10.5" '
            f'fill="#59636e">{_node_note(link, report.required)}</text></g></a>'
        )
        x += node_w + gap
    out.append("</svg>")
    return "".join(out)


def _node_note(link: LinkResult, required: frozenset[str]) -> str:
    if link.link in required:
        return "required"
    return f"advisory: {link.verdict.value}" if is_advisory(link, required) else "advisory"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _link_section(link: LinkResult, policy: frozenset[str]) -> str:
    required = link.link in policy
    fg, bg, icon, word = link_look(link, policy)
    is_open = " open" if required and link.verdict is not Verdict.PASS else ""
    rows = "".join(
        f'<tr><td class="k">{escape(str(k))}</td><td>{_value(v)}</td></tr>'
        for k, v in link.evidence.items()
        if (link.link != "openness" or k in {"headline", "verdict", "references"})
        and k not in {"lineage", "base_model"}  # drawn as their own sections
    )
    details = "".join(f"<li>{escape(d)}</li>" for d in link.details)
    body = [
        f'<p class="q">{escape(LINK_QUESTIONS[link.link])}</p>',
        f'<table class="evidence"><tr><th colspan="2">Evidence</th></tr>{rows}</table>'
        if rows
        else '<p class="no">No evidence.</p>',
        f'<ul class="details">{details}</ul>' if details else "",
    ]
    return (
        f'<details class="link" id="link-{link.link}" data-verdict="{link.verdict.value}"'
        f' data-advisory="{str(is_advisory(link, policy)).lower()}"'
        f' style="border-left-color:{fg}"{is_open}>'
        f'<summary><span class="title">{LINK_TITLES[link.link]}</span>'
        f'<span class="badge verdict" style="background:{fg}">{icon} {word}</span>'
        f'<span class="summary">{escape(link.summary)}</span>'
        f'<span class="sub pill" style="background:{bg}">'
        f"{'required' if required else 'advisory'}</span></summary>"
        f'<div class="body">{"".join(body)}</div></details>'
    )


_STEP_COLOURS = {
    "pass": COLOURS[Verdict.PASS],
    "fail": COLOURS[Verdict.FAIL],
    "unknown": COLOURS[Verdict.UNKNOWN],
}


def _lineage_section(provenance: LinkResult) -> str:
    """The pipeline behind the model as a DAG (inline SVG), each step coloured by its verdict,
    upstream datasets on the left; then one row per step with what was found."""
    lineage = provenance.evidence.get("lineage")
    if not isinstance(lineage, dict):
        return ""
    steps = [s for s in lineage.get("steps", []) if isinstance(s, dict)]
    raw_upstream = lineage.get("upstream")
    upstream: dict[str, Any] = raw_upstream if isinstance(raw_upstream, dict) else {}
    layer: dict[str, int] = {f"upstream.{n}": 0 for n in upstream}
    nodes: list[tuple[str, str, str, int]] = [
        (f"upstream.{n}", str(n), "upstream", 0) for n in upstream
    ]
    edges: list[tuple[str, str]] = []
    for step in steps:
        name = str(step.get("name"))
        sources = [str(r) for r in (step.get("inputs") or {}).values()]
        depth = 1 + max(
            (layer.get(r if r.startswith("upstream.") else r.split(".")[0], 0) for r in sources),
            default=0,
        )
        layer[name] = depth
        nodes.append((name, name, str(step.get("kind")), depth))
        for ref in sources:
            edges.append((ref if ref.startswith("upstream.") else ref.split(".")[0], name))
    columns: dict[int, list[str]] = {}
    for node_id, _label, _kind, depth in nodes:
        columns.setdefault(depth, []).append(node_id)
    w, h, gap_x, gap_y = 150, 52, 60, 22
    pos = {}
    for depth, ids in columns.items():
        for row, node_id in enumerate(ids):
            pos[node_id] = (20 + depth * (w + gap_x), 20 + row * (h + gap_y))
    width = 40 + (max(columns) + 1) * (w + gap_x)
    height = 40 + max(len(v) for v in columns.values()) * (h + gap_y)
    verdicts = {str(s.get("name")): str(s.get("verdict")) for s in steps}
    problems = {str(s.get("name")): [str(p) for p in s.get("problems", [])] for s in steps}
    out = [
        f'<svg class="chain" id="lineage-dag" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg" role="img" '
        'aria-label="the pipeline behind the model, each step coloured by verdict">'
    ]
    for src, dst in edges:
        if src in pos and dst in pos:
            (x1, y1), (x2, y2) = pos[src], pos[dst]
            out.append(
                f'<line x1="{x1 + w}" y1="{y1 + h / 2}" x2="{x2}" y2="{y2 + h / 2}" '
                'stroke="#59636e" stroke-width="1.5"/>'
            )
    for node_id, label, kind, _depth in nodes:
        x, y = pos[node_id]
        verdict = "pass" if kind == "upstream" else verdicts.get(node_id, "unknown")
        fg, bg = _STEP_COLOURS.get(verdict, COLOURS[Verdict.UNKNOWN])
        tip = "; ".join(problems.get(node_id, [])) or verdict
        out.append(
            f'<g class="step" data-step="{escape(node_id)}" data-verdict="{escape(verdict)}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{bg}" stroke="{fg}" '
            'stroke-width="2"/>'
            f'<text x="{x + 10}" y="{y + 21}" font-size="14" font-weight="700" fill="{fg}">'
            f"{escape(_short(label, 18))}</text>"
            f'<text x="{x + 10}" y="{y + 40}" font-size="12" fill="#59636e">'
            f"{escape(kind)} · {escape(verdict)}</text></g>"
        )
    out.append("</svg>")
    rows = "".join(
        f'<tr data-step="{escape(str(s.get("name")))}">'
        f'<td class="k">{escape(str(s.get("name")))}</td>'
        f"<td>{escape(str(s.get('kind')))}</td>"
        f'<td class="{"ok" if s.get("verdict") == "pass" else "no"}">'
        f"{escape(str(s.get('verdict')).upper())}</td>"
        f"<td>{'<br>'.join(escape(str(p)) for p in s.get('problems', [])) or '—'}</td></tr>"
        for s in steps
    )
    return (
        '<h2 id="lineage">Data lineage</h2>'
        f'<p class="sub">Pipeline {escape(str(lineage.get("pipeline")))}: every step from the '
        "upstream commitments to this model, each judged on its own signed provenance.</p>"
        + "".join(out)
        + '<table id="lineage-steps"><tr><th>step</th><th>kind</th><th>verdict</th>'
        f"<th>findings</th></tr>{rows}</table>"
    )


def _value(value: Any) -> str:
    """A JSON value as a person reads it: yes/no rather than ``True``, "none" rather than
    ``[]``, one ``key: value`` line per entry of a flat object rather than its braces."""
    if isinstance(value, bool):
        return f'<span class="{"ok" if value else "no"}">{"yes" if value else "no"}</span>'
    if value is None:
        return '<span class="muted">—</span>'
    if isinstance(value, str | int | float):
        return f"<code>{escape(str(value))}</code>"
    if isinstance(value, list | dict) and not value:
        return '<span class="muted">none</span>'
    if isinstance(value, list) and all(_is_scalar(v) for v in value):
        return "<br>".join(_value(v) for v in value)
    if isinstance(value, list) and all(_is_descriptor(v) for v in value):
        # in-toto resource descriptors (inputs, subjects): one line each, name then digests.
        return "<br>".join(
            f"<code>{escape(str(v['name']))}</code> "
            + " ".join(
                f"<code>{escape(str(alg))}:{escape(str(d))}</code>"
                for alg, d in (v.get("digest") or {}).items()
            )
            + ("" if v.get("digest") else ' <span class="no">no digest</span>')
            for v in value
        )
    if isinstance(value, dict) and all(_is_scalar(v) for v in value.values()):
        return "<br>".join(
            f'<span class="muted">{escape(str(k))}:</span> {_value(v)}' for k, v in value.items()
        )
    if isinstance(value, list) and all(_is_flat_dict(v) for v in value):
        # e.g. the keys an integrity check tried: one line per item, its fields side by side.
        return "<br>".join(
            " · ".join(
                f'<span class="muted">{escape(str(k))}:</span> {_value(v)}' for k, v in d.items()
            )
            for d in value
        )
    return f"<pre>{escape(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>"


def _is_flat_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(_is_scalar(v) for v in value.values())


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _licence(value: Any) -> str:
    """An SPDX expression that wraps only between its terms, never inside ``Apache-2.0``."""
    if not value:
        return '<span class="muted">—</span>'
    return " ".join(f'<code class="nobreak">{escape(term)}</code>' for term in str(value).split())


def _is_descriptor(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) <= {"name", "digest"}
        and isinstance(value.get("digest") or {}, dict)
    )


def _findings_section(safety: LinkResult) -> str:
    if not safety.findings:
        text = "No findings." if safety.verdict is Verdict.PASS else "No scan results available."
        return f'<h2>Findings</h2><p id="findings">{escape(text)}</p>'
    rows = "".join(
        f'<tr><td class="sev-{escape(str(f.get("severity")))}">{escape(str(f.get("severity")))}'
        f"</td><td><code>{escape(str(f.get('rule_id')))}</code></td>"
        f"<td>{escape(str(f.get('path')))}"
        f"{'!' + escape(str(f.get('member'))) if f.get('member') else ''}</td>"
        f"<td>{escape(str(f.get('subject') or ''))}</td>"
        f"<td>{escape(str(f.get('message')))}{_trigger_image(f)}</td></tr>"
        for f in safety.findings
    )
    return (
        '<h2>Findings</h2><table id="findings"><tr><th>severity</th><th>rule</th>'
        f"<th>file</th><th>callable / field</th><th>why</th></tr>{rows}</table>"
    )


def _probes_section(safety: LinkResult) -> str:
    """Behaviour probe attestations given as evidence (``glassbox.audit.probes``)."""
    probes = safety.evidence.get("probes")
    if not isinstance(probes, list) or not probes:
        return ""
    rows = []
    for e in probes:
        counts = e.get("counts") or {}
        suite = e.get("suite") or {}
        used = bool(e.get("used"))
        rows.append(
            f'<tr data-used="{str(used).lower()}"><td>{escape(str(e.get("path")))}</td>'
            f'<td class="sev-{"info" if e.get("signature") == "verified" else "high"}">'
            f"{escape(str(e.get('signature')))}"
            f"{' (key ' + escape(str(e.get('key_id'))[:16]) + ')' if e.get('key_id') else ''}"
            f"</td><td>{'yes' if e.get('model_digest_matches') else 'NO'}</td>"
            f"<td>{escape(str(suite.get('name')))}<br><code>sha256:"
            f"{escape(str(suite.get('sha256')))}</code></td>"
            f"<td>{escape(str(counts.get('matched', '?')))}</td>"
            f"<td>{escape(str(counts.get('not_matched', '?')))}</td>"
            f"<td>{escape(str(counts.get('scored', '?')))}</td>"
            f"<td>{escape('; '.join(str(p) for p in e.get('problems') or []))}</td></tr>"
        )
    return (
        '<h2>Behaviour probes</h2><table id="probes"><tr><th>attestation</th><th>signature</th>'
        "<th>model digest matches</th><th>suite</th><th>matched</th><th>not matched</th>"
        f"<th>scored</th><th>problems</th></tr>{''.join(rows)}</table>"
    )


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_MAX_PNG_BYTES = 256 << 10


def _trigger_image(finding: dict[str, Any]) -> str:
    """The behavioural scan's reconstructed trigger, inlined as a PNG data URI.

    The finding may come from an attestation, so the value is decoded, checked to be a PNG of
    bounded size, and re-encoded: nothing but image bytes can reach the page.
    """
    evidence = finding.get("evidence")
    value = evidence.get("trigger_png_base64") if isinstance(evidence, dict) else None
    if not isinstance(value, str) or len(value) > _MAX_PNG_BYTES * 2:
        return ""
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    if not data.startswith(_PNG_MAGIC) or len(data) > _MAX_PNG_BYTES:
        return ""
    encoded = base64.b64encode(data).decode("ascii")
    return (
        '<br><img class="trigger" alt="reconstructed trigger" '
        f'src="data:image/png;base64,{encoded}">'
    )


def _openness_section(openness: LinkResult) -> str:
    mof = openness.evidence.get("mof")
    if not isinstance(mof, dict):
        return f"<h2>Openness</h2><p>{escape(openness.summary)}</p>"
    rows = []
    for c in mof.get("components", []):
        ok = c.get("status") == "open"
        mark = '<span class="ok">✔</span>' if ok else '<span class="no">✘</span>'
        roman = {3: "III", 2: "II", 1: "I"}.get(c.get("class"), "?")
        rows.append(
            f'<tr data-component="{escape(str(c.get("name")))}" data-status="'
            f'{escape(str(c.get("status")))}"><td>{mark}</td><td>{escape(str(c.get("name")))}</td>'
            f'<td class="word">{roman}{"" if c.get("required") else " (optional)"}</td>'
            f'<td class="word status">{escape(str(c.get("status")))}</td>'
            f'<td class="licence">{_licence(c.get("license"))}</td>'
            f"<td>{escape(str(c.get('location') or ''))}</td>"
            f"<td>{escape(str(c.get('source') or ''))}"
            f"{'<br><span class=no>' + escape(str(c['note'])) + '</span>' if c.get('note') else ''}"
            "</td></tr>"
        )
    osaid = openness.evidence.get("osaid", {})
    osaid_rows = "".join(
        f"<tr><td>{'<span class=ok>✔</span>' if c.get('ok') else '<span class=no>✘</span>'}"
        f"</td><td>{escape(str(c.get('name')))}</td><td>{escape(str(c.get('detail')))}</td></tr>"
        for c in osaid.get("checks", [])
    )
    refs = " · ".join(escape(str(r)) for r in openness.evidence.get("references", []))
    return (
        '<h2>Openness checklist</h2><div id="openness">'
        f'<p><strong id="openness-headline">{escape(openness.summary)}</strong><br>'
        f'<span class="sub">{refs}</span></p>'
        '<table class="mof"><tr><th></th><th>MOF component</th><th class="word">class</th>'
        '<th class="word">status</th><th>licence</th><th>where</th><th>source</th></tr>'
        f"{''.join(rows)}</table>"
        f"<h3>OSI Open Source AI Definition 1.0</h3>"
        f'<table class="osaid"><tr><th></th><th>requirement</th><th>detail</th></tr>'
        f"{osaid_rows}</table></div>"
    )


# The BOM summary's keys (the JSON report's names) as a person reads them.
BOM_LABELS = {
    "spec_version": "CycloneDX version",
    "serial_number": "serial number",
    "model": "model",
    "root_digest": "root digest",
    "licences": "licences",
    "files": "files",
    "components_by_type": "components",
    "datasets": "datasets",
    "model_card_section": "model card section",
    "metrics": "metrics",
    "source": "source",
    "matches_model": "describes these files",
    "error": "error",
}


def _bom_section(bom: dict[str, Any] | None) -> str:
    if not bom:
        return '<h2>ML-BOM</h2><p id="bom">No BOM could be made (the model could not be hashed).'
    rows = "".join(
        f'<tr data-key="{escape(str(k))}"><td class="k">{escape(BOM_LABELS.get(k, str(k)))}</td>'
        f"<td>{_value(v)}</td></tr>"
        for k, v in bom.items()
    )
    return f'<h2>ML-BOM (CycloneDX)</h2><table id="bom">{rows}</table>'


def _evidence_section(evidence: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(f['kind']))}</td><td><code>{escape(str(f['path']))}</code></td>"
        f"<td>{escape(str(f.get('predicate_type') or ''))}</td>"
        f"<td>{'signed' if f.get('signed') else ''}</td></tr>"
        for f in evidence.get("files", [])
    )
    problems = "".join(f"<li>{escape(str(p))}</li>" for p in evidence.get("problems", []))
    return (
        "<h2>Evidence found</h2>"
        + (
            '<table id="evidence"><tr><th>kind</th><th>file</th><th>predicate</th><th></th></tr>'
            f"{rows}</table>"
            if rows
            else '<p id="evidence">No evidence files were found beside the model.</p>'
        )
        + (f'<ul class="details">{problems}</ul>' if problems else "")
    )


def _lineage_chain(report: AuditReport) -> str:
    """The fine-tune chain, root first: each base model (its path, digest, signature and
    provenance), the lineage check of the weights above it, and finally this model."""
    try:
        provenance = report.link("provenance")
    except KeyError:
        return ""
    chain = provenance.evidence.get("chain")
    if not isinstance(chain, dict) or not isinstance(chain.get("levels"), list):
        return ""
    levels = [lv for lv in chain["levels"] if isinstance(lv, dict)]
    parts = []
    for level in reversed(levels):
        parts.append(_chain_level(level))
    verdict = str(chain.get("verdict", "unknown"))
    head = (
        f"{len(levels)} level(s), to a pretrained root"
        if chain.get("reachesRoot")
        else f"{len(levels)} level(s), root not reached"
    )
    return (
        f'<div class="lineage-chain" id="lineage-chain" data-verdict="{escape(verdict)}">'
        f'<div class="q">Fine-tune chain: {escape(head)}</div>'
        + "".join(parts)
        + ' <span class="pill">this model</span></div>'
    )


def _chain_level(level: dict[str, Any]) -> str:
    """One base model of the chain, then the arrow of the lineage check to the model above."""
    verdict = str(level.get("verdict", "unknown"))
    number = level.get("level")
    name = "root (pretrained)" if level.get("root") else "base model"
    lineage = level.get("lineage") if isinstance(level.get("lineage"), dict) else {}
    assert isinstance(lineage, dict)
    checked = bool(lineage.get("checked"))
    lin_verdict = str(lineage.get("verdict", "not checked"))
    ok = checked and lin_verdict == "derived"
    fg, bg = COLOURS[Verdict.PASS if ok else Verdict.FAIL if checked else Verdict.UNKNOWN]
    score = lineage.get("score")
    what = (
        f"lineage: {escape(lin_verdict)} (score {float(score):.3f})"
        if checked and isinstance(score, int | float)
        else escape(_short(str(lineage.get("reason", "lineage not checked")), 60))
    )
    signature = level.get("signature") if isinstance(level.get("signature"), dict) else {}
    assert isinstance(signature, dict)
    signed = (
        f"signed by {escape(str(signature.get('keyId', ''))[:16])}"
        if signature.get("verified")
        else "signature not checked"
    )
    prov = level.get("provenance") if isinstance(level.get("provenance"), dict) else {}
    assert isinstance(prov, dict)
    signed += "; provenance verified" if prov.get("keyId") else ""
    problem = ""
    if verdict != "pass":
        lfg = COLOURS[Verdict.FAIL if verdict == "fail" else Verdict.UNKNOWN][0]
        problem = (
            f' <span class="chain-problem" style="color:{lfg}">'
            f"{escape(_short(str(level.get('reason', '')), 160))}</span>"
        )
    digest = str(level.get("declaredDigest") or "")
    path = escape(_short(str(level.get("path") or "declared base model"), 48))
    return (
        f'<span class="chain-level" data-level="{escape(str(number))}"'
        f' data-verdict="{escape(verdict)}"><span class="pill">{name}, level '
        f"{escape(str(number))}</span> <code>{path}</code> <code>sha256:{escape(digest[:16])}…"
        f"</code> <small>{signed}</small>{problem}</span>"
        f' <span style="color:{fg};font-weight:700">→</span> '
        f'<span class="pill" style="background:{bg};color:{fg}">{what}</span>'
        ' <span style="color:#8c959f">→</span>'
    )
