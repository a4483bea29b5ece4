"""Storage behind the log: one interface, one SQL implementation, two dialects.

The tree is stored in **bundles**: runs of up to 256 consecutive leaves appended in one batch,
never crossing a 256-leaf tile boundary (``TILE``), one row each. A bundle row holds, for its
leaves ``[start, start + width)``:

* ``nodes``: the hashes of the interior subtrees those leaves complete, leaf by leaf, level 1
  upward (leaf ``i`` completes the subtrees at levels 1..t, where t is the number of trailing
  one bits of ``i``; on average one hash per leaf), so every complete subtree hash is stored
  exactly once and the one at (level, index) is found in the bundle holding leaf
  ``node_row(level, index)``, at an offset computed in closed form (``nodes_before``);
* ``hashes``: the leaf hashes, which is also the C2SP level-0 hash tile and the key of the
  writer's duplicate index (rebuilt by one sequential scan; see ``dedup``);
* ``entries``: the leaves themselves, in the C2SP ``tlog-tiles`` entry-bundle encoding (a
  big-endian 16-bit length before each), so a full bundle is served as its entry tile unchanged;
* ``bodies``: the digests of the full entries stored in ``tlog_blob`` (32 zero bytes where a
  leaf has none), or NULL when none has one.

Why bundles and not one row per leaf: a row per leaf made the database insert the largest cost
of an append (a B-tree insert, record encoding and five bound parameters per entry); a row per
batch chunk costs the same per row and is amortised over up to 256 leaves. It is also the
layout the tiles API serves and the one Tessera-style logs use. Proof reads touch one bundle per
distinct tile on the proof path (about log2(n) - 7), columns ordered so the ones a proof reads
(``nodes``, ``hashes``) come first.

Nothing is ever updated in place except the tree size, which moves only inside the same
transaction that adds the rows it covers: a batch that ends mid-tile leaves a short bundle and
the next batch starts a new one beside it. That is what makes an acknowledged entry durable and
a crashed batch invisible.

Read methods may be called from any thread (each thread gets its own connection); the write
methods (``begin_append`` ... ``commit``) are called by one sequencer thread at a time, under
``write_lock``.

Every driver error leaving a store is a ``faults.StoreError`` saying what is wrong (locked,
read-only, I/O, damaged, not a log); a failed write leaves no transaction open and a broken
connection is replaced on next use, so a store recovers by itself once the fault clears.
Opening a store writes only to create a new log or upgrade an old one; ``read_only=True``
never writes at all (SQLite ``mode=ro``, PostgreSQL read-only transactions).
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from glassbox.digest.merkle import leaf_hash
from glassbox.errors import VerificationError
from glassbox.tlog.faults import NOT_A_LOG, READ_ONLY, UPGRADE, StoreError, store_error

MAX_INDEX = (1 << 48) - 1
HASH = 32
TILE = 256  # leaves per C2SP tile; a bundle never crosses a multiple of it
MAX_LEAF = 0xFFFF  # the entry-bundle length prefix is 16 bits
NO_BODY = bytes(HASH)


def node_row(level: int, index: int) -> int:
    """The leaf row that stores the complete subtree at ``level`` and position ``index``:
    its last leaf."""
    return ((index + 1) << level) - 1


def nodes_before(row: int) -> int:
    """How many interior hashes leaves ``[0, row)`` complete: the sum of their trailing one
    bits, which is ``row - popcount(row)``. Offsets into a bundle's ``nodes`` follow from it."""
    return row - row.bit_count()


def encode_entries(leaves: Sequence[bytes]) -> bytes:
    """C2SP entry-bundle encoding: each leaf behind its 16-bit big-endian length."""
    parts: list[bytes] = []
    for leaf in leaves:
        parts.append(len(leaf).to_bytes(2, "big"))
        parts.append(leaf)
    return b"".join(parts)


def decode_entries(data: bytes, count: int) -> list[bytes]:
    """The inverse of ``encode_entries``; a bundle that does not decode to exactly ``count``
    leaves is damage, reported as such."""
    out: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        out.append(data[pos : pos + n])
        pos += n
    if pos != end or len(out) != count:
        raise VerificationError("log storage has a damaged entry bundle")
    return out


@dataclass(slots=True)
class LeafRow:
    """One stored leaf, as readers see it (its slice of its bundle)."""

    index: int
    leaf_hash: bytes
    leaf: bytes
    body_digest: bytes | None
    nodes: bytes = b""


