"""The hub's metadata in SQL: namespaces, publisher keys, tokens, releases, mirrors.

Everything a hub process knows lives here (and in the transparency log's tables, ``tlog_*``,
in the same database), never in process memory, so several stateless hub processes can serve
one database: SQLite for one machine, PostgreSQL (``postgresql://...`` or a libpq DSN) for
more. Rate-limit counters are rows too, so a limit holds across processes.

Tokens are stored as SHA-256 hashes: a database leak does not hand out upload rights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glassbox.errors import InputError

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hub_key (key_id TEXT PRIMARY KEY, org TEXT NOT NULL,"
    " pem TEXT NOT NULL, label TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS hub_key_org ON hub_key (org)",
    "CREATE TABLE IF NOT EXISTS hub_token (token_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL,"
    " created DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hub_release (id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " version TEXT NOT NULL, org TEXT NOT NULL, key_id TEXT NOT NULL, root_digest TEXT NOT NULL,"
    " hosted INTEGER NOT NULL, signature TEXT NOT NULL, log_index {BIGINT} NOT NULL,"
    " verdict TEXT NOT NULL, checks TEXT NOT NULL, audit TEXT, created DOUBLE PRECISION NOT NULL,"
    " UNIQUE (name, version))",
    "CREATE INDEX IF NOT EXISTS hub_release_key ON hub_release (key_id)",
    "CREATE TABLE IF NOT EXISTS hub_file (release_id TEXT NOT NULL, path TEXT NOT NULL,"
    " size {BIGINT} NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (release_id, path))",
    "CREATE INDEX IF NOT EXISTS hub_file_sha ON hub_file (sha256)",
    "CREATE TABLE IF NOT EXISTS hub_evidence (release_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " kind TEXT NOT NULL, predicate_type TEXT, log_index {BIGINT}, status TEXT NOT NULL,"
    " detail TEXT NOT NULL, document TEXT NOT NULL, PRIMARY KEY (release_id, seq))",
    "CREATE TABLE IF NOT EXISTS hub_rate (bucket TEXT NOT NULL, win {BIGINT} NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY (bucket, win))",
    "CREATE TABLE IF NOT EXISTS hub_claim (name TEXT NOT NULL, version TEXT NOT NULL,"
    " created DOUBLE PRECISION NOT NULL, owner TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (name, version))",
    # Every log entry a publish writes, recorded under its claim *before* it is appended: an
    # entry that never became part of a release is then known as the hub's own (a publish
    # that did not complete), not taken for a stolen key's (``interrupted``: when it stopped).
    "CREATE TABLE IF NOT EXISTS hub_claim_entry (leaf_hash TEXT NOT NULL, name TEXT NOT NULL,"
    " version TEXT NOT NULL, owner TEXT NOT NULL, logged DOUBLE PRECISION NOT NULL,"
    " interrupted DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS hub_claim_entry_leaf ON hub_claim_entry (leaf_hash)",
    "CREATE INDEX IF NOT EXISTS hub_claim_entry_name ON hub_claim_entry (name, version)",
    "CREATE TABLE IF NOT EXISTS hub_scan (release_id TEXT PRIMARY KEY, scanned DOUBLE PRECISION"
    " NOT NULL, report TEXT NOT NULL)",
    # Every re-scan of a release (``glassbox hub rescan``), kept: its verdict at the threshold
    # used, the verdict before it, and the hub's signed scan attestation with its log entry
    # (``leaf_hash`` is recorded before the entry is appended, as for a publish's entries).
    "CREATE TABLE IF NOT EXISTS hub_rescan (id TEXT PRIMARY KEY, release_id TEXT NOT NULL,"
    " scanned DOUBLE PRECISION NOT NULL, fail_on TEXT NOT NULL, verdict TEXT NOT NULL,"
    " previous TEXT NOT NULL, previous_at DOUBLE PRECISION NOT NULL, report TEXT NOT NULL,"
    " attestation TEXT, leaf_hash TEXT, log_index {BIGINT})",
    "CREATE INDEX IF NOT EXISTS hub_rescan_release ON hub_rescan (release_id, scanned)",
    "CREATE INDEX IF NOT EXISTS hub_rescan_leaf ON hub_rescan (leaf_hash)",
    "CREATE TABLE IF NOT EXISTS hub_mirror (origin TEXT PRIMARY KEY, vkey TEXT NOT NULL,"
    " source TEXT NOT NULL, size {BIGINT} NOT NULL, checkpoint TEXT NOT NULL,"
    " updated DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hub_mirror_tile (origin TEXT NOT NULL, path TEXT NOT NULL,"
    " data {BLOB} NOT NULL, PRIMARY KEY (origin, path))",
    "CREATE TABLE IF NOT EXISTS hub_mirror_body (origin TEXT NOT NULL, idx {BIGINT} NOT NULL,"
    " body {BLOB} NOT NULL, PRIMARY KEY (origin, idx))",
    "CREATE TABLE IF NOT EXISTS hub_fork (origin TEXT NOT NULL, seen DOUBLE PRECISION NOT NULL,"
    " first TEXT NOT NULL, second TEXT NOT NULL, detail TEXT NOT NULL)",
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    org: str
    pem: str
    label: str


@dataclass(frozen=True)
class ReleaseRow:
    id: str
    name: str
    version: str
    org: str
    key_id: str
    root_digest: str
    hosted: bool
    signature: dict[str, Any]
    log_index: int
    verdict: str
    checks: dict[str, Any]
    audit: dict[str, Any] | None
    created: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "key_id": self.key_id,
            "root_digest": self.root_digest,
            "hosted": self.hosted,
            "log_index": self.log_index,
            "verdict": self.verdict,
            "checks": self.checks,
            "created": self.created,
        }


@dataclass(frozen=True)
class FileRow:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ClaimEntry:
    """A log entry the hub wrote for a publish of ``name@version`` that has not committed:
    still in progress (``interrupted`` is ``None`` and the claim is held) or stopped."""

    name: str
    version: str
    owner: str
    logged: float
    interrupted: float | None


@dataclass(frozen=True)
class RescanRow:
    """One re-scan of a release: its verdict (``fail`` when a finding reached ``fail_on``),
    the verdict before it (the previous re-scan's, or the publish gate's when
    ``previous_rescan`` is false) and the hub's signed attestation with its log entry."""

    id: str
    release_id: str
    scanned: float
    fail_on: str
    verdict: str
    previous: str
    previous_at: float
    previous_rescan: bool
    report: dict[str, Any]
    attestation: dict[str, Any] | None
    log_index: int | None

    @property
    def changed(self) -> str:
        """``newly flagged``, ``no longer flagged`` or ``""``."""
        if self.verdict == self.previous:
            return ""
        return "newly flagged" if self.verdict == "fail" else "no longer flagged"


