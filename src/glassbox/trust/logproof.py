"""The log link of the gate: this model's signature is in a trusted log, witnessed, consistent.

One function decides it for every caller (``glassbox verify --policy``, the loaders, and
``audit``'s transparency link): among candidate offline proof bundles, the first that proves an
entry for *this* root digest, signed by an expected key, included under a checkpoint signed by
a trusted log key, cosigned as the witness policy demands, and consistent with the last
checkpoint this machine saw for that log (``SeenCheckpoints``). A bundle that fails
cryptographically is a failure; one that is merely about something else is a note.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import GlassboxError, InputError, VerificationError

if TYPE_CHECKING:
    from glassbox.tlog import ProofBundle, SeenCheckpoints, VerifiedProof, WitnessPolicy

# Relates a freshly verified checkpoint to the remembered one when the bundle carried no
# consistency proof (by asking a log for one); returns the new status.
Relate = Callable[[str, "VerifiedProof", "SeenCheckpoints"], str]


@dataclass
class LogCheck:
    """``status``: ``pass`` (included, witnessed, consistent), ``fail`` (a proof is forged or
    the log forked), ``unverified`` (included, but not linked to what this machine saw) or
    ``missing`` (no usable proof at all)."""

    status: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def subject_sha256(subject: Any) -> str | None:
    """An in-toto subject's SHA-256 (hex, lower case), if it has one."""
    if not isinstance(subject, dict):
        return None
    digest = subject.get("digest")
    value = digest.get("sha256") if isinstance(digest, dict) else None
    return value.lower() if isinstance(value, str) else None


def read_proofs(paths: list[Path]) -> tuple[list[tuple[str, ProofBundle]], list[str]]:
    """Parse proof bundle files; unreadable ones become notes (a bad file is not evidence)."""
    from glassbox.tlog import ProofBundle

    out: list[tuple[str, ProofBundle]] = []
    notes: list[str] = []
    for path in paths:
        try:
            out.append((str(path), ProofBundle.read(path)))
        except InputError as exc:
            notes.append(str(exc))
    return out, notes


def check_log_proofs(
    candidates: list[tuple[str, ProofBundle]],
    root_hex: str,
    trusted_logs: dict[str, str],
    witnesses: WitnessPolicy | None,
    signer_key_ids: Collection[str],
    *,
    relate: Relate | None = None,
    seen_path: Path | None = None,
) -> LogCheck:
    """Judge ``candidates`` (source, bundle) for the model whose root digest is ``root_hex``.

    ``trusted_logs`` maps each trusted log vkey to where that trust comes from; the entry must be
    signed by one of ``signer_key_ids`` (empty: any signer, and the evidence says so).
    """
    from glassbox.tlog import SeenCheckpoints

    notes: list[str] = []
    failures: list[str] = []
    if not candidates:
        return LogCheck("missing", "no transparency-log proof for this model was found")
    seen = SeenCheckpoints(seen_path)
    try:
        for source, bundle in candidates:
            result = _one(
                source, bundle, root_hex, trusted_logs, witnesses, signer_key_ids, seen, relate
            )
            if isinstance(result, LogCheck):
                result.failures.extend(failures)
                result.notes.extend(notes)
                return result
            kind, message = result
            (failures if kind == "fail" else notes).append(message)
    finally:
        seen.close()
    if failures:
        return LogCheck("fail", failures[0], failures=failures[1:], notes=notes)
    return LogCheck("missing", "no trusted log entry proves this model was recorded", notes=notes)


