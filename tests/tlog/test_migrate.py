"""Opening a log written in the pre-release per-leaf layout upgrades it, or refuses to."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from glassbox.digest import merkle
from glassbox.errors import VerificationError
from glassbox.tlog.checkpoint import Checkpoint, sign_checkpoint
from glassbox.tlog.migrate import CHUNK
from glassbox.tlog.note import Signer
from glassbox.tlog.sequencer import Pending, append_batch
from glassbox.tlog.sqlite_store import SQLiteStore
from glassbox.tlog.tree import StoredTree, audit_store

OLD_SCHEMA = [
    "CREATE TABLE tlog_head (id INTEGER PRIMARY KEY, size INTEGER NOT NULL)",
    "CREATE TABLE tlog_leaf (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL, nodes BLOB NOT NULL,"
    " hkey INTEGER NOT NULL, body_digest BLOB)",
    "CREATE TABLE tlog_blob (digest BLOB PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TABLE tlog_term (kind TEXT NOT NULL, value TEXT NOT NULL, idx INTEGER NOT NULL,"
    " PRIMARY KEY (kind, value, idx))",
    "CREATE TABLE tlog_checkpoint (size INTEGER PRIMARY KEY, note TEXT NOT NULL)",
    "CREATE TABLE tlog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]


def old_log(path: Path, n: int, checkpoints: list[int], signer: Signer) -> list[bytes]:
    """A log in the pre-release layout, written as that version wrote it: one row per leaf
    with the interior hashes it completes, bodies and terms beside, signed checkpoints."""
    leaves = [f"leaf {i}".encode() for i in range(n)]
    hashes = [merkle.leaf_hash(x) for x in leaves]
    nodes = merkle.Frontier().extend(hashes)
    db = sqlite3.connect(path)
    for stmt in OLD_SCHEMA:
        db.execute(stmt)
    db.execute("INSERT INTO tlog_head VALUES (1, ?)", (n,))
    for i, (leaf, h, packed) in enumerate(zip(leaves, hashes, nodes, strict=True)):
        body = b"body " + leaf
        digest = hashlib.sha256(body).digest() if i % 2 else None
        hkey = int.from_bytes(h[:8], "big", signed=True)
        db.execute("INSERT INTO tlog_leaf VALUES (?, ?, ?, ?, ?)", (i, leaf, packed, hkey, digest))
        if digest:
            db.execute("INSERT INTO tlog_blob VALUES (?, ?)", (digest, body))
        db.execute("INSERT INTO tlog_term VALUES ('name', ?, ?)", (f"m{i % 3}", i))
    for size in checkpoints:
        cp = Checkpoint(signer.name, size, merkle.root_of(hashes[:size]))
        db.execute(
            "INSERT INTO tlog_checkpoint VALUES (?, ?)",
            (size, sign_checkpoint(cp, signer).serialize()),
        )
    db.execute("INSERT INTO tlog_meta VALUES ('vkey', ?)", (signer.verifier.vkey,))
    db.commit()
    db.close()
    return leaves


def tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


def test_old_log_is_upgraded_in_place(tmp_path: Path) -> None:
    n = CHUNK + 300  # more than one chunk, with checkpoints inside and at the end
    signer = Signer.generate("old.example/log")
    leaves = old_log(tmp_path / "log.db", n, [5, 300, CHUNK + 1, n], signer)
    store = SQLiteStore(tmp_path / "log.db")
    try:
        assert "tlog_leaf" not in tables(tmp_path / "log.db")
        assert store.size() == n
        rows = store.leaves(0, n)
        assert [r.leaf for r in rows] == leaves
        assert [r.body_digest is not None for r in rows] == [bool(i % 2) for i in range(n)]
        assert store.get_blob(rows[1].body_digest or b"") == b"body leaf 1"
        assert store.search("name", "m1", 3) == [1, 4, 7]
        root = merkle.root_of([merkle.leaf_hash(x) for x in leaves])
        assert audit_store(store) == root == StoredTree(store).root(n)
        # The upgraded log keeps appending where the old one stopped.
        _, got = append_batch(store, None, [Pending(b"new"), Pending(leaves[3])])
        assert [(g.index, g.duplicate) for g in got] == [(n, False), (3, True)]
    finally:
        store.close()
    assert SQLiteStore(tmp_path / "log.db").size() == n + 1  # reopening: nothing left to do


def test_edited_old_log_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    signer = Signer.generate("old.example/log")
    old_log(tmp_path / "log.db", 40, [10, 40], signer)
    db = sqlite3.connect(tmp_path / "log.db")
    db.execute("UPDATE tlog_leaf SET leaf = ? WHERE idx = 20", (b"forged",))
    db.commit()
    db.close()
    with pytest.raises(VerificationError, match="checkpoint at size 40"):
        SQLiteStore(tmp_path / "log.db")
    assert "tlog_leaf" in tables(tmp_path / "log.db")  # rolled back: nothing moved or dropped
    db = sqlite3.connect(tmp_path / "log.db")
    assert db.execute("SELECT count(*) FROM tlog_bundle").fetchone() == (0,)
    db.close()


def test_old_log_with_a_gap_is_refused(tmp_path: Path) -> None:
    old_log(tmp_path / "log.db", 10, [], Signer.generate("old.example/log"))
    db = sqlite3.connect(tmp_path / "log.db")
    db.execute("DELETE FROM tlog_leaf WHERE idx = 4")
    db.commit()
    db.close()
    with pytest.raises(VerificationError, match="missing leaves"):
        SQLiteStore(tmp_path / "log.db")
