"""Transparency log: RFC 9162 tree in SQLite/PostgreSQL, C2SP checkpoints and witnesses.

Public API (what ``audit`` and the CLI use)::

    log = open_log()                                   # embedded log under data_dir()/log
    appended = log.add_signed(bundle, public_key)      # verified, durable, deduplicated
    log.index_of(parse_entry(make_submission(bundle, public_key)))   # is it logged?
    bundle = log.proof_bundle(appended.index)          # ProofBundle, .write(path)
    result = verify_proof_bundle(bundle, log.vkey, WitnessPolicy.from_vkeys([...], k=1))
    remember_checkpoint(SeenCheckpoints(), log_or_client, signed)    # per-log memory
"""

from __future__ import annotations

from typing import Any

from glassbox.tlog.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, sign_checkpoint
from glassbox.tlog.entries import LeafFields, LogEntry, canonical_json, entry_from_body, parse_entry
from glassbox.tlog.local import (
    SeenCheckpoints,
    load_or_create_signer,
    local_log_dir,
    open_log,
    remember_checkpoint,
)
from glassbox.tlog.log import StoredEntry, TransparencyLog
from glassbox.tlog.note import (
    Note,
    NoteError,
    NoteVerificationError,
    Signer,
    Verifier,
    open_note,
    parse_note,
    parse_vkey,
)
from glassbox.tlog.proofbundle import ConsistencyProof, ProofBundle, VerifiedProof
from glassbox.tlog.sequencer import Appended
from glassbox.tlog.store import open_store
from glassbox.tlog.tree import StoredTree, audit_store
from glassbox.tlog.witness import Witness, WitnessCosigner, WitnessError, WitnessPolicy


def make_submission(signed: dict[str, Any], public_key: Any) -> dict[str, Any]:
    """A log submission for an OMS/Sigstore bundle or a DSSE envelope dict and its public key
    (a ``cryptography`` public key or PEM text): what ``parse_entry`` and the server take."""
    from glassbox.sign import public_pem

    pem = public_key if isinstance(public_key, str) else public_pem(public_key).decode()
    field = "bundle" if "dsseEnvelope" in signed or "mediaType" in signed else "envelope"
    return {field: signed, "public_key": pem}


def verify_proof_bundle(
    bundle: ProofBundle,
    log_vkey: str | Verifier,
    policy: WitnessPolicy | None = None,
    seen: SeenCheckpoints | None = None,
) -> tuple[VerifiedProof, str]:
    """Verify offline; with ``seen``, also relate the checkpoint to the last one seen for this
    log. Returns the result and ``first``/``same``/``newer``/``older``/``unverified`` (the
    bundle's checkpoint and the remembered one differ in size and no proof links them).

    A bundle made with a consistency proof from the remembered size (``glassbox log prove
    --since``) is checked against the remembered root, offline: ``newer`` if the log only
    appended, ``VerificationError`` if it rewrote or forked the history this machine saw."""
    result = bundle.verify(log_vkey, policy)
    status = "not-tracked"
    if seen is not None:
        prev = seen.get(result.checkpoint.checkpoint.origin)
        proof = None
        carried = bundle.consistency
        cp = result.checkpoint.checkpoint
        if prev is not None and carried is not None and carried.old_size == prev.size:
            bundle.check_consistent(prev.size, prev.root, cp.size, cp.root)
            proof = carried.hashes
        status = seen.update(result.checkpoint, proof)
    return result, status


__all__ = [
    "Appended",
    "Checkpoint",
    "ConsistencyProof",
    "LeafFields",
    "LogEntry",
    "Note",
    "NoteError",
    "NoteVerificationError",
    "ProofBundle",
    "SeenCheckpoints",
    "SignedCheckpoint",
    "Signer",
    "StoredEntry",
    "StoredTree",
    "TransparencyLog",
    "VerifiedProof",
    "Verifier",
    "Witness",
    "WitnessCosigner",
    "WitnessError",
    "WitnessPolicy",
    "audit_store",
    "canonical_json",
    "entry_from_body",
    "load_or_create_signer",
    "local_log_dir",
    "make_submission",
    "open_checkpoint",
    "open_log",
    "open_note",
    "open_store",
    "parse_entry",
    "parse_note",
    "parse_vkey",
    "remember_checkpoint",
    "sign_checkpoint",
    "verify_proof_bundle",
]
