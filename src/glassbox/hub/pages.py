"""Server-rendered pages: plain HTML with every value escaped, no JavaScript, no external
requests (styles inline, no fonts, images or scripts from anywhere).

Verdicts use the audit report's colours and words (PASS green, FAIL red, UNKNOWN orange), and
failing or missing evidence is shown, never hidden: a release's page lists each audit link with
its summary and details.
"""

from __future__ import annotations

import datetime
import itertools
from html import escape
from typing import Any
from urllib.parse import quote

from glassbox.audit.report_html import COLOURS
from glassbox.audit.verdict import Verdict
from glassbox.hub.db import ReleaseRow, RescanRow
from glassbox.hub.lmevidence import Checked, LineageView, ProbeView, lm_evidence, probe_drift
from glassbox.hub.service import Hub

CSS = """
:root { --ink:#1f2328; --muted:#59636e; --line:#d0d7de; --panel:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--ink); margin: 0; }
header { background: #24292f; color: #fff; padding: 10px 24px; display: flex; gap: 24px;
  align-items: center; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header form { margin-left: auto; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px; }
h1 { font-size: 24px; margin: 12px 0; } h2 { font-size: 19px; margin-top: 28px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left;
  vertical-align: top; }
th { background: var(--panel); }
code { font: 13px ui-monospace, monospace; word-break: break-all; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 700;
  font-size: 13px; border: 1px solid; }
.muted { color: var(--muted); }
.release { border: 1px solid var(--line); border-radius: 8px; padding: 8px 16px; margin: 16px 0; }
ul.details { margin: 4px 0 0 0; padding-left: 18px; color: var(--muted); font-size: 13px; }
.lineage, .probes { border-left: 3px solid var(--line); padding-left: 12px; margin: 8px 0; }
p.sig { font-size: 13px; color: var(--muted); margin: 2px 0; }
.unfinished { border: 2px solid #9a6700; background: #fff8c5; padding: 8px 16px;
  border-radius: 8px; margin: 8px 0; }
.rescan { border-left: 3px solid var(--line); padding-left: 12px; margin: 8px 0; }
.fork { border: 2px solid #b3261e; background: #fce8e6; padding: 8px 16px; border-radius: 8px; }
"""

LABEL = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN"}


def _verdict(value: str) -> Verdict:
    try:
        return Verdict(value)
    except ValueError:
        return Verdict.UNKNOWN


def badge(value: str) -> str:
    """A verdict as a coloured label; its class names the verdict for tests and styles."""
    v = _verdict(value)
    ink, bg = COLOURS[v]
    return (
        f'<span class="verdict verdict-{v.value}" style="color:{ink};background:{bg};'
        f'border-color:{ink}">{LABEL[v.value]}</span>'
    )


def page(title: str, body: str, query: str = "") -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Glassbox Hub</title><style>{CSS}</style></head><body>"
        '<header><a href="/">Glassbox Hub</a><a href="/log">Log</a>'
        '<form action="/search" method="get"><input name="q" placeholder="search models"'
        f' value="{escape(query)}"> <button>Search</button></form></header>'
        f"<main>{body}</main></body></html>"
    )


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _model_link(name: str) -> str:
    return f'<a href="/models/{quote(name)}">{escape(name)}</a>'


def _key_link(key_id: str) -> str:
    return f'<a href="/publishers/{quote(key_id)}"><code>{escape(key_id[:16])}</code></a>'


def _release_rows(releases: list[ReleaseRow]) -> str:
    if not releases:
        return '<p class="muted">No releases.</p>'
    rows = "".join(
        f"<tr><td>{_model_link(r.name)}</td><td>{escape(r.version)}</td>"
        f"<td>{badge(r.verdict)}</td><td>{_key_link(r.key_id)}</td>"
        f"<td>{r.log_index}</td><td>{_when(r.created)}</td></tr>"
        for r in releases
    )
    return (
        "<table><tr><th>model</th><th>version</th><th>verdict</th><th>publisher key</th>"
        f"<th>log entry</th><th>published</th></tr>{rows}</table>"
    )


def home(hub: Hub) -> str:
    recent = hub.db.all_releases(50)
    body = (
        "<h1>Glassbox Hub</h1><p>Every release here carries its evidence: an OMS signature by "
        "its namespace's key, an entry in this hub's transparency log, the hub's own scan and "
        "an audit of every link.</p><h2>Recent releases</h2>" + _release_rows(recent)
    )
    return page("Home", body)


