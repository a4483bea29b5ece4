"""Storage behind the log: one interface, one SQL implementation, two dialects.

The tree lives in one row per leaf: the compact leaf bytes, the digest of its full entry, and
``nodes``, the hashes of the interior subtrees that this leaf completes (leaf ``i`` completes
the subtrees at levels 1..t, where t is the number of trailing one bits of ``i``; on average
one hash per leaf). So every complete subtree hash is stored exactly once, appending costs one
row insert per entry, and the subtree at (level, index) is found in row
``node_row(level, index)``. Each row also keeps ``hkey`` (the first 8 bytes of the leaf hash)
so a writer can rebuild its in-memory duplicate index with one sequential scan; there is
deliberately no database index on it (see ``dedup``).

Nothing is ever updated in place except the tree size, which moves only inside the same
transaction that adds the rows it covers; that is what makes an acknowledged entry durable and
a crashed batch invisible.

Read methods may be called from any thread (each thread gets its own connection); the write
methods (``begin_append`` ... ``commit``) are called by one sequencer thread at a time, under
``write_lock``.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from glassbox.digest.merkle import leaf_hash
from glassbox.errors import VerificationError

MAX_INDEX = (1 << 48) - 1
HASH = 32


def node_row(level: int, index: int) -> int:
    """The leaf row that stores the complete subtree at ``level`` and position ``index``:
    its last leaf."""
    return ((index + 1) << level) - 1


def hkey(leaf_hash: bytes) -> int:
    """Signed 64-bit prefix of a leaf hash: the duplicate-lookup key (see ``dedup``)."""
    return int.from_bytes(leaf_hash[:8], "big", signed=True)


@dataclass(slots=True)
class LeafRow:
    """One stored leaf (slotted and not frozen: the append path builds one per entry)."""

    index: int
    leaf_hash: bytes
    leaf: bytes
    body_digest: bytes | None
    nodes: bytes = b""


# A row as the append path writes it: (index, leaf, nodes, hkey, body digest). A tuple, not a
# LeafRow: building an object per entry showed up in the append benchmark.
NewLeaf = tuple[int, bytes, bytes, int, bytes | None]


class Store(ABC):
    """The operations the tree, sequencer, server and transfer need; SQLite and PostgreSQL."""

    write_lock: threading.Lock
    description: str

    # -- write side (sequencer thread, one transaction per batch) ------------------------
    @abstractmethod
    def begin_append(self) -> int:
        """Start a write transaction, lock the tree head against other writers, return size."""

    @abstractmethod
    def hkeys(self, start: int, end: int) -> list[int]:
        """The ``hkey`` of leaves [start, end), in order (inside the write transaction)."""

    @abstractmethod
    def leaves_at(self, indexes: Sequence[int]) -> dict[int, bytes]:
        """Leaf bytes by index (inside the write transaction)."""

    @abstractmethod
    def put_leaves(self, rows: Sequence[NewLeaf]) -> None: ...

    @abstractmethod
    def put_blobs(self, rows: Sequence[tuple[bytes, bytes]]) -> None:
        """Content-addressed bodies; inserting an existing digest is a no-op."""

    @abstractmethod
    def put_terms(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Search terms (kind, value, index)."""

    @abstractmethod
    def set_size(self, size: int) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    # -- read side -----------------------------------------------------------------------
    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def get_nodes(self, nodes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Subtree hashes by (level, index); level 0 is the leaf hash. Missing ones are absent."""

    @abstractmethod
    def node_range(self, level: int, start: int, end: int) -> list[bytes]:
        """Hashes at ``level`` for indexes [start, end); level 0 is the leaf hashes."""

    @abstractmethod
    def leaves(self, start: int, end: int) -> list[LeafRow]: ...

    @abstractmethod
    def get_blob(self, digest: bytes) -> bytes | None: ...

    @abstractmethod
    def blobs(self) -> Iterator[tuple[bytes, bytes]]: ...

    @abstractmethod
    def search(self, kind: str, value: str, limit: int) -> list[int]: ...

    @abstractmethod
    def terms(self, start: int, end: int) -> list[tuple[str, str, int]]: ...

    # -- checkpoints and settings (small, written outside batches) -----------------------
    @abstractmethod
    def put_checkpoint(self, size: int, note: str) -> None: ...

    @abstractmethod
    def latest_checkpoint(self) -> tuple[int, str] | None: ...

    @abstractmethod
    def checkpoints(self) -> list[tuple[int, str]]: ...

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS tlog_head (id INTEGER PRIMARY KEY, size {BIGINT} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tlog_leaf (idx {BIGINT} PRIMARY KEY, leaf {BLOB} NOT NULL,"
    " nodes {BLOB} NOT NULL, hkey {BIGINT} NOT NULL, body_digest {BLOB})",
    "CREATE TABLE IF NOT EXISTS tlog_blob (digest {BLOB} PRIMARY KEY, data {BLOB} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tlog_term (kind TEXT NOT NULL, value TEXT NOT NULL,"
    " idx {BIGINT} NOT NULL, PRIMARY KEY (kind, value, idx))",
    "CREATE INDEX IF NOT EXISTS tlog_term_idx ON tlog_term (idx)",
    "CREATE TABLE IF NOT EXISTS tlog_checkpoint (size {BIGINT} PRIMARY KEY, note TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tlog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]


class SQLStore(Store):
    """The shared SQL; subclasses supply connections, placeholders and upsert syntax."""

    ph = "?"
    types: ClassVar[dict[str, str]] = {"BIGINT": "INTEGER", "BLOB": "BLOB"}
    insert_ignore = "INSERT OR IGNORE INTO"
    ignore_suffix = ""

    def __init__(self) -> None:
        self.write_lock = threading.Lock()
        self._local = threading.local()
        self._all_conns: list[Any] = []
        self._conns_lock = threading.Lock()
        self._wconn: Any = None

    @abstractmethod
    def _connect(self) -> Any: ...

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def _q(self, sql: str) -> str:
        return sql.replace("?", self.ph)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self._conn()
        cur = conn.execute(self._q(sql), tuple(params))
        rows = list(cur.fetchall())
        self._end_read(conn)
        return rows

    def _end_read(self, conn: Any) -> None:
        """Hook: PostgreSQL readers must not hold a snapshot open between calls."""

    def _create_schema(self, conn: Any) -> None:
        for stmt in _SCHEMA:
            conn.execute(stmt.format(**self.types))
        conn.execute(
            self._q(f"{self.insert_ignore} tlog_head (id, size) VALUES (1, 0){self.ignore_suffix}")
        )

    def _wexec(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cur = self._wconn.execute(self._q(sql), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def _wmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._wconn.cursor().executemany(self._q(sql), rows)

    # -- write side ----------------------------------------------------------------------
    def hkeys(self, start: int, end: int) -> list[int]:
        rows = self._wexec(
            "SELECT hkey FROM tlog_leaf WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        )
        if len(rows) != end - start:
            raise VerificationError(f"log storage is missing leaves in [{start}, {end})")
        return [int(r[0]) for r in rows]

    def leaves_at(self, indexes: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for chunk in _chunks(sorted(set(indexes)), 500):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT idx, leaf FROM tlog_leaf WHERE idx IN ({marks})"  # noqa: S608
            out.update((int(i), bytes(leaf)) for i, leaf in self._wexec(sql, chunk))
        return out

    def put_leaves(self, rows: Sequence[NewLeaf]) -> None:
        self._wmany(
            "INSERT INTO tlog_leaf (idx, leaf, nodes, hkey, body_digest) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def put_blobs(self, rows: Sequence[tuple[bytes, bytes]]) -> None:
        self._wmany(
            f"{self.insert_ignore} tlog_blob (digest, data) VALUES (?, ?){self.ignore_suffix}", rows
        )

    def put_terms(self, rows: Sequence[tuple[str, str, int]]) -> None:
        self._wmany(
            f"{self.insert_ignore} tlog_term (kind, value, idx)"
            f" VALUES (?, ?, ?){self.ignore_suffix}",
            rows,
        )

    def set_size(self, size: int) -> None:
        self._wexec("UPDATE tlog_head SET size = ? WHERE id = 1", (size,))

    def commit(self) -> None:
        self._wconn.commit()

    def rollback(self) -> None:
        self._wconn.rollback()

    # -- read side -----------------------------------------------------------------------
    def size(self) -> int:
        return int(self._read("SELECT size FROM tlog_head WHERE id = 1")[0][0])

    def get_nodes(self, nodes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        by_row: dict[int, list[tuple[int, int]]] = {}
        for level, index in nodes:
            by_row.setdefault(node_row(level, index), []).append((level, index))
        out: dict[tuple[int, int], bytes] = {}
        for chunk in _chunks(sorted(by_row), 500):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT idx, leaf, nodes FROM tlog_leaf WHERE idx IN ({marks})"  # noqa: S608
            for i, leaf, packed in self._read(sql, chunk):
                for level, index in by_row[int(i)]:
                    if level == 0:
                        out[(level, index)] = leaf_hash(bytes(leaf))
                    elif len(packed) >= level * HASH:
                        out[(level, index)] = bytes(packed[(level - 1) * HASH : level * HASH])
        return out

    def node_range(self, level: int, start: int, end: int) -> list[bytes]:
        got = self.get_nodes([(level, i) for i in range(start, end)])
        return [got[(level, i)] for i in range(start, end) if (level, i) in got]

    def leaves(self, start: int, end: int) -> list[LeafRow]:
        rows = self._read(
            "SELECT idx, leaf, body_digest, nodes FROM tlog_leaf"
            " WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        )
        return [
            LeafRow(
                int(i),
                leaf_hash(bytes(leaf)),
                bytes(leaf),
                None if d is None else bytes(d),
                bytes(packed),
            )
            for i, leaf, d, packed in rows
        ]

    def get_blob(self, digest: bytes) -> bytes | None:
        rows = self._read("SELECT data FROM tlog_blob WHERE digest = ?", (digest,))
        return bytes(rows[0][0]) if rows else None

    def blobs(self) -> Iterator[tuple[bytes, bytes]]:
        last = b""
        while True:
            rows = self._read(
                "SELECT digest, data FROM tlog_blob WHERE digest > ? ORDER BY digest LIMIT 500",
                (last,),
            )
            if not rows:
                return
            for d, data in rows:
                yield bytes(d), bytes(data)
            last = bytes(rows[-1][0])

    def search(self, kind: str, value: str, limit: int) -> list[int]:
        rows = self._read(
            "SELECT idx FROM tlog_term WHERE kind = ? AND value = ? ORDER BY idx LIMIT ?",
            (kind, value, limit),
        )
        return [int(r[0]) for r in rows]

    def terms(self, start: int, end: int) -> list[tuple[str, str, int]]:
        rows = self._read(
            "SELECT kind, value, idx FROM tlog_term WHERE idx >= ? AND idx < ?"
            " ORDER BY idx, kind, value",
            (start, end),
        )
        return [(str(k), str(v), int(i)) for k, v, i in rows]

    def _begin_write(self) -> None:
        """Hook: SQLite's connection autocommits, so it opens the write transaction itself."""

    def _write_small(self, sql: str, params: Sequence[Any]) -> None:
        with self.write_lock:
            self._begin_write()
            try:
                self._wexec(sql, params)
            except BaseException:
                self._wconn.rollback()
                raise
            self._wconn.commit()

    def put_checkpoint(self, size: int, note: str) -> None:
        self._write_small(
            f"{self.insert_ignore} tlog_checkpoint (size, note) VALUES (?, ?){self.ignore_suffix}",
            (size, note),
        )

    def replace_checkpoint(self, size: int, note: str) -> None:
        """Store a checkpoint note that gained cosignatures since it was first written."""
        self._write_small("UPDATE tlog_checkpoint SET note = ? WHERE size = ?", (note, size))

    def latest_checkpoint(self) -> tuple[int, str] | None:
        rows = self._read("SELECT size, note FROM tlog_checkpoint ORDER BY size DESC LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def checkpoints(self) -> list[tuple[int, str]]:
        rows = self._read("SELECT size, note FROM tlog_checkpoint ORDER BY size")
        return [(int(s), str(n)) for s, n in rows]

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM tlog_meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write_small(
            f"{self.insert_ignore} tlog_meta (key, value) VALUES (?, ?){self.ignore_suffix}",
            (key, value),
        )
        self._write_small("UPDATE tlog_meta SET value = ? WHERE key = ?", (value, key))

    def close(self) -> None:
        with self._conns_lock:
            conns, self._all_conns = self._all_conns, []
        for conn in [*conns, self._wconn]:
            if conn is not None:
                with contextlib.suppress(Exception):  # closing a broken connection: best effort
                    conn.close()
        self._wconn = None
        self._local = threading.local()


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def open_store(url: str) -> SQLStore:
    """``sqlite:///path``, a bare path, or a PostgreSQL DSN/URL (``postgresql://...``)."""
    if url.startswith(("postgresql://", "postgres://")) or "dbname=" in url or "host=" in url:
        from glassbox.tlog.postgres_store import PostgresStore

        return PostgresStore(url)
    from glassbox.tlog.sqlite_store import SQLiteStore

    path = url[len("sqlite://") :] if url.startswith("sqlite://") else url
    return SQLiteStore(path)
