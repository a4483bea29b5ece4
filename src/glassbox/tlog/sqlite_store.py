"""The embedded store: one SQLite file in WAL mode, ``synchronous=FULL``.

FULL (not NORMAL) because in WAL mode NORMAL may lose the last commits on power loss, and the
log promises that an acknowledged entry survives anything short of losing the disk. Batching in
the sequencer is what keeps this from costing one fsync per entry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glassbox.errors import InputError
from glassbox.tlog.store import SQLStore


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction on an autocommit connection, its write lock taken up front (so
    two writers never deadlock upgrading a read lock), rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()


class SQLiteStore(SQLStore):
    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.description = f"sqlite:///{self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wconn = self._connect()
            self._create_schema(self._wconn)
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a usable log database ({exc})") from None

    def _connect(self) -> Any:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: the dedup index is random access
        return conn

    def _table_exists(self, conn: Any, name: str) -> bool:
        row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return row.fetchone() is not None

    def _begin_write(self) -> None:
        self._wconn.execute("BEGIN IMMEDIATE")

    def begin_append(self) -> int:
        self._begin_write()
        return int(self._wconn.execute("SELECT size FROM tlog_head WHERE id = 1").fetchone()[0])