def _links_table(audit: dict[str, Any]) -> str:
    rows = []
    for link in audit.get("links", []):
        details = "".join(f"<li>{escape(str(d))}</li>" for d in link.get("details", [])[:20])
        findings = "".join(
            f"<li>{escape(str(f.get('rule_id', f)))}: {escape(str(f.get('message', '')))}</li>"
            if isinstance(f, dict)
            else f"<li>{escape(str(f))}</li>"
            for f in link.get("findings", [])[:20]
        )
        extra = f'<ul class="details">{details}{findings}</ul>' if details or findings else ""
        rows.append(
            f'<tr class="link link-{escape(str(link.get("link")))}">'
            f"<td>{escape(str(link.get('title', link.get('link'))))}</td>"
            f"<td>{badge(str(link.get('verdict')))}</td>"
            f"<td>{escape(str(link.get('summary', '')))}{extra}</td></tr>"
        )
    if "error" in audit:
        rows.append(
            f"<tr><td>audit</td><td>{badge('unknown')}</td><td>{escape(audit['error'])}</td></tr>"
        )
    return (
        "<table><tr><th>link</th><th>verdict</th><th>evidence</th></tr>"
        + "".join(rows)
        + ("</table>")
    )


def _openness(audit: dict[str, Any]) -> str:
    for link in audit.get("links", []):
        if link.get("link") == "openness":
            ev = link.get("evidence") or {}
            grade = ev.get("mof_class") or ev.get("class") or ev.get("grade")
            text = f"{grade}" if grade else str(link.get("summary", ""))
            return f"<p><b>Openness:</b> {badge(str(link.get('verdict')))} {escape(str(text))}</p>"
    return ""


LINEAGE_BADGE = {"derived": "pass", "not derived": "fail", "inconclusive": "unknown"}
CHANGE_WORDS = {
    "newly-refused": "newly refused",
    "no-longer-refused": "no longer refused",
    "newly-mentioned": "newly mentioned",
    "no-longer-mentioned": "no longer mentioned",
    "changed-answer": "changed answer",
    "check-changed": "check changed",
    "logprob-shift": "log-probability shift",
}


def _signature_line(view: Checked) -> str:
    status = badge("pass" if view.ok else "fail")
    entry = "" if view.log_index is None else f" · log entry {view.log_index}"
    about = f'<br><span class="about">{escape(view.about)}</span>' if view.about else ""
    return f'<p class="sig">{status} {escape(view.signature)}{entry}{about}</p>'


def _lineage_html(views: list[LineageView]) -> str:
    if not views:
        return ""
    parts = ["<h3>Lineage</h3>"]
    for v in views:
        if v.base_release is not None:
            name, version = v.base_release
            base = (
                f'<a class="base" href="/models/{quote(name)}#v-{quote(version)}">'
                f"{escape(name)}@{escape(version)}</a>"
            )
        else:
            base = f'<span class="base">{escape(v.base_name or "unnamed")}</span> (not on this hub)'
        score = "-" if v.score is None else f"{v.score:.4f}"
        verdict = escape(v.verdict) if v.ok else "not shown: the attestation did not verify"
        parts.append(
            f'<div class="lineage" id="lineage-{v.seq}">'
            f"<p>{badge(LINEAGE_BADGE.get(v.verdict, 'unknown') if v.ok else 'fail')} "
            f'<b class="lineage-verdict">{verdict}</b> from {base} '
            f"<code>sha256:{escape(v.base_digest[:16])}…</code> · score "
            f'<span class="score">{score}</span></p>' + _signature_line(v) + "</div>"
        )
    return "".join(parts)


def _probe_html(views: list[ProbeView], drift: dict[int, tuple[str, dict[str, Any]]]) -> str:
    if not views:
        return ""
    parts = ["<h3>Behaviour probes</h3>"]
    for v in views:
        failed = ", ".join(escape(i) for i in v.failed) or "none"
        counts = (
            f'<span class="passed">{len(v.passed)}</span> passed, '
            f'<span class="failed">{len(v.failed)}</span> failed'
            + (f", {len(v.measured)} measured (log-probabilities)" if v.measured else "")
        )
        body = (
            f"<p>{badge(('fail' if v.failed else 'pass') if v.ok else 'fail')} Suite "
            f"<b>{escape(v.suite_name)}</b> <code>sha256:{escape(v.suite_digest)}</code><br>"
            f'{counts}. Checks that did not hold: <span class="failed-probes">{failed}</span>'
            "</p>"
            if v.ok
            else ""
        )
        parts.append(f'<div class="probes" id="probes-{v.seq}">{body}{_signature_line(v)}')
        if v.seq in drift:
            parts.append(_drift_html(*drift[v.seq]))
        parts.append("</div>")
    return "".join(parts)


