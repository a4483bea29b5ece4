"""Offline proof bundles: an entry, its inclusion proof, and the (cosigned) checkpoint.

A bundle lets anyone check, with no network, that the log with a given key committed to the
entry in a tree head that k-of-n witnesses also saw. It may also carry a consistency proof from
an earlier tree size (and the log's signed checkpoint at that size, when it issued one), so a
verifier that remembers an earlier checkpoint of the log checks offline that the log only
appended since, instead of reporting the relation ``unverified``.

The bundle's own copy of the log key is only a label: the verifier must be given the trusted
key, otherwise a forger would simply ship a key of their own.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.digest.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from glassbox.errors import InputError, VerificationError
from glassbox.tlog.checkpoint import SignedCheckpoint, open_checkpoint
from glassbox.tlog.entries import LogEntry, entry_from_body
from glassbox.tlog.note import NoteError, Verifier, parse_vkey
from glassbox.tlog.witness import WitnessPolicy

FORMAT = "glassbox-tlog-proof/v1"
MAX_BUNDLE_BYTES = 64 << 20


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"proof bundle: {what} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InputError(f"proof bundle: {what} is not valid base64") from None


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"proof bundle: {what} must be a non-negative integer")
    return value


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 consistency proof from ``old_size`` to the bundle's tree size, and the log's
    signed checkpoint note at ``old_size`` when it has one (``None`` otherwise: then only a
    verifier that remembers the old root can use the proof)."""

    old_size: int
    hashes: list[bytes]
    old_checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "hashes": [_b64(h) for h in self.hashes],
            "old_checkpoint": self.old_checkpoint,
        }

    @classmethod
    def from_dict(cls, doc: object) -> ConsistencyProof:
        if not isinstance(doc, dict) or not isinstance(doc.get("hashes"), list):
            raise InputError("proof bundle: 'consistency' must hold a 'hashes' list")
        if len(doc["hashes"]) > 128:
            raise InputError("proof bundle: consistency proof is longer than 128 hashes")
        old_cp = doc.get("old_checkpoint")
        if old_cp is not None and not isinstance(old_cp, str):
            raise InputError("proof bundle: consistency.old_checkpoint must be a string")
        return cls(
            _int(doc.get("old_size"), "consistency.old_size"),
            [_unb64(h, "consistency hash") for h in doc["hashes"]],
            old_cp,
        )


@dataclass(frozen=True)
class VerifiedProof:
    index: int
    tree_size: int
    origin: str
    witnesses: list[str]
    entry: LogEntry | None
    checkpoint: SignedCheckpoint = field(repr=False)
    # The earlier size the bundle's consistency proof verified from (against the log's own
    # signed checkpoint there), or None when it carried none or no checkpoint to check it by.
    consistent_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "origin": self.origin,
            "root": self.checkpoint.checkpoint.root.hex(),
            "witnesses": self.witnesses,
            "entry": None if self.entry is None else self.entry.summary(),
            "consistent_from": self.consistent_from,
        }


