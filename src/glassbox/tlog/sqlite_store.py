"""The embedded store: one SQLite file in WAL mode, ``synchronous=FULL``.

FULL (not NORMAL) because in WAL mode NORMAL may lose the last commits on power loss, and the
log promises that an acknowledged entry survives anything short of losing the disk. Batching in
the sequencer is what keeps this from costing one fsync per entry.

A read-only open (``mode=ro``) never writes, so it works on a copy of a log the user may not
write, and never waits behind a writer (WAL readers do not block). On read-only media where
the WAL index cannot be created beside the file and no WAL is pending, it opens the file as
immutable: no writer can be active there, since a writer needs that index.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from glassbox.tlog.faults import MISSING, READ_ONLY, StoreError, sqlite_kind
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
    _errors = (sqlite3.Error,)

    def __init__(
        self, path: str | Path, *, read_only: bool = False, busy_timeout: float | None = None
    ) -> None:
        super().__init__(read_only=read_only, busy_timeout=busy_timeout)
        text = str(path)
        self.path = Path(text[1:] if text.startswith("//") else text)  # sqlite:////abs/path
        self.description = f"sqlite:///{self.path}"
        self.where = str(self.path)
        self._immutable = False
        if read_only:
            if not self.path.is_file():
                what = "is a directory" if self.path.is_dir() else "does not exist"
                raise StoreError(f"{self.path}: no log database here (it {what})", MISSING)
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"{self.path.parent}: cannot create the log's directory ({exc.strerror})",
                    READ_ONLY if isinstance(exc, PermissionError) else MISSING,
                ) from None
        try:
            if self._needs_schema():
                with self.write_lock:
                    self._create_schema(self._writer())
                self._upgrade()
        except sqlite3.Error as exc:
            self.close()
            raise self._fault(exc) from exc
        except BaseException:
            self.close()
            raise

    def _kind(self, exc: BaseException) -> str:
        kind = sqlite_kind(exc)
        if kind == MISSING and self.path.is_file() and not os.access(self.path.parent, os.W_OK):
            return READ_ONLY  # SQLite cannot create the WAL files beside a file it may not write
        return kind

    def _connect(self) -> Any:
        ms = int(self.busy_timeout * 1000)
        if self.read_only:
            conn = self._connect_ro()
        else:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=ms / 1000
            )
            conn.execute("PRAGMA journal_mode=WAL")  # a no-op, not a write, once it is WAL
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={ms}")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: the dedup index is random access
        return conn

    def _connect_ro(self) -> sqlite3.Connection:
        uri = "file://" + quote(str(self.path.absolute())) + "?mode=ro"
        if self._immutable:
            uri += "&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            if self._immutable or sqlite_kind(exc) not in (MISSING, READ_ONLY):
                raise
            wal = self.path.with_name(self.path.name + "-wal")
            writable = os.access(self.path.parent, os.W_OK)
            if writable or (wal.exists() and wal.stat().st_size):
                raise
            self._immutable = True  # read-only media, no WAL pending: nobody is writing it
            return self._connect_ro()
        return conn

    def _tables(self, conn: Any) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {str(r[0]) for r in rows}

    def _table_exists(self, conn: Any, name: str) -> bool:
        row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return row.fetchone() is not None

    def _begin_write(self) -> None:
        super()._begin_write()
        self._wexec("BEGIN IMMEDIATE")