@dataclass(frozen=True)
class EvidenceRow:
    seq: int
    kind: str
    predicate_type: str | None
    log_index: int | None
    status: str  # "pass" | "fail" | "unknown"
    detail: str
    document: str


class HubDB:
    """One database URL: ``sqlite:///path`` / a path, or a PostgreSQL URL/DSN."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://")) or (
            "dbname=" in url or "host=" in url
        )
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        types = {"BIGINT": "BIGINT", "BLOB": "BYTEA" if self.postgres else "BLOB"}
        with self.transaction() as cur:
            if self.postgres:
                cur.execute("SELECT pg_advisory_xact_lock(7365722)")
            for sql in _SCHEMA:
                cur.execute(sql.format(**types))
            self._migrate(cur)

    def _migrate(self, cur: Any) -> None:
        """Changes since a table was first created: claims gained an owner; re-scans, once
        one row per release in ``hub_scan``, are kept in ``hub_rescan`` (moved over)."""
        for release_id, scanned, report in cur.execute(
            "SELECT release_id, scanned, report FROM hub_scan"
        ):
            verdict = "fail" if json.loads(report).get("blocking") else "pass"
            cur.execute(
                "INSERT INTO hub_rescan (id, release_id, scanned, fail_on, verdict, previous,"
                " previous_at, report) VALUES (?, ?, ?, 'high', ?, 'publish:pass', 0, ?)",
                (uuid.uuid4().hex, release_id, scanned, verdict, report),
            )
        cur.execute("DELETE FROM hub_scan")
        if self.postgres:
            cur.execute(
                "ALTER TABLE hub_claim ADD COLUMN IF NOT EXISTS owner TEXT NOT NULL DEFAULT ''"
            )
            return
        columns = {row[1] for row in cur.execute("PRAGMA table_info(hub_claim)")}
        if "owner" not in columns:
            cur.execute("ALTER TABLE hub_claim ADD COLUMN owner TEXT NOT NULL DEFAULT ''")

    # -- connections ---------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.postgres:
            try:
                import psycopg
            except ImportError:
                raise InputError(
                    "PostgreSQL needs psycopg: pip install 'glassbox[postgres]'"
                ) from None
            try:
                return psycopg.connect(self.url, autocommit=True)
            except psycopg.Error as exc:
                raise InputError(f"cannot open the hub database: {exc}") from None
        path = self.url[len("sqlite://") :] if self.url.startswith("sqlite://") else self.url
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=60000")
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{path}: not a usable hub database ({exc})") from None
        return conn

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction; a cursor-like object whose ``execute`` takes ``?`` params."""
        conn = self._conn()
        cur = _Cursor(conn, self)
        if self.postgres:
            with conn.transaction():
                yield cur
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self._conn()
        cur = conn.execute(self._q(sql), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(Exception):  # a broken connection: best effort
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- namespaces, keys, tokens --------------------------------------------------------
    def add_key(self, org: str, pem: str, key_id: str, label: str = "") -> None:
        with self.transaction() as cur:
            rows = cur.execute("SELECT org FROM hub_key WHERE key_id = ?", (key_id,))
            if rows and rows[0][0] != org:
                raise InputError(f"key {key_id[:16]} already belongs to namespace {rows[0][0]!r}")
            if not rows:
                cur.execute(
                    "INSERT INTO hub_key (key_id, org, pem, label, created) VALUES (?, ?, ?, ?, ?)",
                    (key_id, org, pem, label, time.time()),
                )

    def keys(self, org: str | None = None) -> list[KeyRow]:
        if org is None:
            rows = self.query("SELECT key_id, org, pem, label FROM hub_key ORDER BY org, key_id")
        else:
            rows = self.query(
                "SELECT key_id, org, pem, label FROM hub_key WHERE org = ? ORDER BY key_id", (org,)
            )
        return [KeyRow(*r) for r in rows]

    def key(self, key_id: str) -> KeyRow | None:
        rows = self.query("SELECT key_id, org, pem, label FROM hub_key WHERE key_id = ?", (key_id,))
        return KeyRow(*rows[0]) if rows else None

    def new_token(self, key_id: str) -> str:
        if self.key(key_id) is None:
            raise InputError(f"no publisher key {key_id[:16]} on this hub")
        token = "gbx_" + secrets.token_urlsafe(32)
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO hub_token (token_hash, key_id, created) VALUES (?, ?, ?)",
                (hash_token(token), key_id, time.time()),
            )
        return token

    def token_key(self, token: str) -> KeyRow | None:
        rows = self.query(
            "SELECT k.key_id, k.org, k.pem, k.label FROM hub_token t JOIN hub_key k"
            " ON k.key_id = t.key_id WHERE t.token_hash = ?",
            (hash_token(token),),
        )
        return KeyRow(*rows[0]) if rows else None

    def hit_rate(self, bucket: str, window_s: int) -> int:
        """Count one request in ``bucket`` for the current window; return the count so far."""
        win = int(time.time()) // window_s
        with self.transaction() as cur:
            rows = cur.execute(
                "INSERT INTO hub_rate (bucket, win, n) VALUES (?, ?, 1) ON CONFLICT (bucket, win)"
                " DO UPDATE SET n = hub_rate.n + 1 RETURNING n",
                (bucket, win),
            )
            cur.execute("DELETE FROM hub_rate WHERE bucket = ? AND win < ?", (bucket, win - 1))
        return int(rows[0][0])

    # -- releases ------------------------------------------------------------------------
    def claim(self, name: str, version: str, owner: str = "") -> bool:
        """Reserve ``name@version`` before anything is logged for it, so two processes
        publishing the same release concurrently cannot both log it: ``False`` if taken.
        ``owner`` says who holds it (``glassbox.hub.recovery``), for clearing after a crash."""
        with self.transaction() as cur:
            rows = cur.execute(
                "INSERT INTO hub_claim (name, version, created, owner) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name, version) DO NOTHING RETURNING name",
                (name, version, time.time(), owner),
            )
        return bool(rows)

    def renew_claim(self, name: str, version: str, owner: str) -> None:
        """Extend the lease of a claim this owner still holds (a long publish's heartbeat)."""
        with self.transaction() as cur:
            cur.execute(
                "UPDATE hub_claim SET created = ? WHERE name = ? AND version = ? AND owner = ?",
                (time.time(), name, version, owner),
            )

    def claim_of(self, name: str, version: str) -> tuple[str, float] | None:
        rows = self.query(
            "SELECT owner, created FROM hub_claim WHERE name = ? AND version = ?", (name, version)
        )
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    def claims(self) -> list[tuple[str, str, str, float]]:
        rows = self.query("SELECT name, version, owner, created FROM hub_claim")
        return [(r[0], r[1], str(r[2]), float(r[3])) for r in rows]

    def drop_claim(self, name: str, version: str, owner: str, created: float) -> bool:
        """Delete a claim only if it is still exactly the one judged dead (not renewed, not
        taken over meanwhile)."""
        with self.transaction() as cur:
            rows = cur.execute(
                "DELETE FROM hub_claim WHERE name = ? AND version = ? AND owner = ?"
                " AND created = ? RETURNING name",
                (name, version, owner, created),
            )
            if rows:  # the owner's last sign of life: its claim's latest renewal
                _interrupt(cur, name, version, created, owner)
        return bool(rows)

    def unclaim(self, name: str, version: str) -> None:
        """Give up a claim whose publish failed in this process (what it logged stays in the
        log, now marked as a publish that did not complete)."""
        with self.transaction() as cur:
            cur.execute("DELETE FROM hub_claim WHERE name = ? AND version = ?", (name, version))
            _interrupt(cur, name, version, time.time())

    def note_claim_entries(
        self, name: str, version: str, owner: str, leaf_hashes: Sequence[str]
    ) -> None:
        """Record log entries (their RFC 9162 leaf hashes, hex) about to be appended for this
        owner's publish of ``name@version``; call before appending them."""
        now = time.time()
        with self.transaction() as cur:
            cur.executemany(
                "INSERT INTO hub_claim_entry (leaf_hash, name, version, owner, logged)"
                " VALUES (?, ?, ?, ?, ?)",
                [(h, name, version, owner, now) for h in leaf_hashes],
            )

    def claim_entry(self, leaf_hash: str) -> ClaimEntry | None:
        """Whether the hub wrote this log entry for a publish that has not committed."""
        rows = self.query(
            "SELECT name, version, owner, logged, interrupted FROM hub_claim_entry"
            " WHERE leaf_hash = ? ORDER BY logged LIMIT 1",
            (leaf_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return ClaimEntry(r[0], r[1], str(r[2]), float(r[3]), None if r[4] is None else float(r[4]))

    def insert_release(
        self, release: ReleaseRow, files: list[FileRow], evidence: list[EvidenceRow]
    ) -> bool:
        """Insert one release atomically; ``False`` if ``name@version`` already exists."""
        with self.transaction() as cur:
            exists = cur.execute(
                "SELECT 1 FROM hub_release WHERE name = ? AND version = ?",
                (release.name, release.version),
            )
            if exists:
                return False
            # This publish's entries are the release's now (earlier, interrupted tries stay).
            cur.execute(
                "DELETE FROM hub_claim_entry WHERE name = ? AND version = ?"
                " AND interrupted IS NULL",
                (release.name, release.version),
            )
            cur.execute(
                "INSERT INTO hub_release (id, name, version, org, key_id, root_digest, hosted,"
                " signature, log_index, verdict, checks, audit, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    release.id,
                    release.name,
                    release.version,
                    release.org,
                    release.key_id,
                    release.root_digest,
                    int(release.hosted),
                    json.dumps(release.signature, sort_keys=True),
                    release.log_index,
                    release.verdict,
                    json.dumps(release.checks, sort_keys=True),
                    None if release.audit is None else json.dumps(release.audit, sort_keys=True),
                    release.created,
                ),
            )
            cur.executemany(
                "INSERT INTO hub_file (release_id, path, size, sha256) VALUES (?, ?, ?, ?)",
                [(release.id, f.path, f.size, f.sha256) for f in files],
            )
            cur.executemany(
                "INSERT INTO hub_evidence (release_id, seq, kind, predicate_type, log_index,"
                " status, detail, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        release.id,
                        e.seq,
                        e.kind,
                        e.predicate_type,
                        e.log_index,
                        e.status,
                        e.detail,
                        e.document,
                    )
                    for e in evidence
                ],
            )
        return True

    _RELEASE_COLS = (
        "id, name, version, org, key_id, root_digest, hosted, signature, log_index, verdict,"
        " checks, audit, created"
    )

    def _releases(self, where: str, params: Sequence[Any]) -> list[ReleaseRow]:
        sql = f"SELECT {self._RELEASE_COLS} FROM hub_release {where}"  # noqa: S608 - fixed clauses
        rows = self.query(sql, params)
        out = []
        for r in rows:
            out.append(
                ReleaseRow(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    bool(r[6]),
                    json.loads(r[7]),
                    int(r[8]),
                    r[9],
                    json.loads(r[10]),
                    None if r[11] is None else json.loads(r[11]),
                    float(r[12]),
                )
            )
        return out

    def release(self, name: str, version: str) -> ReleaseRow | None:
        found = self._releases("WHERE name = ? AND version = ?", (name, version))
        return found[0] if found else None

    def release_by_root(self, root_digest: str) -> ReleaseRow | None:
        """The first release of these exact bytes (``sha256:<hex>``), to link a base model."""
        found = self._releases("WHERE root_digest = ? ORDER BY created LIMIT 1", (root_digest,))
        return found[0] if found else None

    def releases_of(self, name: str) -> list[ReleaseRow]:
        return self._releases("WHERE name = ? ORDER BY created DESC", (name,))

    def releases_by_key(self, key_id: str) -> list[ReleaseRow]:
        return self._releases("WHERE key_id = ? ORDER BY created DESC", (key_id,))

    def all_releases(self, limit: int = 100_000) -> list[ReleaseRow]:
        return self._releases("ORDER BY created DESC LIMIT ?", (limit,))

    def search(self, text: str, limit: int = 100) -> list[ReleaseRow]:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._releases(
            "WHERE name LIKE ? ESCAPE '\\' OR root_digest = ? ORDER BY name, created DESC LIMIT ?",
            (pattern, text, limit),
        )

    def files(self, release_id: str) -> list[FileRow]:
        rows = self.query(
            "SELECT path, size, sha256 FROM hub_file WHERE release_id = ? ORDER BY path",
            (release_id,),
        )
        return [FileRow(r[0], int(r[1]), r[2]) for r in rows]

    def blob_known(self, sha256: str) -> bool:
        return bool(self.query("SELECT 1 FROM hub_file WHERE sha256 = ? LIMIT 1", (sha256,)))

    def evidence(self, release_id: str) -> list[EvidenceRow]:
        rows = self.query(
            "SELECT seq, kind, predicate_type, log_index, status, detail, document"
            " FROM hub_evidence WHERE release_id = ? ORDER BY seq",
            (release_id,),
        )
        return [
            EvidenceRow(int(r[0]), r[1], r[2], None if r[3] is None else int(r[3]), *r[4:])
            for r in rows
        ]

    def evidence_indexes(self, kind: str) -> set[int]:
        """The log entries of every piece of evidence of one kind (the hub's scans)."""
        rows = self.query(
            "SELECT log_index FROM hub_evidence WHERE kind = ? AND log_index IS NOT NULL", (kind,)
        )
        return {int(r[0]) for r in rows}

    def counts(self) -> dict[str, int]:
        out = {}
        for table in ("hub_release", "hub_file", "hub_evidence", "hub_key"):
            out[table] = int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608
        return out

    def put_scan(
        self,
        release_id: str,
        report: dict[str, Any],
        *,
        fail_on: str = "high",
        published: float = 0.0,
        attestation: dict[str, Any] | None = None,
        leaf_hash: str | None = None,
    ) -> RescanRow:
        """Record a re-scan (``report`` carries ``blocking``: the findings at ``fail_on``)
        with the verdict it replaces: the previous re-scan's, else the publish gate's pass
        (at ``published``). With an attestation, ``leaf_hash`` is its log entry's, recorded
        before it is appended (``rescan_logged`` adds the index once it is)."""
        with self.transaction() as cur:
            rows = cur.execute(
                "SELECT verdict, scanned FROM hub_rescan WHERE release_id = ?"
                " ORDER BY scanned DESC LIMIT 1",
                (release_id,),
            )
            previous, previous_at = (str(rows[0][0]), float(rows[0][1])) if rows else ("", 0.0)
            row = RescanRow(
                uuid.uuid4().hex,
                release_id,
                max(time.time(), previous_at + 1e-6),
                fail_on,
                "fail" if report.get("blocking") else "pass",
                previous or "pass",
                previous_at if previous else published,
                bool(previous),
                report,
                attestation,
                None,
            )
            cur.execute(
                "INSERT INTO hub_rescan (id, release_id, scanned, fail_on, verdict, previous,"
                " previous_at, report, attestation, leaf_hash, log_index)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    row.id,
                    release_id,
                    row.scanned,
                    fail_on,
                    row.verdict,
                    previous or "publish:pass",
                    row.previous_at,
                    json.dumps(report, sort_keys=True),
                    None if attestation is None else json.dumps(attestation, sort_keys=True),
                    leaf_hash,
                ),
            )
        return row

    def rescan_logged(self, rescan_id: str, log_index: int) -> None:
        with self.transaction() as cur:
            cur.execute("UPDATE hub_rescan SET log_index = ? WHERE id = ?", (log_index, rescan_id))

    def latest_scan(self, release_id: str) -> RescanRow | None:
        """The most recent re-scan of a release, ``None`` if it was never re-scanned."""
        rows = self.query(
            "SELECT id, release_id, scanned, fail_on, verdict, previous, previous_at, report,"
            " attestation, log_index FROM hub_rescan WHERE release_id = ?"
            " ORDER BY scanned DESC LIMIT 1",
            (release_id,),
        )
        if not rows:
            return None
        r = rows[0]
        previous = str(r[5])
        return RescanRow(
            r[0],
            r[1],
            float(r[2]),
            r[3],
            r[4],
            previous.removeprefix("publish:"),
            float(r[6]),
            not previous.startswith("publish:"),
            json.loads(r[7]),
            None if r[8] is None else json.loads(r[8]),
            None if r[9] is None else int(r[9]),
        )

    def is_rescan_entry(self, leaf_hash: str) -> bool:
        """Whether the hub recorded this log entry as one of its re-scan attestations."""
        return bool(
            self.query("SELECT 1 FROM hub_rescan WHERE leaf_hash = ? LIMIT 1", (leaf_hash,))
        )

    def rescan_indexes(self) -> set[int]:
        rows = self.query("SELECT log_index FROM hub_rescan WHERE log_index IS NOT NULL")
        return {int(r[0]) for r in rows}

    # -- forks seen (mirrors and gossip) -------------------------------------------------
    def record_fork(self, origin: str, first: str, second: str, detail: str) -> None:
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO hub_fork (origin, seen, first, second, detail) VALUES (?, ?, ?, ?, ?)",
                (origin, time.time(), first, second, detail),
            )

    def forks(self) -> list[tuple[str, float, str, str, str]]:
        rows = self.query("SELECT origin, seen, first, second, detail FROM hub_fork ORDER BY seen")
        return [(r[0], float(r[1]), r[2], r[3], r[4]) for r in rows]


def _interrupt(cur: Any, name: str, version: str, when: float, owner: str | None = None) -> None:
    """Mark the entries a publish of ``name@version`` logged as a publish that did not
    complete, stopped at ``when`` (only ``owner``'s, when given)."""
    sql = (
        "UPDATE hub_claim_entry SET interrupted = ? WHERE name = ? AND version = ?"
        " AND interrupted IS NULL"
    )
    params: tuple[Any, ...] = (when, name, version)
    if owner is not None:
        sql += " AND owner = ?"
        params += (owner,)
    cur.execute(sql, params)


class _Cursor:
    """``execute`` with ``?`` placeholders on either dialect, returning the rows."""

    def __init__(self, conn: Any, db: HubDB) -> None:
        self.conn = conn
        self.db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cur = self.conn.execute(self.db._q(sql), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.db.postgres:
            with self.conn.cursor() as c:
                c.executemany(self.db._q(sql), [tuple(r) for r in rows])
        else:
            self.conn.executemany(sql, [tuple(r) for r in rows])
