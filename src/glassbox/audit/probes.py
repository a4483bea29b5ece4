"""Behaviour probe attestations (``https://glassbox.dev/probe/v1``) given as evidence: what a
signed probe run says about *these* files.

Each attestation found beside the model (``MODEL.probe.sigstore.json``, as ``glassbox probe
--key`` writes it) or named with ``--probe-attestation`` is reported with: whether a trusted
key verifies its signature (and which), whether the model digest it names is this model's OMS
root digest, the suite it ran (name, SHA-256, probe count), the decoding and how many probe
checks matched. Probe results describe behaviour, not a policy, so they do not change the
safety link's verdict; an attestation that does not verify or names other bytes is shown as
such, never silently dropped. Only a verified one that matches the model is marked ``used``.
"""

from __future__ import annotations

from typing import Any

from glassbox.audit.context import AuditContext
from glassbox.audit.evidence import EvidenceFile, as_bundle, statement_of
from glassbox.errors import GlassboxError


def probe_evidence(ctx: AuditContext) -> list[dict[str, Any]]:
    """One entry per probe attestation in the evidence (see the module docstring)."""
    return [_entry(ctx, item) for item in ctx.evidence.of("probe")]


def _entry(ctx: AuditContext, item: EvidenceFile) -> dict[str, Any]:
    from glassbox.lm.probe_attest import probe_predicate_of

    entry: dict[str, Any] = {"path": str(item.path), "signature": "not checked", "used": False}
    problems: list[str] = []
    statement = _verified_statement(ctx, item, entry, problems)
    shown = statement if statement is not None else statement_of(item)
    if shown is None:
        problems.append("no readable statement")
        entry["problems"] = problems
        return entry
    try:
        predicate = probe_predicate_of(shown, str(item.path))
    except GlassboxError as exc:
        problems.append(str(exc))
        entry["problems"] = problems
        return entry
    digest = _obj(_obj(predicate, "model"), "digest")
    named = digest.get("sha256") if isinstance(digest.get("sha256"), str) else None
    try:
        root: str | None = ctx.manifest().root_digest.hex()
    except GlassboxError:
        root = None
    entry["model_digest"] = f"sha256:{named}" if named else None
    entry["model_digest_matches"] = named is not None and named == root
    if named is not None and root is not None and named != root:
        problems.append(f"names other bytes (sha256:{named[:16]}...), not this model")
    suite = _obj(predicate, "suite")
    suite_digest = _obj(suite, "digest")
    entry["suite"] = {
        "name": suite.get("name") if isinstance(suite.get("name"), str) else None,
        "sha256": suite_digest.get("sha256")
        if isinstance(suite_digest.get("sha256"), str)
        else None,
        "probes": suite.get("probes") if isinstance(suite.get("probes"), int) else None,
    }
    decoding = predicate.get("decoding")
    entry["decoding"] = decoding if isinstance(decoding, dict) else None
    entry["counts"] = _counts(predicate["results"])
    unstable = predicate.get("nondeterministic")
    entry["nondeterministic"] = list(unstable) if isinstance(unstable, list) else []
    entry["used"] = entry["signature"] == "verified" and entry["model_digest_matches"]
    if problems:
        entry["problems"] = problems
    return entry


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is an object, else an empty one (the predicate is untrusted)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _verified_statement(
    ctx: AuditContext, item: EvidenceFile, entry: dict[str, Any], problems: list[str]
) -> dict[str, Any] | None:
    from glassbox.errors import VerificationError
    from glassbox.sign import verify_bundle

    if not item.signed:
        entry["signature"] = "unsigned"
        problems.append("not signed")
        return None
    keys = ctx.trusted_keys()
    if not keys:
        entry["signature"] = "not checked"
        problems.append("no trusted key given (--key) to check its signature")
        return None
    for key in keys:
        try:
            statement = verify_bundle(as_bundle(item), key.key, where=str(item.path))
        except VerificationError:
            continue
        except GlassboxError as exc:
            entry["signature"] = "invalid"
            problems.append(str(exc))
            return None
        entry["signature"] = "verified"
        entry["key_id"] = key.key_id
        return statement
    entry["signature"] = "failed"
    problems.append("no trusted key verifies its signature")
    return None


def _counts(results: list[dict[str, Any]]) -> dict[str, int]:
    """Probes whose check matched, did not match, and scored only (log-probability probes)."""
    matched = not_matched = scored = 0
    for r in results:
        if "matched" in r:
            matched += bool(r["matched"])
            not_matched += not r["matched"]
        elif isinstance(r.get("matches"), int) and isinstance(r.get("samples"), int):
            matched += r["matches"] > 0
            not_matched += r["matches"] == 0
        else:
            scored += 1
    return {"total": len(results), "matched": matched, "not_matched": not_matched, "scored": scored}


def describe(entry: dict[str, Any]) -> str:
    """One line for the terminal and the link's details."""
    name = entry.get("path", "?")
    if "counts" not in entry:
        return f"probe attestation {name}: not read ({'; '.join(entry.get('problems', []))})"
    suite = entry["suite"]
    counts = entry["counts"]
    sig = entry["signature"] + (f" (key {entry['key_id'][:16]})" if entry.get("key_id") else "")
    match = "matches this model" if entry["model_digest_matches"] else "does NOT match this model"
    sha = suite.get("sha256") or "?"
    return (
        f"probe attestation {name}: signature {sig}; model digest {match}; suite "
        f"{suite.get('name')!r} sha256:{sha[:16]}...: {counts['matched']} matched, "
        f"{counts['not_matched']} not matched, {counts['scored']} scored of {counts['total']}"
        + (
            f"; nondeterministic: {', '.join(entry['nondeterministic'])}"
            if entry["nondeterministic"]
            else ""
        )
    )
