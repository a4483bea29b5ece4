"""Provenance: a trusted builder's signed SLSA v1 provenance names these files as its output.

Checks, in order: the statement is signed by a trusted key (unsigned provenance proves nothing,
so it is unknown); its subjects are this model's files (or its OMS root digest); every input it
declares carries a digest; the build was hermetic. With ``--rebuild`` the model is rebuilt from
the provenance and compared bit for bit; with ``--spot-check K``, K random segments of the
training trail are replayed. Each of those is a call into ``glassbox.pipeline``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glassbox.audit.context import AuditContext
from glassbox.audit.evidence import as_bundle, statement_of, subject_sha256
from glassbox.audit.verdict import LinkResult, Verdict
from glassbox.bom.provenance import byproduct
from glassbox.errors import GlassboxError, VerificationError

LINK = "provenance"


def check(ctx: AuditContext) -> LinkResult:
    from glassbox.sign import verify_bundle

    found = ctx.evidence.of("provenance")
    if not found:
        return LinkResult.unknown(
            LINK, "no build provenance found beside the model or given with --provenance"
        )
    item = sorted(found, key=lambda f: not f.signed)[0]  # a signed statement, if there is one
    if not item.signed or not isinstance(item.document, dict):
        statement = statement_of(item)
        if statement is not None:
            ctx.provenance_statement = statement  # readable for the BOM, but not trusted
        return LinkResult.unknown(
            LINK, "provenance is not signed, so it cannot be trusted", provenance=str(item.path)
        )
    keys = ctx.trusted_keys()
    if not keys:
        return LinkResult.unknown(
            LINK,
            "provenance is signed, but no trusted key was given (--key)",
            provenance=str(item.path),
        )
    verified: dict[str, Any] | None = None
    key_id = ""
    key_path = keys[0].path
    for key in keys:
        try:
            verified = verify_bundle(as_bundle(item), key.key, where=str(item.path))
            key_id, key_path = key.key_id, key.path
            break
        except VerificationError:
            continue
        except GlassboxError as exc:
            return LinkResult.fail(
                LINK, f"provenance is malformed: {exc}", provenance=str(item.path)
            )
    if verified is None:
        return LinkResult.fail(
            LINK,
            "provenance signature does not verify with any trusted key",
            provenance=str(item.path),
            trusted_key_ids=[k.key_id for k in keys],
        )
    ctx.provenance_statement = verified
    evidence: dict[str, Any] = {
        "provenance": str(item.path),
        "key_id": key_id,
        "predicate_type": verified.get("predicateType"),
        "build_type": _build_def(verified).get("buildType"),
    }
    problems: list[str] = []
    details: list[str] = []
    subject_problems, matched, uncovered = _check_subjects(ctx, verified)
    evidence["subjects_matched"] = matched
    problems.extend(subject_problems)
    inputs = _dependencies(verified)
    undigested = [d.get("name") or d.get("uri") or "?" for d in inputs if not _has_digest(d)]
    evidence["inputs"] = [
        {"name": d.get("name") or d.get("uri"), "digest": d.get("digest")} for d in inputs
    ]
    if undigested:
        problems.append(f"inputs declared without a digest: {', '.join(map(str, undigested))}")
    hermetic, hermetic_detail = _hermeticity(verified)
    evidence["hermetic"] = hermetic
    if hermetic is False:
        problems.append(f"the build was not hermetic: {hermetic_detail}")
    elif hermetic is None:
        details.append("the provenance does not record whether the build was hermetic")
    if problems:
        result = LinkResult(LINK, Verdict.FAIL, problems[0], evidence, problems[1:] + details)
        return result
    summary = f"signed by {key_id[:16]}; {matched} output(s) match; {len(inputs)} inputs pinned"
    if hermetic:
        summary += "; hermetic"
    result = LinkResult(LINK, Verdict.PASS, summary, evidence, details)
    if uncovered:
        result.details.append(
            "files not among the build's outputs (added after the build): " + ", ".join(uncovered)
        )
    _lineage(ctx, item.path, result)
    _base_chain(ctx, verified, result)
    if ctx.options.rebuild:
        _rebuild(ctx, item.path, key_path, result)
    if ctx.options.spot_check:
        _spot_check(ctx, item.path, key_path, ctx.options.spot_check, result)
    return result


def _lineage(ctx: AuditContext, provenance: Path, result: LinkResult) -> None:
    """A model built by a pipeline: walk its data back to the upstream commitments."""
    from glassbox.pipeline.lineage import find_lock, verify_lineage

    lock = find_lock(provenance)
    if lock is None:
        return
    report = verify_lineage(
        lock,
        [k.key for k in ctx.trusted_keys()],
        labellers=ctx.labeller_keys(),
        model_step=provenance.parent.name,
    )
    result.evidence["lineage"] = report.to_dict()
    ctx.lineage = result.evidence["lineage"]
    steps = len(report.steps)
    if report.verdict == "pass":
        result.summary += f"; data lineage of {steps} pipeline step(s) verified to upstream"
        return
    findings = report.findings
    if report.verdict == "fail":
        result.verdict = Verdict.FAIL
        result.summary = f"data lineage: {findings[0]}" if findings else "data lineage failed"
    else:
        result.summary += f"; data lineage unknown: {findings[0] if findings else '?'}"
    result.details.extend(findings[1:] if report.verdict == "fail" else findings)


def _base_chain(ctx: AuditContext, statement: dict[str, Any], result: LinkResult) -> None:
    """A fine-tune's provenance names its base by digest: walk the chain back to its root
    (``glassbox.audit.chain``): each base's digest, signature, lineage and own provenance. A
    broken link anywhere fails the provenance link, naming the level; a level that cannot be
    checked here is a detail, so the link does not claim more than was seen."""
    from glassbox.audit.chain import walk_chain

    chain = walk_chain(ctx, statement, max_depth=ctx.options.chain_depth)
    if not chain.levels:
        return
    result.evidence["chain"] = chain.to_dict()
    first = chain.levels[0]
    result.evidence["base_model"] = first.lineage or {"checked": False}
    lineage = first.lineage
    if lineage.get("checked") and lineage.get("verdict") == "derived":
        result.summary += (
            f"; derives from the declared base (lineage score {float(lineage['score']):.2f})"
        )
    elif first.verdict == "pass":
        result.details.append(f"lineage not checked: {lineage.get('reason', '?')}")
    broken = chain.broken
    if broken is None:
        result.summary += f"; fine-tune chain of {len(chain.levels)} level(s) verified to its root"
        return
    where = f"fine-tune chain, level {broken.level} (base {broken.path or '?'})"
    if broken.verdict == "fail":
        result.verdict = Verdict.FAIL
        result.summary = f"{where}: {broken.reason}"
        reason = broken.lineage.get("reason")
        if broken.lineage.get("checked") and isinstance(reason, str):
            result.details.append(reason)
        return
    result.details.append(f"{where}: {broken.reason}")


def _build_def(statement: dict[str, Any]) -> dict[str, Any]:
    predicate = statement.get("predicate")
    build = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    return build if isinstance(build, dict) else {}


def _dependencies(statement: dict[str, Any]) -> list[dict[str, Any]]:
    deps = _build_def(statement).get("resolvedDependencies")
    return [d for d in deps if isinstance(d, dict)] if isinstance(deps, list) else []


def _has_digest(dep: dict[str, Any]) -> bool:
    digest = dep.get("digest")
    return isinstance(digest, dict) and any(isinstance(v, str) and v for v in digest.values())


def _check_subjects(
    ctx: AuditContext, statement: dict[str, Any]
) -> tuple[list[str], int, list[str]]:
    """Subjects must be the model's files (by path and SHA-256) or its OMS root digest.

    Returns the problems, how many subjects matched, and model files no subject names.
    """
    subjects = [s for s in statement.get("subject", []) if isinstance(s, dict)]
    if not subjects:
        return ["provenance names no subjects"], 0, []
    manifest = ctx.manifest()
    root = manifest.root_digest.hex()
    if any(subject_sha256(s) == root for s in subjects):
        return [], 1, []
    files = ctx.sha256_files()
    problems = []
    matched = 0
    named = set()
    for subject in subjects:
        name = str(subject.get("name", ""))
        named.add(name)
        want = subject_sha256(subject)
        got = files.get(name)
        if got is None:
            problems.append(f"output {name} named in the provenance is not in the model")
        elif got != want:
            problems.append(f"output {name} differs from the provenance (sha256 {got[:16]}…)")
        else:
            matched += 1
    return problems, matched, sorted(set(files) - named)


def _hermeticity(statement: dict[str, Any]) -> tuple[bool | None, str]:
    """The build's own hermeticity verdict (a Glassbox build's ``hermeticity`` byproduct)."""
    record = byproduct(statement, "hermeticity")
    if not isinstance(record.get("hermetic"), bool):
        return None, ""
    problems = [*record.get("undeclared_reads", []), *record.get("refused", [])]
    return record["hermetic"], ", ".join(map(str, problems))[:300]


def _rebuild(ctx: AuditContext, provenance: Path, key: Path, result: LinkResult) -> None:
    from glassbox.pipeline import rebuild

    recipe = ctx.evidence.first("recipe")
    report = rebuild(
        provenance,
        public_key=key,
        # A build output directory holds the model directory (``model/``) and its provenance.
        original_dir=ctx.model.parent if ctx.model.is_dir() else provenance.parent,
        recipe_dir=recipe.path.parent if recipe else None,
    )
    result.evidence["rebuild"] = report.to_dict()
    if report.ok:
        result.summary += f"; rebuild {report.verdict}"
    else:
        result.verdict = Verdict.FAIL
        result.summary = f"rebuild: {report.verdict}"
        result.details.extend(report.notes)


def _spot_check(
    ctx: AuditContext, provenance: Path, key: Path, segments: int, result: LinkResult
) -> None:
    from glassbox.pipeline import spot_check

    recipe = ctx.evidence.first("recipe")
    report = spot_check(
        provenance,
        segments=segments,
        public_key=key,
        recipe_dir=recipe.path.parent if recipe else None,
    )
    result.evidence["spot_check"] = report.to_dict()
    if report.passed:
        result.summary += (
            f"; spot-check of {len(report.checks)} segment(s) passed "
            f"({report.compute_fraction:.0%} of training compute)"
        )
    else:
        result.verdict = Verdict.FAIL
        failed = [c.to_dict() for c in report.checks if not c.passed]
        result.summary = "spot-check failed: " + (
            "; ".join(report.problems) or f"{len(failed)} segment(s) did not replay"
        )
