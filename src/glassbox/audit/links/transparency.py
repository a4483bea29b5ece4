"""Transparency: the release is recorded in an append-only log that witnesses vouch for.

Holds when an offline proof bundle (found beside the model, or fetched from the log named with
``--log``) proves that an entry signing *this* model's root digest is included under a
checkpoint signed by a trusted log key, cosigned as the witness policy demands, and consistent
with the last checkpoint this machine saw for that log. All of that is ``glassbox.tlog``'s
public API; this module chooses which entry to look for and turns the answer into a verdict.

Trusted log keys are the ``--log-key`` files plus this machine's own embedded log. A proof for
any other log is not evidence: whoever forges a bundle can forge a log key too.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.audit.context import AuditContext, AuditOptions
from glassbox.audit.verdict import LinkResult, Verdict
from glassbox.errors import GlassboxError, InputError

if TYPE_CHECKING:
    from glassbox.tlog import ProofBundle, WitnessPolicy

LINK = "transparency"
MAX_POLICY_BYTES = 1 << 20  # a k and a list of witness keys


def check(ctx: AuditContext) -> LinkResult:
    from glassbox.tlog import ProofBundle

    trusted = _trusted_log_keys(ctx)
    policy = _policy(ctx.options.witness_policy)
    if ctx.options.policy is not None:
        # A trust policy names logs and witnesses too; options given on the command line add.
        for vkey, source in ctx.options.policy.log.trusted_vkeys().items():
            trusted.setdefault(vkey, f"trust policy ({source})")
        if policy is None:
            policy = ctx.options.policy.log.witnesses
    root = ctx.manifest().root_digest.hex()
    notes: list[str] = []
    candidates: list[tuple[str, ProofBundle]] = []
    for item in ctx.evidence.of("log-proof"):
        try:
            candidates.append((str(item.path), ProofBundle.from_dict(item.document)))
        except InputError as exc:
            notes.append(f"{item.path}: {exc}")
    log = _open_log(ctx, trusted) if ctx.options.log else None
    try:
        if log is not None:
            for index in log.search("digest", f"sha256:{root}"):
                candidates.append((f"{ctx.options.log} entry {index}", log.proof_bundle(index)))
        if not candidates:
            where = f"in log {ctx.options.log}" if ctx.options.log else "beside the model"
            result = LinkResult.unknown(
                LINK,
                f"no log entry for this model found {where}"
                + ("" if ctx.options.log else " (no proof bundle; give --log to search a log)"),
                root_digest=f"sha256:{root}",
            )
            result.details.extend(notes)
            return result
        return _judge(ctx, candidates, trusted, policy, root, log, notes)
    finally:
        if log is not None:
            log.close()


def _judge(
    ctx: AuditContext,
    candidates: list[tuple[str, ProofBundle]],
    trusted: dict[str, str],
    policy: WitnessPolicy | None,
    root: str,
    log: Any,
    notes: list[str],
) -> LinkResult:
    """The verdict from ``glassbox.trust``'s log check, the one the gate and loaders use."""
    from glassbox.trust.logproof import check_log_proofs, relate_with, relate_with_embedded_log

    trusted_signers = {k.key_id for k in ctx.trusted_keys()}

    def relate(vkey: str, verified: Any, seen: Any) -> str:
        # A log named with --log answers for itself; else this machine's own log, if it is.
        if log is not None:
            return relate_with(log, verified, seen)
        return relate_with_embedded_log(vkey, verified, seen)

    check = check_log_proofs(candidates, root, trusted, policy, trusted_signers, relate=relate)
    details = [*check.failures, *notes, *check.notes]
    if check.status == "pass":
        result = LinkResult(LINK, Verdict.PASS, check.summary, check.evidence)
        if not trusted_signers:
            result.details.append("the entry's signer was not checked: no --key given")
    elif check.status == "unverified":
        summary = (
            "entry included, but this machine saw a different checkpoint of that log and "
            "no consistency proof links them (give --log to fetch one)"
        )
        result = LinkResult(LINK, Verdict.UNKNOWN, summary, check.evidence)
    elif check.status == "fail":
        result = LinkResult.fail(LINK, check.summary, root_digest=f"sha256:{root}")
    else:
        result = LinkResult.unknown(
            LINK,
            "no trusted log entry proves this model was recorded",
            root_digest=f"sha256:{root}",
        )
    result.details.extend(details)
    return result


def validate_options(options: AuditOptions) -> None:
    """Refuse unusable ``--log``, ``--log-key`` and ``--witness-policy`` before any work."""
    _named_log_keys(options)
    _policy(options.witness_policy)
    where = options.log
    if where is not None and where not in {"embedded", "local"}:
        if not where.startswith(("http://", "https://")):
            raise InputError(f"--log {where!r}: use 'embedded' or an http(s) URL")
        if len(options.log_keys) != 1:
            raise InputError(f"--log {where}: give exactly one --log-key for a log server")


def _named_log_keys(options: AuditOptions) -> dict[str, str]:
    trusted: dict[str, str] = {}
    if not options.log_keys:
        return trusted
    from glassbox.tlog import parse_vkey

    for path in options.log_keys:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--log-key {path}: cannot read the log key: {exc}") from exc
        try:
            trusted[parse_vkey(text).vkey] = str(path)
        except GlassboxError as exc:
            raise InputError(f"--log-key {path}: not a note verifier key: {exc}") from exc
    return trusted


def _trusted_log_keys(ctx: AuditContext) -> dict[str, str]:
    """vkey -> where it came from: ``--log-key`` files and this machine's embedded log."""
    from glassbox.tlog import local_log_dir, parse_vkey

    trusted = _named_log_keys(ctx.options)
    local = local_log_dir() / "log.vkey"
    if local.is_file():
        with contextlib.suppress(OSError, GlassboxError):
            trusted.setdefault(parse_vkey(local.read_text().strip()).vkey, "embedded log")
    return trusted


def _policy(path: Path | None) -> WitnessPolicy | None:
    """``--witness-policy FILE``: JSON ``{"k": 1, "witnesses": ["<vkey>", ...]}``."""
    if path is None:
        return None
    from glassbox.files import read_json_file
    from glassbox.tlog import WitnessPolicy

    try:
        doc = read_json_file(path, MAX_POLICY_BYTES, "witness policy")
        vkeys = doc["witnesses"]
        k = doc.get("k")
        if not isinstance(vkeys, list) or not all(isinstance(v, str) for v in vkeys):
            raise TypeError("'witnesses' must be a list of vkey strings")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool)):
            raise TypeError("'k' must be an integer")
        return WitnessPolicy.from_vkeys(vkeys, k)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, GlassboxError) as exc:
        raise InputError(f"--witness-policy {path}: {exc}") from exc


def _open_log(ctx: AuditContext, trusted: dict[str, str]) -> Any:
    from glassbox.tlog import open_log

    where = ctx.options.log or ""
    if where in {"embedded", "local"}:
        return open_log()
    if where.startswith(("http://", "https://")):
        from glassbox.tlog.client import LogClient

        (key,) = _named_log_keys(ctx.options)  # exactly one: validate_options checked
        return LogClient(where, key)
    raise InputError(f"--log {where!r}: use 'embedded' or an http(s) URL")
