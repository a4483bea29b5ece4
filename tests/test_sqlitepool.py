"""Pooled SQLite connections: one per process and thread, reopened when the file changes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from glassbox.digest.cache import DigestCache, FileKey
from glassbox.sqlitepool import pooled


def _setup(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")


def test_same_connection_until_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    first = pooled(path, _setup)
    first.execute("INSERT INTO t VALUES (1)")
    assert pooled(path, _setup) is first
    path.unlink()  # the cache directory was cleared: a new file, a new connection
    second = pooled(path, _setup)
    assert second is not first
    assert second.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_each_thread_gets_its_own(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    mine = pooled(path, _setup)
    theirs: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: theirs.append(pooled(path, _setup)))
    thread.start()
    thread.join()
    assert theirs and theirs[0] is not mine


def test_shared_digest_cache_survives_close(tmp_path: Path) -> None:
    key = FileKey(1, 2, 3, 4, 5)
    cache = DigestCache(tmp_path / "d.sqlite3", shared=True)
    cache.store([(key, (b"x" * 32,))], "sha256")
    cache.close()
    again = DigestCache(tmp_path / "d.sqlite3", shared=True)
    assert again.lookup([key], "sha256") == {key: (b"x" * 32,)}
    again.close()
