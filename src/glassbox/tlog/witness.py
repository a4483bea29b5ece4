"""A c2sp.org/tlog-witness witness, its client, and client-side k-of-n witness policies.

A log can show different users different histories; a witness makes that detectable by
cosigning a checkpoint only if it is consistent with the last checkpoint it cosigned for that
log. Clients that require k independent cosignatures then know that at least k parties saw the
same (append-only) history. The witness state (latest size and root per origin) is kept in
SQLite and the check-and-update is one transaction, so two racing requests can never roll the
recorded state back (the race the spec warns about).
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glassbox.digest.merkle import ProofError, verify_consistency
from glassbox.errors import GlassboxError, VerificationError
from glassbox.tlog.checkpoint import Checkpoint, SignedCheckpoint
from glassbox.tlog.note import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteError,
    NoteSignature,
    NoteVerificationError,
    Signer,
    Verifier,
    parse_note,
    parse_vkey,
)
from glassbox.tlog.sqlite_store import immediate

MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 << 10


class WitnessError(GlassboxError):
    """A refused add-checkpoint request, with the HTTP status the protocol prescribes."""

    def __init__(self, status: int, message: str, latest_size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.latest_size = latest_size


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: list[bytes]
    note: bytes


def _parse_size(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (text != "0" and text[0] == "0"):
        raise WitnessError(400, f"{what} {text[:30]!r} is not a decimal size")
    if len(text) > 19:
        raise WitnessError(400, f"{what} is out of range")
    return int(text)


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse ``old N\\n`` + proof lines + ``\\n`` + checkpoint note (tlog-witness)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise WitnessError(400, "request body is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessError(400, "request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessError(400, "request has no empty line before the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise WitnessError(400, "request must start with an 'old <size>' line")
    old = _parse_size(lines[0][4:], "old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessError(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise WitnessError(400, "a consistency proof line is not base64") from None
        if len(value) != 32:
            raise WitnessError(400, "a consistency proof hash is not 32 bytes")
        proof.append(value)
    return AddCheckpointRequest(old, proof, note.encode())


def format_add_checkpoint(old_size: int, proof: list[bytes], note: str) -> bytes:
    lines = [f"old {old_size}"] + [base64.b64encode(p).decode() for p in proof]
    return ("\n".join(lines) + "\n\n" + note).encode()


class Witness:
    """Cosigns checkpoints of the logs it trusts, never rolling back or forking."""

    def __init__(self, state_path: str | Path, signer: Signer, logs: list[Verifier]) -> None:
        if signer.alg != ALG_COSIGNATURE_V1:
            raise NoteError("a witness key must be a tlog-cosignature (type 0x04) key")
        self.signer = signer
        self.logs = {v.name: v for v in logs}
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            Path(state_path), isolation_level=None, check_same_thread=False, timeout=60
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS witness_state (origin TEXT PRIMARY KEY,"
            " size INTEGER NOT NULL, root BLOB NOT NULL)"
        )

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, root FROM witness_state WHERE origin = ?", (origin,)
            ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def add_checkpoint(self, body: bytes) -> str:
        """Handle one add-checkpoint request; return the cosignature line(s)."""
        req = parse_add_checkpoint(body)
        try:
            note = parse_note(req.note)
            cp = Checkpoint.parse(note.text)
        except NoteError as exc:
            raise WitnessError(400, f"malformed checkpoint: {exc}") from None
        log_key = self.logs.get(cp.origin)
        if log_key is None:
            raise WitnessError(404, f"unknown log origin {cp.origin[:100]!r}")
        try:
            if not note.verified_by([log_key]):
                raise WitnessError(403, "checkpoint is not signed by the log's key")
        except NoteVerificationError:
            raise WitnessError(403, "checkpoint signature by the log's key is invalid") from None
        if req.old_size > cp.size:
            raise WitnessError(400, f"old size {req.old_size} is larger than size {cp.size}")
        with self._lock, immediate(self._db):
            return self._check_and_record(cp, req, note)

    def _check_and_record(self, cp: Checkpoint, req: AddCheckpointRequest, note: Note) -> str:
        row = self._db.execute(
            "SELECT size, root FROM witness_state WHERE origin = ?", (cp.origin,)
        ).fetchone()
        size, root = (int(row[0]), bytes(row[1])) if row else (0, b"")
        if req.old_size != size:
            raise WitnessError(
                409, f"old size {req.old_size} is not the latest cosigned size {size}", size
            )
        if size == 0:
            if req.proof:
                raise WitnessError(422, "consistency proof from size 0 must be empty")
        elif cp.size == size:
            if cp.root != root or req.proof:
                raise WitnessError(
                    409, f"fork: a different root for the cosigned size {size}", size
                )
        else:
            try:
                verify_consistency(size, cp.size, req.proof, root, cp.root)
            except ProofError as exc:
                raise WitnessError(422, f"consistency proof does not verify: {exc}") from None
        self._db.execute(
            "INSERT INTO witness_state (origin, size, root) VALUES (?, ?, ?)"
            " ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root",
            (cp.origin, cp.size, cp.root),
        )
        return self.signer.sign(note.text).line()

    def close(self) -> None:
        self._db.close()


def parse_cosignature_lines(body: str) -> list[NoteSignature]:
    """The witness's response: note signature lines only (parsed with the note parser)."""
    if not body.endswith("\n") or not body.startswith("\u2014 "):
        raise NoteError("witness response is not a list of signature lines")
    return list(parse_note("x\n\n" + body).signatures)