def _drift_html(since: str, report: dict[str, Any]) -> str:
    if "error" in report:
        why = escape(report["error"])
        return f'<p class="drift">Drift since {escape(since)} not computed: {why}</p>'
    summary = report.get("summary", {})
    if not summary:
        return f'<p class="drift">No behaviour drift since {escape(since)} on this suite.</p>'
    lines = "".join(
        f'<li class="drift-{escape(kind)}"><b>{escape(CHANGE_WORDS.get(kind, kind))}:</b> '
        f"{escape(', '.join(names))}</li>"
        for kind, names in summary.items()
    )
    details = "".join(
        f"<li>{escape(str(c.get('probe')))}: {escape(str(c.get('detail')))}"
        + (f" (p = {c['pValue']})" if "pValue" in c else "")
        + "</li>"
        for c in report.get("changes", [])[:40]
    )
    return (
        f'<div class="drift"><p>Behaviour drift since {escape(since)} (same suite, '
        f'the lm part\'s probe diff):</p><ul>{lines}</ul><ul class="details">{details}</ul></div>'
    )


def _lm_views(
    hub: Hub, releases: list[ReleaseRow]
) -> dict[str, tuple[list[LineageView], list[ProbeView], dict[int, tuple[str, dict[str, Any]]]]]:
    """Each release's lineage and probe attestations (verified now) and, for each probe
    attestation, its drift from the previous version's attestation of the same suite."""
    out: dict[str, Any] = {}
    previous: list[ProbeView] = []
    previous_version = ""
    for release in sorted(releases, key=lambda r: r.created):
        lineage, probes = lm_evidence(hub.db, release)
        drift: dict[int, tuple[str, dict[str, Any]]] = {}
        for view in probes:
            for old in previous:
                report = probe_drift(old, view)
                if report is not None:
                    drift[view.seq] = (previous_version, report)
                    break
        out[release.id] = (lineage, probes, drift)
        previous, previous_version = probes, release.version
    return out


def _release_block(
    hub: Hub,
    release: ReleaseRow,
    lm: tuple[list[LineageView], list[ProbeView], dict[int, tuple[str, dict[str, Any]]]]
    | None = None,
) -> str:
    files = hub.db.files(release.id)
    evidence = hub.db.evidence(release.id)
    rescan = hub.db.latest_scan(release.id)
    parts = [
        f'<section class="release" id="v-{escape(release.version)}">'
        f"<h2>{escape(release.version)} {badge(release.verdict)}</h2>"
        f"<p>Root digest <code>{escape(release.root_digest)}</code><br>"
        f"Signed by {_key_link(release.key_id)} · log entry {release.log_index} · "
        f"{_when(release.created)} · "
        + ("files hosted here" if release.hosted else "manifest only (files hosted elsewhere)")
        + "</p>"
    ]
    if release.audit:
        parts.append(_openness(release.audit))
        parts.append("<h3>Audit chain</h3>" + _links_table(release.audit))
    else:
        parts.append(
            f"<p>{badge('unknown')} Not audited: the hub has no copy of the files, so their "
            "integrity and safety are unknown here.</p>"
        )
    if evidence:
        rows = "".join(
            f"<tr><td>{escape(e.kind)}</td><td>{badge(e.status)}</td>"
            f"<td><code>{escape(e.predicate_type or '-')}</code></td>"
            f"<td>{'-' if e.log_index is None else e.log_index}</td>"
            f"<td>{escape(e.detail)}</td></tr>"
            for e in evidence
        )
        parts.append(
            "<h3>Evidence</h3><table><tr><th>kind</th><th>verdict</th><th>predicate</th>"
            f"<th>log entry</th><th>detail</th></tr>{rows}</table>"
        )
    if lm is not None:
        parts.append(_lineage_html(lm[0]) + _probe_html(lm[1], lm[2]))
    if rescan is not None:
        parts.append(_rescan_html(hub, release, rescan))
    rows = "".join(
        f"<tr><td><code>{escape(f.path)}</code></td><td>{f.size}</td>"
        f"<td><code>{escape(f.sha256)}</code></td></tr>"
        for f in files
    )
    parts.append(
        f"<details><summary>{len(files)} file(s)</summary><table><tr><th>path</th><th>bytes</th>"
        f"<th>sha256</th></tr>{rows}</table></details></section>"
    )
    return "".join(parts)


