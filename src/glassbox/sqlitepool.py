"""SQLite connections kept open for a process's hot paths (the loaders' caches).

Opening a WAL database, setting it up and closing it again costs more than the lookups a warm
load makes in it (closing the last connection also checkpoints the log): a process that loads
models repeatedly should pay that once. A pooled connection belongs to one process and one
thread (SQLite connections must not cross a ``fork``; a thread's connections go with it), and
is reopened when the file at its path is no longer the one it opened (a cache directory
deleted and made again).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

_LOCAL = threading.local()  # .pool: (pid, path) -> (connection, (st_dev, st_ino))


def pooled(path: Path, setup: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
    """An open connection to ``path`` for this process and thread; ``setup`` runs once per
    connection (pragmas, schema). Raises ``sqlite3.Error`` or ``OSError`` as ``connect`` does.
    """
    pool: dict[tuple[int, str], tuple[sqlite3.Connection, tuple[int, int]]]
    pool = _LOCAL.__dict__.setdefault("pool", {})
    key = (os.getpid(), str(path))
    held = pool.get(key)
    if held is not None:
        db, identity = held
        try:
            st = path.stat()
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == identity:
            return db
        del pool[key]
        db.close()
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        setup(db)
        st = path.stat()
    except BaseException:
        db.close()
        raise
    pool[key] = (db, (st.st_dev, st.st_ino))
    return db
