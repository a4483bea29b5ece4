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
from glassbox.audit.evidence import subject_sha256
from glassbox.audit.verdict import LinkResult, Verdict
from glassbox.errors import GlassboxError, InputError, VerificationError

if TYPE_CHECKING:
    from glassbox.tlog import ProofBundle, WitnessPolicy

LINK = "transparency"
MAX_POLICY_BYTES = 1 << 20  # a k and a list of witness keys


def check(ctx: AuditContext) -> LinkResult:
    from glassbox.tlog import ProofBundle, SeenCheckpoints

    trusted = _trusted_log_keys(ctx)
    policy = _policy(ctx.options.witness_policy)
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
        seen = SeenCheckpoints()
        try:
            return _judge(ctx, candidates, trusted, policy, root, seen, log, notes)
        finally:
            seen.close()
    finally:
        if log is not None:
            log.close()


def _judge(
    ctx: AuditContext,
    candidates: list[tuple[str, ProofBundle]],
    trusted: dict[str, str],
    policy: WitnessPolicy | None,
    root: str,
    seen: Any,
    log: Any,
    notes: list[str],
) -> LinkResult:
    from glassbox.tlog import verify_proof_bundle

    trusted_signers = {k.key_id for k in ctx.trusted_keys()}
    failures: list[str] = []
    for source, bundle in candidates:
        if bundle.log_vkey not in trusted:
            notes.append(f"{source}: log {bundle.log_vkey.split('+')[0]} is not a trusted log")
            continue
        try:
            verified, status = verify_proof_bundle(bundle, bundle.log_vkey, policy, seen)
        except VerificationError as exc:
            failures.append(f"{source}: {exc}")
            continue
        except InputError as exc:
            notes.append(f"{source}: {exc}")
            continue
        entry = verified.entry
        if entry is None:
            notes.append(f"{source}: the bundle carries no entry body, so its subject is unknown")
            continue
        if not any(subject_sha256(s) == root for s in entry.subjects()):
            notes.append(f"{source}: entry {verified.index} is about another model")
            continue
        if trusted_signers and entry.key_id not in trusted_signers:
            notes.append(f"{source}: entry {verified.index} was signed by an untrusted key")
            continue
        if status == "unverified" and log is not None:
            status = _prove_consistency(log, seen, verified)
        elif status == "unverified" and trusted[bundle.log_vkey] == "embedded log":
            # This machine's own log is at hand: ask it how the two checkpoints relate.
            from glassbox.tlog import open_log

            local = open_log(read_only=True)  # reading a proof: never write the log
            try:
                status = _prove_consistency(local, seen, verified)
            finally:
                local.close()
        evidence: dict[str, Any] = {
            "source": source,
            "log": bundle.log_vkey,
            "origin": verified.origin,
            "index": verified.index,
            "tree_size": verified.tree_size,
            "checkpoint_root": verified.checkpoint.checkpoint.root.hex(),
            "entry_key_id": entry.key_id,
            "entry_predicate": entry.statement.get("predicateType"),
            "witnesses": verified.witnesses,
            "witness_policy": policy.to_dict() if policy else None,
            "consistency_with_last_seen": status,
        }
        if status == "unverified":
            result = LinkResult(
                LINK,
                Verdict.UNKNOWN,
                "entry included, but this machine saw a different checkpoint of that log and "
                "no consistency proof links them (give --log to fetch one)",
                evidence,
            )
        else:
            cosigned = (
                f"{len(verified.witnesses)} witness cosignature(s)"
                if policy
                else "no witness policy given"
            )
            result = LinkResult(
                LINK,
                Verdict.PASS,
                f"entry {verified.index} of {verified.origin} (tree size {verified.tree_size}); "
                f"{cosigned}; checkpoint {status}",
                evidence,
            )
            if not trusted_signers:
                result.details.append("the entry's signer was not checked: no --key given")
        result.details.extend(notes)
        return result
    if failures:
        result = LinkResult.fail(LINK, failures[0], root_digest=f"sha256:{root}")
        result.details.extend(failures[1:] + notes)
        return result
    result = LinkResult.unknown(
        LINK, "no trusted log entry proves this model was recorded", root_digest=f"sha256:{root}"
    )
    result.details.extend(notes)
    return result


def _prove_consistency(log: Any, seen: Any, verified: Any) -> str:
    """Fetch a consistency proof between the remembered checkpoint and this one, and record."""
    old = seen.get(verified.origin)
    if old is None:
        return "unverified"
    small, large = sorted((old.size, verified.tree_size))
    try:
        proof = log.consistency_proof(small, large)
        status: str = seen.update(verified.checkpoint, proof)
    except VerificationError:
        raise
    except GlassboxError:
        return "unverified"
    return status


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
        return open_log(read_only=True)  # signs only if an entry lacks a checkpoint
    if where.startswith(("http://", "https://")):
        from glassbox.tlog.client import LogClient

        (key,) = _named_log_keys(ctx.options)  # exactly one: validate_options checked
        return LogClient(where, key)
    raise InputError(f"--log {where!r}: use 'embedded' or an http(s) URL")