def _rescan_html(hub: Hub, release: ReleaseRow, row: RescanRow) -> str:
    """The latest re-scan: when, which scanner, its verdict at its threshold, whether that
    changed the verdict before it, and its attestation, whose signature (by the hub's key)
    and log entry are checked now, as the page renders."""
    report = row.report
    findings = report.get("findings", [])
    scanner = (report.get("scanner") or {}).get("version", "?")
    worst = report.get("max_severity") or "none"
    head = (
        f'<p>{badge(row.verdict)} <b>Latest scan</b> <span class="scanned">{_when(row.scanned)}'
        f'</span> · scanner glassbox <span class="scanner">{escape(str(scanner))}</span> · '
        f"fails on {escape(row.fail_on)} · {len(findings)} finding(s), worst {escape(str(worst))}"
        "</p>"
    )
    before = "an earlier re-scan" if row.previous_rescan else "the scan at publish"
    change = ""
    if row.changed:
        change = (
            f'<p class="{escape(row.changed.replace(" ", "-"))}">'
            f"{badge(row.verdict)} <b>{escape(row.changed.capitalize())}</b>: {before} "
            f"({_when(row.previous_at)}) {'passed' if row.previous == 'pass' else 'failed'}.</p>"
        )
    items = "".join(f"<li>{escape(str(b))}</li>" for b in report.get("blocking", [])[:20])
    blocking = f'<ul class="details blocking">{items}</ul>' if items else ""
    return (
        f'<div class="rescan" id="rescan-{escape(release.version)}">{head}{change}{blocking}'
        f"{_rescan_signature(hub, row)}</div>"
    )


def _rescan_signature(hub: Hub, row: RescanRow) -> str:
    if row.attestation is None or row.log_index is None:
        return f'<p class="sig">{badge("unknown")} not attested (no signed statement)</p>'
    from glassbox.errors import InputError, VerificationError
    from glassbox.tlog import make_submission, parse_entry

    where = f" · log entry {row.log_index}"
    try:
        entry = parse_entry(make_submission(row.attestation, hub.attester_pem), where="re-scan")
        if hub.log.get(row.log_index).leaf != entry.leaf:
            raise VerificationError(f"log entry {row.log_index} holds another statement")
    except (InputError, VerificationError) as exc:
        return f'<p class="sig">{badge("fail")} attestation did not verify: {escape(str(exc))}</p>'
    return (
        f'<p class="sig">{badge("pass")} signed by the hub\'s key '
        f"{_key_link(hub.attester_id)}, signature verified now{where}</p>"
    )


def _changes(releases: list[ReleaseRow], lm: dict[str, Any] | None = None) -> str:
    """Between consecutive versions: which audit links changed verdict, and the behaviour
    drift the probe attestations show."""
    out = []
    ordered = sorted(releases, key=lambda r: r.created)
    for old, new in itertools.pairwise(ordered):
        for _since, report in (lm or {}).get(new.id, ([], [], {}))[2].values():
            summary = report.get("summary", {})
            if summary:
                said = "; ".join(
                    f"{escape(CHANGE_WORDS.get(k, k))}: {escape(', '.join(v))}"
                    for k, v in summary.items()
                )
                out.append(
                    f'<li class="behaviour">{escape(old.version)} → {escape(new.version)}: '
                    f"behaviour: {said}</li>"
                )
        a = {lk.get("link"): lk.get("verdict") for lk in (old.audit or {}).get("links", [])}
        b = {lk.get("link"): lk.get("verdict") for lk in (new.audit or {}).get("links", [])}
        changed = [
            f"{escape(str(k))}: {badge(str(a.get(k)))} → {badge(str(b.get(k)))}"
            for k in b
            if a.get(k) != b.get(k)
        ]
        if changed:
            out.append(
                f"<li>{escape(old.version)} → {escape(new.version)}: {'; '.join(changed)}</li>"
            )
    return f"<h2>Changes between versions</h2><ul>{''.join(out)}</ul>" if out else ""