@dataclass(frozen=True)
class WitnessPolicy:
    """Require at least ``k`` of ``witnesses`` to have cosigned a checkpoint."""

    witnesses: tuple[Verifier, ...]
    k: int

    @classmethod
    def from_vkeys(cls, vkeys: list[str], k: int | None = None) -> WitnessPolicy:
        verifiers = tuple(parse_vkey(v) for v in vkeys)
        for v in verifiers:
            if v.alg != ALG_COSIGNATURE_V1:
                raise NoteError(f"witness key {v.name} is not a tlog-cosignature key")
        need = len(verifiers) if k is None else k
        if not 0 <= need <= len(verifiers):
            raise NoteError(f"cannot require {need} of {len(verifiers)} witnesses")
        return cls(verifiers, need)

    def check(self, signed: SignedCheckpoint) -> list[str]:
        """Names of the witnesses whose cosignatures verify; raise unless at least ``k``."""
        good: list[str] = []
        for verifier in self.witnesses:
            try:
                if signed.note.verified_by([verifier]):
                    good.append(verifier.name)
            except NoteVerificationError:
                continue  # a bad cosignature counts as none; k decides
        if len(good) < self.k:
            raise VerificationError(
                f"checkpoint has {len(good)} valid witness cosignatures, policy needs {self.k}"
                f" of {len(self.witnesses)}"
            )
        return good

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "witnesses": [v.vkey for v in self.witnesses]}


class WitnessCosigner:
    """The log side of tlog-witness: submit a new checkpoint with a consistency proof.

    ``submit`` sends an add-checkpoint body and returns ``(status, response text)``; it is an
    HTTP POST for a remote witness or a direct call for an in-process one. The log remembers the
    size each witness last cosigned; on 409 it learns the witness's size and retries once.
    """

    def __init__(self, verifier: Verifier, submit: Any) -> None:
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise NoteError(f"witness key {verifier.name} is not a tlog-cosignature key")
        self.verifier = verifier
        self.submit = submit

    @classmethod
    def local(cls, witness: Witness) -> WitnessCosigner:
        def submit(body: bytes) -> tuple[int, str]:
            try:
                return 200, witness.add_checkpoint(body)
            except WitnessError as exc:
                size = "" if exc.latest_size is None else f"{exc.latest_size}\n"
                return exc.status, size or str(exc)

        return cls(witness.signer.verifier, submit)

    @classmethod
    def http(cls, verifier: Verifier, url: str, timeout: float = 10.0) -> WitnessCosigner:
        import httpx

        endpoint = url.rstrip("/") + "/add-checkpoint"

        def submit(body: bytes) -> tuple[int, str]:
            try:
                resp = httpx.post(endpoint, content=body, timeout=timeout)
            except httpx.HTTPError as exc:
                raise OSError(f"witness {verifier.name} at {url}: {exc}") from None
            return resp.status_code, resp.text

        return cls(verifier, submit)

    def __call__(self, log: Any, signed: SignedCheckpoint) -> list[NoteSignature]:
        key = f"witness_size:{self.verifier.name}+{self.verifier.key_id:08x}"
        known = log.store.get_meta(key)
        old = int(known) if known is not None else 0
        size = signed.checkpoint.size
        for _attempt in range(2):
            old = min(old, size)
            proof = log.consistency_proof(old, size) if old else []
            status, text = self.submit(format_add_checkpoint(old, proof, signed.serialize()))
            if status == 409 and text.strip().isdigit() and int(text.strip()) != old:
                old = int(text.strip())
                continue
            break
        if status != 200:
            raise VerificationError(
                f"witness {self.verifier.name} refused checkpoint {size}: {status} {text[:200]}"
            )
        sigs = parse_cosignature_lines(text)
        note = signed.note.with_signatures(sigs)
        mine = [s for s in sigs if (s.name, s.key_id) == (self.verifier.name, self.verifier.key_id)]
        if not mine or not Note(note.text, tuple(mine)).verified_by([self.verifier]):
            raise VerificationError(f"witness {self.verifier.name} sent no valid cosignature")
        log.store.set_meta(key, str(size))
        return mine
