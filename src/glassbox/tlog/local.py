"""The embedded log (SQLite under the user's data directory) and per-log client state.

Offline first: ``glassbox log add`` with no ``--log`` URL writes here, with a log key created on
first use. ``SeenCheckpoints`` is the client's memory of the largest checkpoint it has verified
for each log, so the next one it sees must be provably consistent with it (a log that shows a
user a different history is caught the second time that user looks).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from glassbox.errors import InputError
from glassbox.paths import data_dir
from glassbox.tlog.checkpoint import Checkpoint, SignedCheckpoint, check_same_history
from glassbox.tlog.log import Cosigner, TransparencyLog
from glassbox.tlog.note import ALG_ED25519, Signer, Verifier, parse_vkey
from glassbox.tlog.sqlite_store import immediate
from glassbox.tlog.store import open_store


def local_log_dir() -> Path:
    path = data_dir() / "log"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_or_create_signer(key_path: Path, origin: str | None = None) -> Signer:
    """Read an skey file, or create one (mode 0600) with a fresh Ed25519 key."""
    if key_path.exists():
        try:
            signer = Signer.from_skey(key_path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{key_path}: cannot read log key ({exc})") from None
        if signer.alg != ALG_ED25519:
            raise InputError(f"{key_path}: a log key must be an Ed25519 note key (type 0x01)")
        if origin is not None and origin != signer.name:
            raise InputError(f"{key_path}: key is for origin {signer.name!r}, not {origin!r}")
        return signer
    signer = Signer.generate(origin or f"glassbox.local/{secrets.token_hex(6)}")
    key_path.parent.mkdir(parents=True, exist_ok=True)
    write_signer(signer, key_path)
    return signer


def write_signer(signer: Signer, key_path: Path) -> None:
    """Write the skey (mode 0600, ``O_EXCL`` so no race clobbers a key) and ``.vkey`` beside it."""
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"{key_path}: exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(signer.skey + "\n")
    key_path.with_suffix(".vkey").write_text(signer.vkey + "\n")


def open_log(
    store_url: str | None = None,
    key_path: str | Path | None = None,
    *,
    origin: str | None = None,
    cosigners: list[Cosigner] | None = None,
    read_only: bool = False,
    busy_timeout: float | None = None,
) -> TransparencyLog:
    """Open (creating on first use) a log. Defaults: the embedded SQLite log and its key.

    ``read_only``: what commands that only read a log use. Nothing is created or written (no
    key, no database, no settings); without the key file the log is opened with the public
    key recorded in the store, so a copy of a log can be read and proven from anywhere. A
    read-only log that must sign a new checkpoint does it through a writable open of the
    same store, only then (``TransparencyLog.issue_checkpoint``). ``busy_timeout``: seconds
    to wait for a lock held elsewhere before failing (``StoreError``, kind ``locked``)."""
    base = local_log_dir()
    url = store_url or f"sqlite:///{base / 'log.db'}"
    key = Path(key_path) if key_path else base / "log.skey"
    if not read_only:
        return TransparencyLog(
            open_store(url, busy_timeout=busy_timeout),
            load_or_create_signer(key, origin),
            cosigners=cosigners,
        )
    store = open_store(url, read_only=True, busy_timeout=busy_timeout)
    try:
        recorded = store.get_meta("vkey")
        signer: Signer | Verifier | None = None
        if key.exists():
            signer = load_or_create_signer(key, origin)
            if key_path is None and recorded is not None and recorded != signer.vkey:
                signer = None  # someone else's log, not this machine's: read it with its key
        if signer is None:
            if recorded is None:
                raise InputError(f"{store.where}: the log records no key and {key} does not exist")
            signer = parse_vkey(recorded)
        return TransparencyLog(store, signer, cosigners=cosigners)
    except BaseException:
        store.close()
        raise


class SeenCheckpoints:
    """Per-log memory of the largest verified checkpoint (SQLite, in the data directory)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else data_dir() / "tlog-seen.db"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " root BLOB NOT NULL, note TEXT NOT NULL)"
        )

    def get(self, origin: str) -> Checkpoint | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, root FROM seen WHERE origin = ?", (origin,)
            ).fetchone()
        return Checkpoint(origin, int(row[0]), bytes(row[1])) if row else None

    def update(self, signed: SignedCheckpoint, proof: list[bytes] | None) -> str:
        """Record ``signed`` if it extends what was seen; ``proof`` goes from the smaller
        checkpoint to the larger. Returns ``first``, ``same``, ``newer``, ``older`` or
        ``unverified`` (no proof to relate them; nothing recorded); a fork raises."""
        new = signed.checkpoint
        with self._lock, immediate(self._db):
            return self._update(new, signed, proof)

    def _update(self, new: Checkpoint, signed: SignedCheckpoint, proof: list[bytes] | None) -> str:
        row = self._db.execute(
            "SELECT size, root FROM seen WHERE origin = ?", (new.origin,)
        ).fetchone()
        if row is None or int(row[0]) == 0:
            self._store(new, signed)
            return "first"
        old = Checkpoint(new.origin, int(row[0]), bytes(row[1]))
        if old.size != new.size and proof is None:
            return "unverified"
        check_same_history(old, new, proof or [])
        if old.size == new.size:
            return "same"
        return "older" if new.size < old.size else self._store(new, signed)

    def _store(self, cp: Checkpoint, signed: SignedCheckpoint) -> str:
        self._db.execute(
            "INSERT INTO seen (origin, size, root, note) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root,"
            " note = excluded.note",
            (cp.origin, cp.size, cp.root, signed.serialize()),
        )
        return "newer"

    def close(self) -> None:
        self._db.close()


class ConsistencySource(Protocol):
    def consistency_proof(self, old: int, size: int) -> list[bytes]: ...


def remember_checkpoint(
    seen: SeenCheckpoints, source: ConsistencySource, signed: SignedCheckpoint
) -> str:
    """Relate ``signed`` to the last checkpoint seen for its log, fetching the consistency
    proof between them from ``source`` (a log or client), and remember the larger one. A log
    that rewrote or forked its history since raises ``VerificationError``."""
    prev = seen.get(signed.checkpoint.origin)
    proof = None
    if (
        prev is not None
        and prev.size
        and signed.checkpoint.size
        and prev.size != signed.checkpoint.size
    ):
        small, large = sorted((prev.size, signed.checkpoint.size))
        proof = source.consistency_proof(small, large)
    return seen.update(signed, proof)