def model_page(hub: Hub, name: str) -> str:
    releases = hub.db.releases_of(name)
    if not releases:
        raise LookupError(f"{name} is not on this hub")
    versions = " ".join(
        f'<a href="#v-{escape(r.version)}">{escape(r.version)}</a> {badge(r.verdict)}'
        + _flagged(hub, r)
        for r in releases
    )
    lm = _lm_views(hub, releases)
    body = (
        f"<h1>{escape(name)}</h1><p>Namespace <b>{escape(releases[0].org)}</b>. "
        f"Versions: {versions}</p>"
        + _changes(releases, lm)
        + "".join(_release_block(hub, r, lm[r.id]) for r in releases)
    )
    return page(name, body)


def _flagged(hub: Hub, release: ReleaseRow) -> str:
    latest = hub.db.latest_scan(release.id)
    if latest is None or latest.verdict != "fail":
        return ""
    return f' <span class="flagged">{badge("fail")} flagged by the latest scan</span>'


def publisher_page(hub: Hub, key_id: str) -> str:
    """Every release by a key, as the hub's log shows them (the monitor's view): entries the
    log holds for this key that are not releases on this hub stand out, so a stolen key that
    signed something elsewhere shows up here."""
    key = hub.db.key(key_id)
    releases = hub.db.releases_by_key(key_id)
    logged = hub.log.search("key", key_id, 1000)
    known = {r.log_index for r in releases}
    known |= {
        e.log_index for r in releases for e in hub.db.evidence(r.id) if e.log_index is not None
    }
    own = bool(hub.attester_id) and key_id == hub.attester_id
    if own:  # the hub's attestation key signs the hub's scans, which are not releases
        from glassbox.hub.hubscan import HUB_SCAN_KIND

        known |= hub.db.evidence_indexes(HUB_SCAN_KIND) | hub.db.rescan_indexes()
    foreign, unfinished = _unfinished(hub, [i for i in logged if i not in known])
    if own:
        about = (
            "<p>This is the hub's own attestation key: it signs the hub's scan of each "
            f"release.<br>Key id <code>{escape(key_id)}</code></p>"
        )
    elif key:
        about = (
            f"<p>Namespace <b>{escape(key.org)}</b> {escape(key.label)}<br>Key id "
            f"<code>{escape(key_id)}</code></p>"
        )
    else:
        about = "<p>This key is not registered on this hub.</p>"
    head = f"<h1>Publisher key <code>{escape(key_id[:16])}</code></h1>" + about
    body = head + "<h2>Releases</h2>" + _release_rows(releases)
    body += f"<h2>Log entries signed by this key</h2><p>{len(logged)} entr(y/ies) in the log.</p>"
    if unfinished:
        items = "".join(f'<li class="unfinished-entry">{line}</li>' for line in unfinished)
        body += (
            f'<div class="unfinished">{badge("unknown")} Logged by this hub for a publish that '
            f"did not commit (no release holds them): <ul>{items}</ul>If you did not try to "
            "publish these, check the key.</div>"
        )
    if foreign:
        items = "".join(f"<li>entry {i}</li>" for i in foreign)
        body += (
            f'<div class="fork">{badge("fail")} Signed by this key but not a release on this '
            f"hub: <ul>{items}</ul>Check the key has not been stolen.</div>"
        )
    return page("Publisher", body)


def _unfinished(hub: Hub, indexes: list[int]) -> tuple[list[int], list[str]]:
    """Split log entries that are no release's into those the hub itself wrote for a publish
    that did not commit (it recorded each under the publish's claim before appending it:
    ``HubDB.note_claim_entries``), described one line each, and the rest: entries nobody
    logged through this hub, which is what a stolen key looks like."""
    foreign: list[int] = []
    lines: list[str] = []
    for index in indexes:
        leaf = hub.log.get(index).leaf_hash.hex()
        if hub.db.is_rescan_entry(leaf):
            continue  # a re-scan attestation recorded before it was appended
        found = hub.db.claim_entry(leaf)
        if found is None:
            foreign.append(index)
            continue
        release = f"<code>{escape(found.name)}@{escape(found.version)}</code>"
        held = hub.db.claim_of(found.name, found.version)
        if found.interrupted is None and held is not None and held[0] == found.owner:
            lines.append(
                f"entry {index}: {release}, logged by this hub for a publish in progress "
                f"(since {_when(found.logged)})"
            )
            continue
        stopped = found.interrupted if found.interrupted is not None else found.logged
        lines.append(
            f"entry {index}: {release}, logged by this hub for a publish that did not "
            f"complete (interrupted at {_when(stopped)})"
        )
    return foreign, lines