@dataclass(frozen=True)
class ProofBundle:
    log_vkey: str
    index: int
    leaf: bytes
    body: bytes | None
    tree_size: int
    inclusion: list[bytes]
    checkpoint: str
    consistency: ConsistencyProof | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "format": FORMAT,
            "log": {"vkey": self.log_vkey},
            "entry": {
                "index": self.index,
                "leaf": _b64(self.leaf),
                "body": None if self.body is None else _b64(self.body),
            },
            "inclusion": {"tree_size": self.tree_size, "hashes": [_b64(h) for h in self.inclusion]},
            "checkpoint": self.checkpoint,
        }
        if self.consistency is not None:
            doc["consistency"] = self.consistency.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: object) -> ProofBundle:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InputError(f"not a Glassbox proof bundle (format must be {FORMAT!r})")
        log, entry, inclusion = doc.get("log"), doc.get("entry"), doc.get("inclusion")
        if not isinstance(log, dict) or not isinstance(entry, dict):
            raise InputError("proof bundle: 'log' and 'entry' must be objects")
        if not isinstance(inclusion, dict) or not isinstance(inclusion.get("hashes"), list):
            raise InputError("proof bundle: 'inclusion' must hold a 'hashes' list")
        if len(inclusion["hashes"]) > 64:
            raise InputError("proof bundle: inclusion proof is longer than 64 hashes")
        vkey, checkpoint = log.get("vkey"), doc.get("checkpoint")
        if not isinstance(vkey, str) or not isinstance(checkpoint, str):
            raise InputError("proof bundle: log.vkey and checkpoint must be strings")
        body = entry.get("body")
        consistency = doc.get("consistency")
        return cls(
            log_vkey=vkey,
            index=_int(entry.get("index"), "entry.index"),
            leaf=_unb64(entry.get("leaf"), "entry.leaf"),
            body=None if body is None else _unb64(body, "entry.body"),
            tree_size=_int(inclusion.get("tree_size"), "inclusion.tree_size"),
            inclusion=[_unb64(h, "inclusion hash") for h in inclusion["hashes"]],
            checkpoint=checkpoint,
            consistency=None if consistency is None else ConsistencyProof.from_dict(consistency),
        )

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> ProofBundle:
        from glassbox.files import read_json_file

        p = Path(path)
        doc = read_json_file(p, MAX_BUNDLE_BYTES, "proof bundle")
        try:
            return cls.from_dict(doc)
        except InputError as exc:
            raise InputError(f"{p}: {exc}") from None

    def verify(self, log_key: str | Verifier, policy: WitnessPolicy | None = None) -> VerifiedProof:
        """Check everything offline; raise ``VerificationError`` on the first thing that fails."""
        verifier = parse_vkey(log_key) if isinstance(log_key, str) else log_key
        if self.log_vkey != verifier.vkey:
            raise VerificationError(
                f"proof bundle is for log {self.log_vkey}, not the trusted log {verifier.vkey}"
            )
        try:
            signed = open_checkpoint(self.checkpoint, verifier)
        except NoteError as exc:
            raise InputError(f"proof bundle checkpoint: {exc}") from None
        witnesses = policy.check(signed) if policy is not None else []
        cp = signed.checkpoint
        if cp.size != self.tree_size:
            raise VerificationError(
                f"inclusion proof is for size {self.tree_size}, checkpoint is size {cp.size}"
            )
        try:
            verify_inclusion(leaf_hash(self.leaf), self.index, cp.size, self.inclusion, cp.root)
        except ProofError as exc:
            raise VerificationError(f"entry {self.index} is not in the log: {exc}") from None
        entry = None
        if self.body is not None:
            entry = entry_from_body(self.body, where=f"entry {self.index} body")
            if entry.leaf != self.leaf:
                raise VerificationError(f"entry {self.index} body does not match its leaf")
        since = self._check_consistency(verifier, signed)
        return VerifiedProof(self.index, cp.size, cp.origin, witnesses, entry, signed, since)

    def _check_consistency(self, verifier: Verifier, signed: SignedCheckpoint) -> int | None:
        """Verify the carried consistency proof against the log's signed checkpoint at the old
        size, if the bundle has both; a proof that does not verify fails the whole bundle."""
        proof = self.consistency
        if proof is None:
            return None
        cp = signed.checkpoint
        if not 0 < proof.old_size <= cp.size:
            raise VerificationError(
                f"consistency proof is from size {proof.old_size}, not inside (0, {cp.size}]"
            )
        if proof.old_checkpoint is None:
            return None  # only a verifier remembering the old root can use it (``relate``)
        try:
            old = open_checkpoint(proof.old_checkpoint, verifier)
        except NoteError as exc:
            raise InputError(f"proof bundle consistency.old_checkpoint: {exc}") from None
        if old.checkpoint.size != proof.old_size or old.checkpoint.origin != cp.origin:
            raise VerificationError(
                f"consistency proof is from size {proof.old_size}, but the old checkpoint is"
                f" {old.checkpoint.origin} at size {old.checkpoint.size}"
            )
        self.check_consistent(old.checkpoint.size, old.checkpoint.root, cp.size, cp.root)
        return proof.old_size

    def check_consistent(self, old_size: int, old_root: bytes, size: int, root: bytes) -> None:
        """Raise ``VerificationError`` unless the carried proof shows the tree ``(old_size,
        old_root)`` is a prefix of ``(size, root)``."""
        proof = self.consistency
        if proof is None or proof.old_size != old_size:
            raise VerificationError(f"the bundle has no consistency proof from size {old_size}")
        try:
            verify_consistency(old_size, size, proof.hashes, old_root, root)
        except ProofError as exc:
            raise VerificationError(
                f"log is not consistent between sizes {old_size} and {size}: {exc}"
            ) from None
