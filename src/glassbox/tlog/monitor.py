"""``glassbox log monitor``: follow a log, prove it append-only, report watched entries.

A producer runs a monitor on their own key and model names to learn of any release made with a
stolen key. The monitor trusts nothing the log serves: each checkpoint must be signed by the log
key and consistent with every earlier one it saw (checked against the latest, which by
induction covers every pair; all are kept), and it re-hashes every entry it downloads, so the
root of the leaves must equal the signed root. State is persisted, so a restart resumes.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from glassbox.digest.merkle import leaf_hash
from glassbox.errors import InputError, VerificationError
from glassbox.tlog.checkpoint import Checkpoint, SignedCheckpoint, check_same_history
from glassbox.tlog.log import StoredEntry
from glassbox.tlog.sqlite_store import immediate
from glassbox.tlog.tree import RightEdge

CHUNK = 1000


class LogSource(Protocol):
    """What a monitor reads: the embedded log or the HTTP client."""

    origin: str
    vkey: str

    def latest_checkpoint(self) -> SignedCheckpoint | None: ...

    def consistency_proof(self, old: int, size: int) -> list[bytes]: ...

    def entries(self, start: int, end: int) -> list[StoredEntry]: ...


@dataclass
class Match:
    index: int
    reason: str
    summary: dict[str, Any]


@dataclass
class MonitorReport:
    origin: str
    size: int
    previous_size: int
    new_entries: int
    matches: list[Match] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "previous_size": self.previous_size,
            "new_entries": self.new_entries,
            "matches": [m.__dict__ for m in self.matches],
        }


class Monitor:
    def __init__(
        self,
        source: LogSource,
        state_path: str | Path,
        *,
        watch_keys: list[str] | None = None,
        watch_names: list[str] | None = None,
    ) -> None:
        self.source = source
        self.origin = source.origin
        self.watch_keys = {k.lower() for k in (watch_keys or [])}
        self.watch_names = set(watch_names or [])
        self._db = sqlite3.connect(Path(state_path), isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS monitor_checkpoint (origin TEXT NOT NULL,"
            " size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,"
            " PRIMARY KEY (origin, size))"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS monitor_state (origin TEXT PRIMARY KEY,"
            " next_index INTEGER NOT NULL, edge TEXT NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS monitor_key (origin TEXT PRIMARY KEY, vkey TEXT NOT NULL)"
        )
        self._db.execute(
            "INSERT OR IGNORE INTO monitor_key (origin, vkey) VALUES (?, ?)",
            (self.origin, source.vkey),
        )
        (pinned,) = self._db.execute(
            "SELECT vkey FROM monitor_key WHERE origin = ?", (self.origin,)
        ).fetchone()
        if pinned != source.vkey:
            raise VerificationError(
                f"log {self.origin} now signs with {source.vkey}; this monitor pinned {pinned}"
            )

    def close(self) -> None:
        self._db.close()

    def _latest_seen(self) -> tuple[int, bytes] | None:
        row = self._db.execute(
            "SELECT size, root FROM monitor_checkpoint WHERE origin = ? ORDER BY size DESC LIMIT 1",
            (self.origin,),
        ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def _check_consistency(self, signed: SignedCheckpoint) -> None:
        cp = signed.checkpoint
        seen = self._latest_seen()
        if seen is None:
            return
        size, root = seen
        same = self._db.execute(
            "SELECT root FROM monitor_checkpoint WHERE origin = ? AND size = ?",
            (self.origin, cp.size),
        ).fetchone()
        if same is not None and bytes(same[0]) != cp.root:
            raise VerificationError(
                f"log {self.origin} signed two different trees of size {cp.size}"
            )
        if cp.size:
            check_same_history(
                Checkpoint(self.origin, size, root), cp, self.source.consistency_proof
            )

    def poll(self) -> MonitorReport:
        signed = self.source.latest_checkpoint()
        seen = self._latest_seen()
        previous = seen[0] if seen else 0
        if signed is None:
            return MonitorReport(self.origin, previous, previous, 0)
        cp = signed.checkpoint
        self._check_consistency(signed)
        row = self._db.execute(
            "SELECT next_index, edge FROM monitor_state WHERE origin = ?", (self.origin,)
        ).fetchone()
        start = int(row[0]) if row else 0
        edge = RightEdge(start, [bytes.fromhex(h) for h in json.loads(row[1])] if row else [])
        report = MonitorReport(self.origin, cp.size, previous, max(0, cp.size - start))
        while edge.size < cp.size:
            end = min(cp.size, edge.size + CHUNK)
            entries = self.source.entries(edge.size, end)
            if [e.index for e in entries] != list(range(edge.size, end)):
                raise VerificationError(
                    f"log {self.origin} did not serve entries [{edge.size}, {end})"
                )
            for e in entries:
                edge.append(leaf_hash(e.leaf))
                self._inspect(e, report)
        if edge.size == cp.size and edge.root() != cp.root:
            raise VerificationError(
                f"log {self.origin}: the entries it serves do not hash to its signed root at"
                f" size {cp.size} (an entry or hash was changed)"
            )
        with immediate(self._db):
            self._db.execute(
                "INSERT OR IGNORE INTO monitor_checkpoint (origin, size, root, note)"
                " VALUES (?,?,?,?)",
                (self.origin, cp.size, cp.root, signed.serialize()),
            )
            if edge.size >= start:
                self._db.execute(
                    "INSERT INTO monitor_state (origin, next_index, edge) VALUES (?, ?, ?)"
                    " ON CONFLICT(origin) DO UPDATE SET next_index = excluded.next_index,"
                    " edge = excluded.edge",
                    (self.origin, edge.size, json.dumps([h.hex() for h in edge.hashes])),
                )
        return report

    def _inspect(self, stored: StoredEntry, report: MonitorReport) -> None:
        if stored.body is None:
            return
        try:
            entry = stored.entry()
        except (InputError, VerificationError) as exc:
            raise VerificationError(
                f"log {self.origin} entry {stored.index}: stored body is not a valid signed"
                f" entry ({exc})"
            ) from None
        if entry.leaf != stored.leaf:
            raise VerificationError(
                f"log {self.origin} entry {stored.index}: body does not match the leaf"
            )
        # A watched key may be given as the short id every command prints (a prefix).
        if any(entry.key_id.startswith(key) for key in self.watch_keys):
            report.matches.append(Match(stored.index, f"key {entry.key_id}", entry.summary()))
        # The names search finds: subject names and the release name a build records.
        for name in sorted(v for k, v in entry.terms() if k == "name"):
            if name in self.watch_names:
                report.matches.append(Match(stored.index, f"name {name}", entry.summary()))
