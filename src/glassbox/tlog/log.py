"""A transparency log: store + sequencer + log key + checkpoints + witnesses.

This is the one implementation behind the embedded log, the HTTP server and the benchmarks.
Entries are verified, sequenced in batches and acknowledged when durable; checkpoints are issued
on a schedule (``maybe_checkpoint`` / the server's timer), never per entry, so witnesses and
monitors see a small number of tree heads they can cross-check.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glassbox.errors import InputError, VerificationError
from glassbox.tlog.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    check_same_history,
    open_checkpoint,
    sign_checkpoint,
)
from glassbox.tlog.entries import LogEntry, entry_from_body
from glassbox.tlog.faults import READ_ONLY, StoreError
from glassbox.tlog.note import NoteSignature, Signer, Verifier
from glassbox.tlog.proofbundle import ConsistencyProof, ProofBundle
from glassbox.tlog.sequencer import Appended, Pending, Sequencer
from glassbox.tlog.store import SQLStore
from glassbox.tlog.tree import StoredTree

# Subject digest algorithms a bare hex digest is looked up under (OMS roots and in-toto subjects).
_DIGEST_ALGORITHMS = ("sha256", "blake3", "sha384", "sha512")
_MIN_PREFIX = 8


def _hex(value: str, what: str) -> str:
    text = value.strip().lower()
    if len(text) < _MIN_PREFIX or len(text) > 128 or any(c not in "0123456789abcdef" for c in text):
        raise InputError(
            f"{value!r} is not {what}: give its hex digits (at least {_MIN_PREFIX}, e.g. the "
            "16 that glassbox verify prints)"
        )
    return text


# Something that returns cosignature(s) for a freshly signed checkpoint (a witness client).
Cosigner = Callable[["TransparencyLog", SignedCheckpoint], list[NoteSignature]]

logger = logging.getLogger("glassbox.tlog")


@dataclass
class WitnessStatus:
    """The last answer of one witness (what ``/health`` shows): a refusing or unreachable
    witness does not stop the log, so it must at least be seen."""

    name: str
    ok: bool
    size: int  # the checkpoint size it was asked to cosign
    error: str | None
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "checkpoint_size": self.size,
            "error": self.error,
            "time": self.time,
        }


def _cosigner_name(cosigner: Cosigner) -> str:
    verifier = getattr(cosigner, "verifier", None)
    return str(getattr(verifier, "name", None) or getattr(cosigner, "__name__", "cosigner"))


@dataclass(frozen=True)
class StoredEntry:
    index: int
    leaf: bytes
    leaf_hash: bytes
    body: bytes | None

    def entry(self) -> LogEntry:
        if self.body is None:
            raise InputError(f"entry {self.index} has no stored body (a raw leaf)")
        return entry_from_body(self.body, where=f"entry {self.index}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leaf": base64.b64encode(self.leaf).decode(),
            "leaf_hash": self.leaf_hash.hex(),
            "body": None if self.body is None else base64.b64encode(self.body).decode(),
        }


class TransparencyLog:
    """One log: a store bound to one Ed25519 log key, with its sequencer and cosigners."""

    def __init__(
        self,
        store: SQLStore,
        signer: Signer | Verifier,
        *,
        cosigners: list[Cosigner] | None = None,
        max_batch: int = 4096,
    ) -> None:
        """``signer`` is the log key; a ``Verifier`` (the public key only) opens a log that
        can be read and proven from but never signs (a read-only copy, audited elsewhere)."""
        self.store = store
        self.signer: Signer | None = signer if isinstance(signer, Signer) else None
        self._verifier: Verifier = signer.verifier if isinstance(signer, Signer) else signer
        self.origin = signer.name
        self.tree = StoredTree(store)
        self.cosigners = list(cosigners or [])
        self.witness_status: dict[str, WitnessStatus] = {}
        self._bind_key()
        self.sequencer = Sequencer(store, max_batch=max_batch)
        self._cp_lock = threading.Lock()

    def _bind_key(self) -> None:
        """A store belongs to one log key: refuse to sign its tree with another."""
        vkey = self.store.get_meta("vkey")
        if vkey is None:
            if not self.store.read_only:
                self.store.set_meta("vkey", self.verifier.vkey)
        elif vkey != self.verifier.vkey:
            raise InputError(
                f"{self.store.description}: this log was created with key {vkey}, "
                f"not {self.verifier.vkey}"
            )

    @property
    def verifier(self) -> Verifier:
        return self._verifier if self.signer is None else self.signer.verifier

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    # -- writing -------------------------------------------------------------------------
    def add(self, entry: LogEntry, timeout: float | None = None) -> Appended:
        """Append a verified entry; returns once it is durable (same index if already there)."""
        body = entry.body
        pending = Pending(entry.leaf, body, entry.body_digest, entry.terms())
        return self.sequencer.add(pending, timeout)

    def add_signed(self, signed: dict[str, Any], public_key: Any) -> Appended:
        """Verify and append an OMS bundle or DSSE envelope dict signed by ``public_key``."""
        from glassbox.tlog.entries import parse_entry

        pem = public_key if isinstance(public_key, str) else _pem(public_key)
        field = "bundle" if "dsseEnvelope" in signed or "mediaType" in signed else "envelope"
        return self.add(parse_entry({field: signed, "public_key": pem}))

    def index_of(self, entry: LogEntry) -> int | None:
        """Where ``entry`` is in the log, if it is (found through its subject digests)."""
        for kind, value in entry.terms():
            if kind != "digest":
                continue
            for index in self.store.search(kind, value, 10_000):
                if self.get(index).leaf == entry.leaf:
                    return index
        return None

    def add_leaf(self, leaf: bytes) -> Appended:
        return self.sequencer.add(Pending(leaf))

    def close(self) -> None:
        self.sequencer.close()
        self.store.close()

    # -- reading -------------------------------------------------------------------------
    def size(self) -> int:
        return self.store.size()

    def get(self, index: int) -> StoredEntry:
        found = self.entries(index, index + 1) if index >= 0 else []
        if not found:
            raise InputError(f"no entry {index} in the log (size {self.size()})")
        return found[0]

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """Entries [start, end) with their bodies (what a monitor reads)."""
        out = []
        for row in self.store.leaves(start, end):
            body = self.store.get_blob(row.body_digest) if row.body_digest else None
            out.append(StoredEntry(row.index, row.leaf, row.leaf_hash, body))
        return out

    def search(self, kind: str, value: str, limit: int = 100) -> list[int]:
        """Entries by subject digest, signer key id, subject name or predicate type.

        A digest may be ``ALG:HEX`` or bare hex (any algorithm), a key id the whole id or the
        short one every command prints; either may be a prefix of at least 8 hex digits.
        """
        if kind not in ("digest", "key", "name", "type"):
            raise InputError(f"cannot search by {kind!r}: use digest, key, name or type")
        if kind == "key":
            key = _hex(value, "a signer key id")
            return self.store.search("key", key, limit, prefix=len(key) < 64)
        if kind == "digest":
            alg, sep, hexpart = value.strip().rpartition(":")
            digest = _hex(hexpart, "a digest")
            if sep:
                full = len(digest) in (64, 96, 128)
                return self.store.search(
                    "digest", f"{alg.lower()}:{digest}", limit, prefix=not full
                )
            found: set[int] = set()
            for algorithm in _DIGEST_ALGORITHMS:
                found.update(
                    self.store.search("digest", f"{algorithm}:{digest}", limit, prefix=True)
                )
            return sorted(found)[:limit]
        return self.store.search(kind, value, limit)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self.tree.inclusion_proof(index, size)

    def consistency_proof(self, old: int, size: int) -> list[bytes]:
        return self.tree.consistency_proof(old, size)

    # -- checkpoints ---------------------------------------------------------------------
    def latest_checkpoint(self) -> SignedCheckpoint | None:
        row = self.store.latest_checkpoint()
        if row is None:
            return None
        return open_checkpoint(row[1], self.verifier)

    def checkpoint_at(self, size: int) -> SignedCheckpoint | None:
        for s, note in reversed(self.store.checkpoints()):
            if s == size:
                return open_checkpoint(note, self.verifier)
        return None

    def issue_checkpoint(self) -> SignedCheckpoint:
        """Sign a checkpoint at the current size (reuse the latest if the tree has not grown),
        gather witness cosignatures, store it."""
        with self._cp_lock:
            latest = self.latest_checkpoint()
            size = self.size()
            if latest is not None and latest.checkpoint.size >= size:
                return latest
            if self.store.read_only or self.signer is None:
                return self._issue_writable(latest, size)
            root = self.tree.root(size)
            new = Checkpoint(self.origin, size, root)
            if latest is not None:  # our own history must be append-only, check before signing
                try:
                    check_same_history(latest.checkpoint, new, self.consistency_proof)
                except VerificationError as exc:
                    logger.error(
                        "%s: REFUSING TO SIGN a checkpoint at size %d: the stored tree is not"
                        " consistent with the log's own checkpoint at size %d (%s)",
                        self.origin,
                        size,
                        latest.checkpoint.size,
                        exc,
                    )
                    raise VerificationError(
                        f"the log refuses to sign size {size}: its stored tree is not consistent"
                        f" with its own checkpoint at size {latest.checkpoint.size} ({exc})"
                    ) from None
            signed = sign_checkpoint(new, self.signer)
            self.store.put_checkpoint(size, signed.serialize())
            return self._cosign(signed)

    def _issue_writable(self, latest: SignedCheckpoint | None, size: int) -> SignedCheckpoint:
        """A log opened read-only signs only when it must (the tree grew past its last
        checkpoint), through a writable open of the same store for just that write."""
        have = "none" if latest is None else f"size {latest.checkpoint.size}"
        why = (
            f"{self.store.where}: the log has {size} entries but its last signed checkpoint is"
            f" {have}, and"
        )
        if self.signer is None:
            raise StoreError(f"{why} this copy was opened without the log's signing key", READ_ONLY)
        if self.store.url is None:
            raise StoreError(f"{why} the store was opened read-only", READ_ONLY)
        from glassbox.tlog.store import open_store

        try:
            store = open_store(self.store.url, busy_timeout=self.store.busy_timeout)
            try:
                writable = TransparencyLog(store, self.signer, cosigners=self.cosigners)
            except BaseException:
                store.close()
                raise
            try:
                signed = writable.issue_checkpoint()
                self.witness_status.update(writable.witness_status)
                return signed
            finally:
                writable.close()
        except StoreError as exc:
            if exc.kind != READ_ONLY:
                raise
            raise StoreError(f"{why} the database is read-only here ({exc})", READ_ONLY) from None

    def _cosign(self, signed: SignedCheckpoint) -> SignedCheckpoint:
        extra: list[NoteSignature] = []
        size = signed.checkpoint.size
        for cosigner in self.cosigners:
            name = _cosigner_name(cosigner)
            try:
                extra.extend(cosigner(self, signed))
            except StoreError:
                raise  # our own storage failed, not the witness
            except Exception as exc:  # a broken witness must not stop the log
                logger.warning(
                    "%s: witness %s did not cosign checkpoint %d: %s", self.origin, name, size, exc
                )
                self.witness_status[name] = WitnessStatus(name, False, size, str(exc), time.time())
                continue
            before = self.witness_status.get(name)
            if before is not None and not before.ok:
                logger.warning("%s: witness %s cosigns again (size %d)", self.origin, name, size)
            self.witness_status[name] = WitnessStatus(name, True, size, None, time.time())
        if extra:
            signed = SignedCheckpoint(signed.checkpoint, signed.note.with_signatures(extra))
            self.store.replace_checkpoint(signed.checkpoint.size, signed.serialize())
        return signed

    def maybe_checkpoint(self, max_age: float) -> SignedCheckpoint | None:
        """Issue a checkpoint if the tree grew and the latest is older than ``max_age`` s.

        Reads only when there is nothing to sign: an idle log (or one whose every entry is
        already covered) writes nothing, however often this is called."""
        row = self.store.latest_checkpoint()
        size = self.size()
        if size == 0 or (row is not None and row[0] >= size):
            return None if row is None else open_checkpoint(row[1], self.verifier)
        issued = self.store.get_meta("checkpoint_time")  # shared by all workers on a store
        if issued is not None and time.time() - float(issued) < max_age:
            return self.latest_checkpoint()
        signed = self.issue_checkpoint()
        self.store.set_meta("checkpoint_time", repr(time.time()))
        return signed

    def proof_bundle(self, index: int, since: int | None = None) -> ProofBundle:
        """Everything a verifier needs offline: body, leaf, inclusion proof, checkpoint; with
        ``since``, also a consistency proof from that earlier tree size (and the checkpoint
        the log signed at that size, if any), so a verifier remembering it can relate the two
        offline."""
        stored = self.get(index)
        cp = self.latest_checkpoint()
        if cp is None or cp.checkpoint.size <= index or (since and cp.checkpoint.size < since):
            cp = self.issue_checkpoint()
        size = cp.checkpoint.size
        consistency = None
        if since is not None:
            if not 0 < since <= size:
                raise InputError(
                    f"cannot prove consistency from size {since}: the checkpoint is size {size}"
                )
            old = self.checkpoint_at(since)
            consistency = ConsistencyProof(
                since,
                self.consistency_proof(since, size),
                None if old is None else old.serialize(),
            )
        return ProofBundle(
            log_vkey=self.vkey,
            index=index,
            leaf=stored.leaf,
            body=stored.body,
            tree_size=size,
            inclusion=self.inclusion_proof(index, size),
            checkpoint=cp.serialize(),
            consistency=consistency,
        )


def _pem(public_key: Any) -> str:
    from glassbox.sign import public_pem

    return public_pem(public_key).decode()
