"""A release's language-model evidence, read for the pages: lineage and probe attestations.

Nothing here judges a model. Signatures and predicates are checked by the lm part's own
verifiers (``verify_lineage_bundle``, ``verify_probe_bundle``) with the publisher's key as the
hub's database holds it, *at render time*, so a row edited in the database after the publish
shows as a failed signature rather than as evidence. Behaviour drift between two versions is
the lm part's ``diff_runs`` on the two verified predicates, and only when both ran the same
suite (the same suite digest).

A probe's "pass" here means its check held on the model's answer (``matched``: the refusal
marker was there, the regex matched, a topic term was named); a sampled probe passes when most
samples matched. Log-probability probes measure rather than check, so they are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glassbox.errors import GlassboxError
from glassbox.hub.db import EvidenceRow, HubDB, ReleaseRow
from glassbox.lm import LINEAGE_PREDICATE_TYPE as LINEAGE_PREDICATE
from glassbox.lm import PROBE_PREDICATE_TYPE as PROBE_PREDICATE

LM_PREDICATES = (LINEAGE_PREDICATE, PROBE_PREDICATE)


@dataclass
class Checked:
    """One attestation after its signature was checked: ``ok`` only when the signature holds
    with the publisher's key *and* the attestation is about this release's root digest."""

    seq: int
    log_index: int | None
    ok: bool
    signature: str  # how the signature was checked, or why it failed, in one line
    about: str  # "" when the attestation names this release, else why not
    predicate: dict[str, Any] = field(default_factory=dict)


@dataclass
class LineageView(Checked):
    verdict: str = "inconclusive"
    score: float | None = None
    base_name: str = ""
    base_digest: str = ""
    base_release: tuple[str, str] | None = None  # (name, version) when the base is hosted here


@dataclass
class ProbeView(Checked):
    suite_name: str = ""
    suite_digest: str = ""
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)


def _root_hex(release: ReleaseRow) -> str:
    return release.root_digest.split(":", 1)[-1].lower()


def check_lm_statement(
    predicate_type: str | None, document: bytes | str, pem: str, *, where: str
) -> dict[str, Any]:
    """The verified predicate of a lineage or probe attestation (the lm part's verifiers);
    ``InputError`` for a malformed one, ``VerificationError`` for a bad signature."""
    from glassbox.lm import verify_lineage_bundle, verify_probe_bundle
    from glassbox.sign import parse_bundle
    from glassbox.sign.keys import parse_public_key

    raw = document.encode() if isinstance(document, str) else document
    bundle = parse_bundle(raw, where=where)
    pub = parse_public_key(pem.encode(), where="publisher key")
    if predicate_type == LINEAGE_PREDICATE:
        return verify_lineage_bundle(bundle, pub, where=where)
    return verify_probe_bundle(bundle, pub, where=where)


def about_release(predicate_type: str | None, predicate: dict[str, Any], root_hex: str) -> str:
    """ "" when the attestation is about the model with this root digest, else why not."""
    if predicate_type == LINEAGE_PREDICATE:
        named = str(predicate.get("candidateRoot", {}).get("sha256", "")).lower()
    else:
        model = predicate.get("model")
        digest = model.get("digest") if isinstance(model, dict) else None
        named = str(digest.get("sha256", "") if isinstance(digest, dict) else "").lower()
    if named == root_hex:
        return ""
    return f"the attestation is about model sha256:{named[:16]}…, not this release"


def lm_evidence(db: HubDB, release: ReleaseRow) -> tuple[list[LineageView], list[ProbeView]]:
    """The release's lineage and probe attestations, each verified now."""
    key = db.key(release.key_id)
    lineage: list[LineageView] = []
    probes: list[ProbeView] = []
    for row in db.evidence(release.id):
        if row.predicate_type not in LM_PREDICATES:
            continue
        base = _checked(row, key.pem if key else None, key.key_id if key else "", release)
        if row.predicate_type == LINEAGE_PREDICATE:
            lineage.append(_lineage_view(db, base))
        else:
            probes.append(_probe_view(base))
    return lineage, probes


def _checked(row: EvidenceRow, pem: str | None, key_id: str, release: ReleaseRow) -> Checked:
    if pem is None:
        return Checked(row.seq, row.log_index, False, "the publisher key is no longer here", "")
    where = f"{'lineage' if row.predicate_type == LINEAGE_PREDICATE else 'probe'} attestation"
    try:
        predicate = check_lm_statement(row.predicate_type, row.document, pem, where=where)
    except GlassboxError as exc:
        return Checked(row.seq, row.log_index, False, f"does not verify: {exc}", "")
    about = about_release(row.predicate_type, predicate, _root_hex(release))
    how = f"signature verified at render time with publisher key {key_id[:16]}"
    return Checked(row.seq, row.log_index, not about, how, about, predicate)


def _lineage_view(db: HubDB, c: Checked) -> LineageView:
    p = c.predicate
    base = p.get("base") if isinstance(p.get("base"), dict) else {}
    assert isinstance(base, dict)
    digest = str(base.get("digest", {}).get("sha256", "")).lower() if base else ""
    hosted = db.release_by_root("sha256:" + digest) if digest else None
    score = p.get("score")
    return LineageView(
        **c.__dict__,
        verdict=str(p.get("verdict", "inconclusive")),
        score=float(score) if isinstance(score, (int, float)) else None,
        base_name=str(base.get("name", "")),
        base_digest=digest,
        base_release=(hosted.name, hosted.version) if hosted else None,
    )


def probe_passed(result: dict[str, Any]) -> bool | None:
    """Whether a probe's check held (``None`` for a measuring log-probability probe)."""
    if result.get("check") == "logprob":
        return None
    if result.get("mode") == "sample":
        return 2 * int(result.get("matches", 0)) > int(result.get("samples", 0) or 0)
    return bool(result.get("matched"))


def _probe_view(c: Checked) -> ProbeView:
    p = c.predicate
    suite = p.get("suite") if isinstance(p.get("suite"), dict) else {}
    assert isinstance(suite, dict)
    view = ProbeView(
        **c.__dict__,
        suite_name=str(suite.get("name", "")),
        suite_digest=str(suite.get("digest", {}).get("sha256", "")) if suite else "",
    )
    for result in p.get("results", []):
        passed = probe_passed(result)
        ident = str(result.get("id"))
        (view.measured if passed is None else view.passed if passed else view.failed).append(ident)
    return view


def probe_drift(old: ProbeView, new: ProbeView) -> dict[str, Any] | None:
    """The lm part's drift report from ``old`` to ``new``, when both verified and ran the same
    suite; ``None`` otherwise (different suites are never compared)."""
    from glassbox.lm import diff_runs

    if not (old.ok and new.ok) or not old.suite_digest or old.suite_digest != new.suite_digest:
        return None
    try:
        return diff_runs(old.predicate, new.predicate)
    except GlassboxError as exc:
        return {"error": str(exc), "changes": [], "summary": {}}