def log_page(hub: Hub) -> str:
    from glassbox.hub.federation import mirrors

    latest = hub.log.latest_checkpoint()
    body = f"<h1>Transparency log</h1><p>Origin <code>{escape(hub.log.origin)}</code><br>"
    body += f"Key <code>{escape(hub.log.vkey)}</code><br>Size {hub.log.size()}"
    if hub.attester_id:
        body += f"<br>The hub's scans are signed by {_key_link(hub.attester_id)}"
    body += "</p>"
    if latest is not None:
        sigs = latest.note.signatures
        rows = "".join(
            f"<tr><td>{escape(s.name)}</td><td><code>{s.key_id:08x}</code></td>"
            f"<td>{'log' if s.name == hub.log.origin else 'witness cosignature'}</td></tr>"
            for s in sigs
        )
        body += (
            f"<h2>Latest checkpoint</h2><pre>{escape(latest.serialize())}</pre>"
            "<h3>Signatures</h3><table><tr><th>signer</th><th>key id</th><th>role</th></tr>"
            f"{rows}</table>"
        )
        witnesses = [s for s in sigs if s.name != hub.log.origin]
        if not witnesses:
            body += f"<p>{badge('unknown')} No witness has cosigned the latest checkpoint.</p>"
    else:
        body += f"<p>{badge('unknown')} No checkpoint yet.</p>"
    last = _last_cosigned(hub)
    if last:
        rows = "".join(
            f"<tr><td>{escape(name)}</td><td>{size}</td>"
            f"<td>{badge('pass' if latest and size == latest.checkpoint.size else 'unknown')}"
            "</td></tr>"
            for name, size in sorted(last.items())
        )
        body += (
            "<h2>Witnesses</h2><table><tr><th>witness</th><th>last cosigned tree size</th>"
            f"<th>cosigned the latest</th></tr>{rows}</table>"
        )
    history = hub.log.store.checkpoints()[-20:]
    rows = "".join(f"<tr><td>{size}</td></tr>" for size, _note in reversed(history))
    body += f"<h2>Checkpoints</h2><table><tr><th>tree size</th></tr>{rows}</table>"
    mirrored = mirrors(hub.db)
    if mirrored:
        rows = "".join(
            f"<tr><td>{escape(m['origin'])}</td><td>{m['size']}</td>"
            f"<td>{escape(m['source'])}</td><td>{_when(m['updated'])}</td>"
            f"<td>{escape(', '.join(_cosigners(hub, m['origin'])) or 'none')}</td></tr>"
            for m in mirrored
        )
        body += (
            "<h2>Mirrored logs</h2><table><tr><th>origin</th><th>size</th><th>source</th>"
            f"<th>checked</th><th>cosigned by</th></tr>{rows}</table>"
        )
    for origin, seen, _a, _b, detail in hub.db.forks():
        body += (
            f'<div class="fork">{badge("fail")} Split view of <code>{escape(origin)}</code> '
            f"caught {_when(seen)}: {escape(detail)}</div>"
        )
    return page("Log", body)


def _last_cosigned(hub: Hub, depth: int = 1000) -> dict[str, int]:
    """Each witness and the largest checkpoint of this hub's log it cosigned (of the last
    ``depth`` checkpoints), so a witness that stopped cosigning shows."""
    from glassbox.tlog.note import parse_note

    last: dict[str, int] = {}
    for size, text in reversed(hub.log.store.checkpoints()[-depth:]):
        for sig in parse_note(text).signatures:
            if sig.name != hub.log.origin:
                last.setdefault(sig.name, size)
    return last


def _cosigners(hub: Hub, origin: str) -> list[str]:
    from glassbox.hub.federation import mirrored_checkpoint
    from glassbox.tlog.note import parse_note

    note = parse_note(mirrored_checkpoint(hub.db, origin))
    return [s.name for s in note.signatures if s.name != origin]


def search_page(hub: Hub, query: str) -> str:
    query = query.strip()
    found = hub.db.search(query) if query else []
    body = f"<h1>Search</h1><p>{len(found)} release(s) for <b>{escape(query)}</b></p>"
    return page("Search", body + _release_rows(found), query)