class NewBundle(NamedTuple):
    """A bundle as the append path writes it: leaves [start, start + width)."""

    start: int
    width: int
    nodes: bytes
    hashes: bytes
    entries: bytes
    bodies: bytes | None


class _Bundle(NamedTuple):
    """A bundle as read back. Only the columns a reader asked for are filled: ``hashes`` is
    empty when not fetched, and ``hashes_len`` (always fetched, cheaply) still lets every row
    be checked for damage."""

    start: int
    width: int
    nodes: bytes
    hashes_len: int
    hashes: bytes
    entries: bytes
    bodies: bytes | None

    def damaged(self) -> bool:
        """Column lengths must agree with ``width``: anything else is a damaged row, and a
        damaged row must not be sliced into plausible-looking hashes."""
        want_nodes = (nodes_before(self.start + self.width) - nodes_before(self.start)) * HASH
        return (
            self.width < 1
            or (self.start // TILE) != (self.start + self.width - 1) // TILE
            or self.hashes_len != self.width * HASH
            or (bool(self.hashes) and len(self.hashes) != self.hashes_len)
            or len(self.nodes) != want_nodes
            or (self.bodies is not None and len(self.bodies) != self.width * HASH)
        )


class Store(ABC):
    """The operations the tree, sequencer, server and transfer need; SQLite and PostgreSQL."""

    write_lock: threading.Lock
    description: str

    # -- write side (sequencer thread, one transaction per batch) ------------------------
    @abstractmethod
    def begin_append(self) -> int:
        """Start a write transaction, lock the tree head against other writers, return size."""

    @abstractmethod
    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """The hashes of leaves [start, end), in order (inside the write transaction)."""

    @abstractmethod
    def put_bundles(self, rows: Sequence[NewBundle]) -> None: ...

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
    def search(self, kind: str, value: str, limit: int, *, prefix: bool = False) -> list[int]:
        """Indexes of entries with the term (kind, value), or with a value starting with
        ``value`` when ``prefix`` (callers pass only validated hex, no LIKE wildcards)."""

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
    "CREATE TABLE IF NOT EXISTS tlog_bundle (start {BIGINT} PRIMARY KEY, width INTEGER NOT NULL,"
    " nodes {BLOB} NOT NULL, hashes {BLOB} NOT NULL, entries {BLOB} NOT NULL, bodies {BLOB})",
    "CREATE TABLE IF NOT EXISTS tlog_blob (digest {BLOB} PRIMARY KEY, data {BLOB} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tlog_term (kind TEXT NOT NULL, value TEXT NOT NULL,"
    " idx {BIGINT} NOT NULL, PRIMARY KEY (kind, value, idx))",
    "CREATE INDEX IF NOT EXISTS tlog_term_idx ON tlog_term (idx)",
    "CREATE TABLE IF NOT EXISTS tlog_checkpoint (size {BIGINT} PRIMARY KEY, note TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tlog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
TABLES = frozenset(
    ("tlog_head", "tlog_bundle", "tlog_blob", "tlog_term", "tlog_checkpoint", "tlog_meta")
)
_RANGES_PER_QUERY = 200
DEFAULT_BUSY_TIMEOUT = 60.0


class SQLStore(Store):
    """The shared SQL; subclasses supply connections, placeholders and upsert syntax."""

    ph = "?"
    types: ClassVar[dict[str, str]] = {"BIGINT": "INTEGER", "BLOB": "BLOB"}
    insert_ignore = "INSERT OR IGNORE INTO"
    ignore_suffix = ""

    # The driver's error base class(es), caught at this boundary and typed (``faults``).
    _errors: tuple[type[BaseException], ...] = ()

    def __init__(self, *, read_only: bool = False, busy_timeout: float | None = None) -> None:
        self.write_lock = threading.Lock()
        self._local = threading.local()
        self._all_conns: list[Any] = []
        self._conns_lock = threading.Lock()
        self._wconn: Any = None
        self.read_only = read_only
        self.busy_timeout = DEFAULT_BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        self.where = type(self).__name__  # subclasses name the file or server
        self.url: str | None = None  # set by open_store: how to open it again (e.g. writable)

    @abstractmethod
    def _connect(self) -> Any: ...

    def _connect_writer(self) -> Any:
        return self._connect()

    @abstractmethod
    def _kind(self, exc: BaseException) -> str:
        """Which ``faults`` kind a driver error is."""

    def _broken(self, conn: Any) -> bool:
        """Whether a connection that raised must be replaced (PostgreSQL: the server went)."""
        return False

    def _fault(self, exc: BaseException) -> StoreError:
        return store_error(self.where, exc, self._kind(exc))

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except self._errors as exc:
                raise self._fault(exc) from exc
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def _drop_reader(self, conn: Any) -> None:
        self._local.conn = None
        with self._conns_lock:
            if conn in self._all_conns:
                self._all_conns.remove(conn)
        with contextlib.suppress(Exception):  # closing a broken connection: best effort
            conn.close()

    def _writer(self) -> Any:
        """The write connection, reopened if a fault made the last one unusable."""
        if self._wconn is None:
            try:
                self._wconn = self._connect_writer()
            except self._errors as exc:
                raise self._fault(exc) from exc
        return self._wconn

    def _drop_writer(self) -> None:
        conn, self._wconn = self._wconn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing rolls back whatever was open
                conn.close()

    def _q(self, sql: str) -> str:
        return sql.replace("?", self.ph)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self._conn()
        try:
            cur = conn.execute(self._q(sql), tuple(params))
            rows = list(cur.fetchall())
            self._end_read(conn)
        except self._errors as exc:
            if self._broken(conn):
                self._drop_reader(conn)
            raise self._fault(exc) from exc
        return rows

    def _end_read(self, conn: Any) -> None:
        """Hook: PostgreSQL readers must not hold a snapshot open between calls."""

    @abstractmethod
    def _table_exists(self, conn: Any, name: str) -> bool: ...

    @abstractmethod
    def _tables(self, conn: Any) -> set[str]:
        """The names of the tables the store can see (to tell a log from anything else)."""

    def _create_schema(self, conn: Any) -> None:
        for stmt in _SCHEMA:
            conn.execute(stmt.format(**self.types))
        conn.execute(
            self._q(f"{self.insert_ignore} tlog_head (id, size) VALUES (1, 0){self.ignore_suffix}")
        )

    def _needs_schema(self) -> bool:
        """Check what is there, reading only. True when a writable open must create the
        schema or upgrade an old layout; a read-only open that would need either is refused
        with what it needs, and anything else that is not a log is named as such."""
        from glassbox.tlog.migrate import OLD_TABLE

        try:
            have = self._tables(self._writer())
            if not self.read_only:
                self._writer().rollback()  # PostgreSQL: no transaction left open by the look
        except self._errors as exc:
            raise self._fault(exc) from exc
        if OLD_TABLE in have:
            if self.read_only:
                raise StoreError(
                    f"{self.where}: this log is in the pre-release layout and must be upgraded"
                    " by a writable open first (any writing log command on it, e.g. glassbox"
                    " log add or log serve); it cannot be upgraded while opened read-only",
                    UPGRADE,
                )
            return True
        if have >= TABLES:
            return False
        if self.read_only:
            what = "an empty database" if not have else "a database without the log's tables"
            raise StoreError(f"{self.where}: not a log database ({what})", NOT_A_LOG)
        return True  # a new log (or one whose creation was cut short): create what is missing

    def _upgrade(self) -> None:
        """Move a log written in the pre-release per-leaf layout into bundles (``migrate``)."""
        from glassbox.tlog.migrate import OLD_TABLE, upgrade_per_leaf_layout

        if self._table_exists(self._writer(), OLD_TABLE):
            upgrade_per_leaf_layout(self)

    def _wexec(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            cur = self._writer().execute(self._q(sql), tuple(params))
            return list(cur.fetchall()) if cur.description else []
        except self._errors as exc:
            raise self._fault(exc) from exc

    def _wmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            try:
                self._writer().cursor().executemany(self._q(sql), rows)
            except self._errors as exc:
                raise self._fault(exc) from exc

    # -- write side ----------------------------------------------------------------------
    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        out = self._leaf_hashes(start, end, self._wexec)
        if len(out) != end - start:
            raise VerificationError(f"log storage is missing leaves in [{start}, {end})")
        return out

    def put_bundles(self, rows: Sequence[NewBundle]) -> None:
        self._wmany(
            "INSERT INTO tlog_bundle (start, width, nodes, hashes, entries, bodies)"
            " VALUES (?, ?, ?, ?, ?, ?)",
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

    _head_sql = "SELECT size FROM tlog_head WHERE id = 1"

    def begin_append(self) -> int:
        self._begin_write()
        try:
            return int(self._wexec(self._head_sql)[0][0])
        except BaseException:
            self.rollback()  # a failed begin must not leave a transaction open
            raise

    def commit(self) -> None:
        try:
            self._writer().commit()
        except self._errors as exc:
            self.rollback()  # SQLite keeps a transaction whose COMMIT was busy: end it
            raise self._fault(exc) from exc

    def rollback(self) -> None:
        """End the write transaction; never raises. A connection that cannot even roll back
        is closed (which rolls back) and replaced on next use."""
        conn = self._wconn
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception:  # a fault during recovery: drop the connection
            self._drop_writer()
        else:
            if self._broken(conn):
                self._drop_writer()

    # -- read side -----------------------------------------------------------------------
    def size(self) -> int:
        return int(self._read("SELECT size FROM tlog_head WHERE id = 1")[0][0])

    # Bundle reads. ``cols`` picks the columns (in storage order, so a proof reading only
    # ``nodes`` and ``hashes`` never walks the entries' overflow pages).
    _COLS: ClassVar[dict[str, str]] = {
        "tree": "start, width, nodes, length(hashes), hashes",
        "all": "start, width, nodes, length(hashes), hashes, entries, bodies",
    }

    def _bundles(self, rows: list[Any]) -> list[_Bundle]:
        out = []
        for r in rows:
            start, width, nodes, hashes_len = int(r[0]), int(r[1]), bytes(r[2]), int(r[3])
            hashes = b"" if r[4] is None else bytes(r[4])
            entries = bytes(r[5]) if len(r) > 5 else b""
            bodies = None if len(r) <= 6 or r[6] is None else bytes(r[6])
            b = _Bundle(start, width, nodes, hashes_len, hashes, entries, bodies)
            if b.damaged():
                raise VerificationError(
                    f"log storage has a damaged bundle at leaf {start}: the database is damaged"
                    " or was edited"
                )
            out.append(b)
        return out

    def _bundles_in(self, start: int, end: int, cols: str, run: Any = None) -> list[_Bundle]:
        """The bundles holding any of leaves [start, end), in order."""
        rows = (run or self._read)(
            f"SELECT {self._COLS[cols]} FROM tlog_bundle"  # noqa: S608 (fixed column lists)
            " WHERE start >= ? AND start < ? ORDER BY start",
            (start - start % TILE, end),
        )
        return [b for b in self._bundles(rows) if b.start + b.width > start]

    def _bundles_for(
        self, leaf_rows: Sequence[int], hash_rows: Sequence[int] = ()
    ) -> dict[int, _Bundle]:
        """The bundle holding each of ``leaf_rows`` (absent where none does): one query per
        ``_RANGES_PER_QUERY`` distinct tiles, each tile one index range. Leaf hashes are read
        only for the tiles of ``hash_rows``: a proof needs interior hashes from about log2(n) - 7
        tiles but leaf hashes from one, and skipping the column halved the proof's p99."""
        tiles = sorted({r // TILE for r in leaf_rows})
        hash_tiles = sorted({r // TILE for r in hash_rows})
        found: dict[int, list[_Bundle]] = {}
        for chunk in _chunks(tiles, _RANGES_PER_QUERY):
            wanted = [t for t in hash_tiles if chunk[0] <= t <= chunk[-1]]
            when = " OR ".join(["(start >= ? AND start < ?)"] * len(wanted)) or "0 = 1"
            where = " OR ".join(["(start >= ? AND start < ?)"] * len(chunk))
            params = [x for t in wanted + chunk for x in (t * TILE, (t + 1) * TILE)]
            rows = self._read(
                "SELECT start, width, nodes, length(hashes),"  # noqa: S608 (placeholders only)
                f" CASE WHEN {when} THEN hashes END FROM tlog_bundle WHERE {where}",
                params,
            )
            for b in self._bundles(rows):
                found.setdefault(b.start // TILE, []).append(b)
        out: dict[int, _Bundle] = {}
        for bundles in found.values():
            bundles.sort()
        for r in leaf_rows:
            bundles = found.get(r // TILE, [])
            k = bisect.bisect_right([b.start for b in bundles], r) - 1
            if k >= 0 and r < bundles[k].start + bundles[k].width:
                out[r] = bundles[k]
        return out

    def get_nodes(self, nodes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        by_row: dict[int, list[tuple[int, int]]] = {}
        for level, index in nodes:
            by_row.setdefault(node_row(level, index), []).append((level, index))
        out: dict[tuple[int, int], bytes] = {}
        level0 = [node_row(0, index) for level, index in nodes if level == 0]
        for row, b in self._bundles_for(list(by_row), level0).items():
            for level, index in by_row[row]:
                if level == 0:
                    at = (row - b.start) * HASH
                    out[(level, index)] = b.hashes[at : at + HASH]
                else:
                    at = (nodes_before(row) - nodes_before(b.start) + level - 1) * HASH
                    out[(level, index)] = b.nodes[at : at + HASH]
        return out

    def node_range(self, level: int, start: int, end: int) -> list[bytes]:
        if level == 0:
            return self._leaf_hashes(start, end, self._read)
        got = self.get_nodes([(level, i) for i in range(start, end)])
        return [got[(level, i)] for i in range(start, end) if (level, i) in got]

    def _leaf_hashes(self, start: int, end: int, run: Any) -> list[bytes]:
        out: list[bytes] = []
        for b in self._bundles_in(start, end, "tree", run):
            lo, hi = max(start, b.start), min(end, b.start + b.width)
            out.extend(
                b.hashes[i * HASH : (i + 1) * HASH] for i in range(lo - b.start, hi - b.start)
            )
        return out

    def leaves(self, start: int, end: int) -> list[LeafRow]:
        """Leaves [start, end) with their stored hashes checked against their bytes: a leaf
        edited in place is reported here, not served."""
        out: list[LeafRow] = []
        for b in self._bundles_in(start, end, "all"):
            leaves = decode_entries(b.entries, b.width)
            at = nodes_before(b.start)
            for k, leaf in enumerate(leaves):
                i = b.start + k
                if not start <= i < end:
                    continue
                n0, n1 = nodes_before(i) - at, nodes_before(i + 1) - at
                h = leaf_hash(leaf)
                if h != b.hashes[k * HASH : (k + 1) * HASH]:
                    raise VerificationError(
                        f"log storage: leaf {i} does not match its stored hash: the database"
                        " is damaged or was edited"
                    )
                body = None if b.bodies is None else b.bodies[k * HASH : (k + 1) * HASH]
                out.append(
                    LeafRow(
                        i,
                        h,
                        leaf,
                        None if body is None or body == NO_BODY else body,
                        b.nodes[n0 * HASH : n1 * HASH],
                    )
                )
        return out

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

    def search(self, kind: str, value: str, limit: int, *, prefix: bool = False) -> list[int]:
        if prefix:
            rows = self._read(
                "SELECT DISTINCT idx FROM tlog_term WHERE kind = ? AND value LIKE ?"
                " ORDER BY idx LIMIT ?",
                (kind, value + "%", limit),
            )
            return [int(r[0]) for r in rows]
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
        if self.read_only:
            raise StoreError(f"{self.where}: the log is open read-only", READ_ONLY)

    def _write_small(self, *statements: tuple[str, Sequence[Any]]) -> None:
        """Statements in one short write transaction (checkpoints and settings)."""
        with self.write_lock:
            self._begin_write()
            try:
                for sql, params in statements:
                    self._wexec(sql, params)
            except BaseException:
                self.rollback()
                raise
            self.commit()

    def put_checkpoint(self, size: int, note: str) -> None:
        self._write_small(
            (
                f"{self.insert_ignore} tlog_checkpoint (size, note)"
                f" VALUES (?, ?){self.ignore_suffix}",
                (size, note),
            )
        )

    def replace_checkpoint(self, size: int, note: str) -> None:
        """Store a checkpoint note that gained cosignatures since it was first written."""
        self._write_small(("UPDATE tlog_checkpoint SET note = ? WHERE size = ?", (note, size)))

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
            (
                f"{self.insert_ignore} tlog_meta (key, value) VALUES (?, ?){self.ignore_suffix}",
                (key, value),
            ),
            ("UPDATE tlog_meta SET value = ? WHERE key = ?", (value, key)),
        )

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


def open_store(url: str, *, read_only: bool = False, busy_timeout: float | None = None) -> SQLStore:
    """``sqlite:///path``, a bare path, or a PostgreSQL DSN/URL (``postgresql://...``).

    ``read_only``: never write (what every command that only reads a log uses, so a
    read-only copy can be audited and readers never wait behind a writer); ``busy_timeout``:
    seconds to wait for a lock before failing with a ``StoreError`` of kind ``locked``."""
    if url.startswith(("postgresql://", "postgres://")) or "dbname=" in url or "host=" in url:
        from glassbox.tlog.postgres_store import PostgresStore

        store: SQLStore = PostgresStore(url, read_only=read_only, busy_timeout=busy_timeout)
    else:
        from glassbox.tlog.sqlite_store import SQLiteStore

        path = url[len("sqlite://") :] if url.startswith("sqlite://") else url
        store = SQLiteStore(path, read_only=read_only, busy_timeout=busy_timeout)
    store.url = url
    return store