def _one(
    source: str,
    bundle: ProofBundle,
    root_hex: str,
    trusted_logs: dict[str, str],
    witnesses: WitnessPolicy | None,
    signer_key_ids: Collection[str],
    seen: SeenCheckpoints,
    relate: Relate | None,
) -> LogCheck | tuple[str, str]:
    from glassbox.tlog import verify_proof_bundle

    if bundle.log_vkey not in trusted_logs:
        return "note", f"{source}: log {bundle.log_vkey.split('+')[0]} is not a trusted log"
    try:
        verified, status = verify_proof_bundle(bundle, bundle.log_vkey, witnesses, seen)
    except VerificationError as exc:
        return "fail", f"{source}: {exc}"
    except InputError as exc:
        return "note", f"{source}: {exc}"
    entry = verified.entry
    if entry is None:
        return "note", f"{source}: the bundle carries no entry body, so its subject is unknown"
    if not any(subject_sha256(s) == root_hex for s in entry.subjects()):
        return "note", f"{source}: entry {verified.index} is about another model"
    if signer_key_ids and entry.key_id not in signer_key_ids:
        return "note", f"{source}: entry {verified.index} was signed by another key"
    if status == "unverified" and relate is not None:
        try:
            status = relate(bundle.log_vkey, verified, seen)
        except VerificationError as exc:
            return "fail", f"{source}: {exc}"
    evidence: dict[str, Any] = {
        "source": source,
        "log": bundle.log_vkey,
        "trusted_because": trusted_logs[bundle.log_vkey],
        "origin": verified.origin,
        "index": verified.index,
        "tree_size": verified.tree_size,
        "checkpoint_root": verified.checkpoint.checkpoint.root.hex(),
        "entry_key_id": entry.key_id,
        "entry_predicate": entry.statement.get("predicateType"),
        "witnesses": verified.witnesses,
        "witness_policy": witnesses.to_dict() if witnesses else None,
        "consistency_with_last_seen": status,
    }
    if status == "unverified":
        last = seen.get(verified.origin)
        since = f" --since {last.size}" if last is not None else ""
        return LogCheck(
            "unverified",
            f"entry {verified.index} of {verified.origin} is included, but this machine saw a "
            f"different checkpoint of that log and no consistency proof links them (get a "
            f"bundle made with `glassbox log prove{since}`)",
            evidence,
        )
    cosigned = (
        f"{len(verified.witnesses)} witness cosignature(s)" if witnesses else "no witness policy"
    )
    return LogCheck(
        "pass",
        f"entry {verified.index} of {verified.origin} (tree size {verified.tree_size}); "
        f"{cosigned}; checkpoint {status}",
        evidence,
    )


def relate_with_embedded_log(vkey: str, verified: VerifiedProof, seen: SeenCheckpoints) -> str:
    """When the proof's log is this machine's own embedded log, ask it for the consistency
    proof between the remembered checkpoint and the proof's (offline: it is local)."""
    from glassbox.tlog import local_log_dir, open_log, parse_vkey

    local = local_log_dir() / "log.vkey"
    try:
        if parse_vkey(local.read_text().strip()).vkey != vkey:
            return "unverified"
    except (OSError, UnicodeDecodeError, GlassboxError):
        return "unverified"
    old = seen.get(verified.origin)
    new = verified.checkpoint.checkpoint
    proven = None if old is None else (vkey, old.size, old.root, new.size, new.root)
    if proven is not None and proven in _PROVEN_OLDER:
        return "older"
    log = open_log(read_only=True)  # reading a proof: never write the log
    try:
        status = relate_with(log, verified, seen)
    finally:
        with contextlib.suppress(Exception):
            log.close()
    if status == "older" and proven is not None:
        _PROVEN_OLDER.add(proven)
    return status


# (log vkey, seen size, seen root, proof's size, proof's root) for which a consistency proof
# from this process's embedded log was checked: a fact about two tree heads, true forever, so
# later loads need not open the log again to learn it.
_PROVEN_OLDER: set[tuple[str, int, bytes, int, bytes]] = set()


def relate_with(log: Any, verified: VerifiedProof, seen: SeenCheckpoints) -> str:
    """Fetch a consistency proof from ``log`` between the remembered checkpoint and this one,
    and record the result; a log that forked raises ``VerificationError``."""
    old = seen.get(verified.origin)
    if old is None:
        return "unverified"
    small, large = sorted((old.size, verified.tree_size))
    try:
        proof = log.consistency_proof(small, large)
    except VerificationError:
        raise
    except GlassboxError:
        return "unverified"
    status: str = seen.update(verified.checkpoint, proof)
    return status
