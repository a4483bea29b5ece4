"""A digest cache so re-hashing an unchanged multi-GB model is near-instant.

An entry is trusted only while the file's (device, inode, size, mtime, ctime) are exactly what
they were when it was hashed. ``ctime`` is the part that makes this safe against ordinary
edits: a program can restore ``mtime`` after changing bytes (``touch -d``, ``os.utime``), but
the kernel sets ``ctime`` on every write and on every ``utime``, and no unprivileged call sets
it back.

Two limits, which the README and the `--cache` help state too:

* anyone who can change the files can usually change this cache too (it lives in the user's
  cache directory), so ``verify`` does not trust it unless asked (``--cache``);
* timestamps have a granularity (the kernel's coarse clock, ~4 ms on Linux; 1-2 s on some file
  systems). A file changed twice within one tick could keep its ctime. Like git's "racily clean"
  rule, an entry is therefore stored only for files whose mtime and ctime are at least
  ``RACY_WINDOW_NS`` older than the moment hashing started.

Storage is one SQLite file in WAL mode: concurrent ``glassbox`` processes may read and write it
at once; a writer that finds the database busy waits, and a cache that cannot be written is
skipped (it is only a cache), never an error.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

RACY_WINDOW_NS = 2_000_000_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    method TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digests BLOB NOT NULL,
    PRIMARY KEY (dev, ino, method)
) WITHOUT ROWID
"""
# Keys per lookup query (each takes two SQL parameters; SQLite allows 32766).
_BATCH = 4000
# Large inode and device numbers do not fit SQLite's signed 64-bit integers; store them wrapped.
_I64 = 1 << 64


def _i64(value: int) -> int:
    value %= _I64
    return value - _I64 if value >= 1 << 63 else value


class FileKey(NamedTuple):
    """What must be unchanged for a cached digest to be reused (a tuple: cheap to hash)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileKey:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def settled(self, started_ns: int) -> bool:
        """True when no same-tick edit can hide behind these timestamps (see module doc)."""
        return max(self.mtime_ns, self.ctime_ns) < started_ns - RACY_WINDOW_NS


def default_path() -> Path:
    from glassbox import paths  # platformdirs is only needed once something is hashed

    return paths.cache_dir() / "digests.sqlite3"


class DigestCache:
    """Maps (file identity, hash method) to the file's item digests (one, or one per shard)."""

    def __init__(self, path: Path | None = None, *, shared: bool = False) -> None:
        """``shared``: use this process's pooled connection (``glassbox.sqlitepool``), kept
        open after ``close``, for callers that look up a few keys many times (loaders)."""
        self.path = path
        self.shared = shared
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None:
            try:
                if self.path is None:
                    self.path = default_path()
                if self.shared:
                    from glassbox.sqlitepool import pooled

                    self._db = pooled(self.path, _setup)
                    return self._db
                db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
                _setup(db)
            except (sqlite3.Error, OSError):
                return None  # no writable cache directory: hash without a cache
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            if not self.shared:
                self._db.close()
            self._db = None

    def __enter__(self) -> DigestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, keys: Iterable[FileKey], method: str) -> dict[FileKey, tuple[bytes, ...]]:
        """Cached digests for those ``keys`` whose size, mtime and ctime still match exactly."""
        db = self._connect()
        if db is None:
            return {}
        found: dict[FileKey, tuple[bytes, ...]] = {}
        pending = list(keys)
        try:
            for start in range(0, len(pending), _BATCH):
                batch = pending[start : start + _BATCH]
                wanted = {(_i64(k.dev), _i64(k.ino)): k for k in batch}
                # Only "(?, ?)" placeholders are formatted in; every value is a parameter.
                query = (
                    "SELECT dev, ino, size, mtime_ns, ctime_ns, digests FROM digests "  # noqa: S608
                    "WHERE method = ? AND (dev, ino) IN (VALUES "
                    + ",".join("(?, ?)" for _ in wanted)
                    + ")"
                )
                params: list[object] = [method, *(x for pair in wanted for x in pair)]
                rows = db.execute(query, params).fetchall()
                for dev, ino, size, mtime_ns, ctime_ns, blob in rows:
                    key = wanted[(dev, ino)]
                    if (size, mtime_ns, ctime_ns) != (key.size, key.mtime_ns, key.ctime_ns):
                        continue
                    if len(blob) % 32:
                        continue
                    found[key] = tuple(blob[i : i + 32] for i in range(0, len(blob), 32))
        except sqlite3.Error:
            return found
        return found

    def store(self, entries: Iterable[tuple[FileKey, tuple[bytes, ...]]], method: str) -> None:
        """Remember digests; one row per (file, method), so the cache never outgrows the files."""
        db = self._connect()
        if db is None:
            return
        rows = [
            (
                _i64(k.dev),
                _i64(k.ino),
                method,
                k.size,
                k.mtime_ns,
                k.ctime_ns,
                b"".join(digests),
            )
            for k, digests in entries
        ]
        if not rows:
            return
        with contextlib.suppress(sqlite3.Error), _transaction(db):
            db.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(_SCHEMA)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
