"""Opening a log read-only: nothing is written (so a read-only copy can be audited and readers
never wait behind a writer), and when a log cannot be opened the error says why: locked,
read-only, damaged, missing, not a log, or an old layout that needs a writable open first.

The read-only copy is made read-only for real: the CLI runs as an unprivileged user (tests run
as root, whom file modes do not stop) on a file it may read but not write.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from glassbox.tlog import load_or_create_signer, open_log, open_store, parse_entry
from glassbox.tlog.faults import StoreError
from tests.tlog.conftest import PG_DSN, drop_pg_schema, fresh_pg_schema, needs_pg, pg_url
from tests.tlog.helpers import bundle_submission, new_key
from tests.tlog.test_faults import WriteLock
from tests.tlog.test_migrate import old_log

SRC = Path(__file__).resolve().parents[2] / "src"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(path: Path) -> dict[str, tuple[int, int]]:
    """Every file of the database (main, -wal, -shm) with its size and mtime."""
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in path.parent.iterdir()
        if p.name.startswith(path.name)
    }


def _make_log(path: Path, key: Path, entries: int, checkpoint_at: int) -> None:
    signer_key = new_key()
    lg = open_log(f"sqlite:///{path}", key)
    try:
        for i in range(entries):
            if i == checkpoint_at:
                lg.issue_checkpoint()
            lg.add(parse_entry(bundle_submission(signer_key, f"m{i % 2}", str(i))))
        if checkpoint_at >= entries:
            lg.issue_checkpoint()
    finally:
        lg.close()


def test_read_only_open_never_writes_and_never_waits(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _make_log(db, tmp_path / "log.skey", 3, 3)
    lock = WriteLock(f"sqlite:///{db}")  # a writer holds the write lock throughout
    try:
        before = _files(db)
        st = open_store(str(db), read_only=True, busy_timeout=0)  # 0: any wait would fail
        try:
            assert st.size() == 3 and [s for s, _n in st.checkpoints()] == [3]
            assert st.search("name", "m0", 10) == [0, 2]
            with pytest.raises(StoreError, match="read-only") as err:
                st.set_meta("x", "y")
            assert err.value.kind == "read-only"
        finally:
            st.close()
        assert _files(db) == before
        writable = open_store(str(db), busy_timeout=0)  # opening an existing log: no write
        assert writable.size() == 3
        writable.close()
    finally:
        lock.release()


def _sqlite_file(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for stmt in statements:
        db.execute(stmt)
    db.commit()
    db.close()


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "writable"])
def test_open_errors_say_what_is_wrong(tmp_path: Path, read_only: bool) -> None:
    def refused(path: Path, kind: str, words: str, timeout: float = 0.1) -> None:
        with pytest.raises(StoreError, match=words) as err:
            open_store(str(path), read_only=read_only, busy_timeout=timeout)
        assert err.value.kind == kind
        assert "not a usable log database" not in str(err.value)
        assert str(path) in str(err.value) and "\n" not in str(err.value)

    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    refused(junk, "not-a-log", "not a log database")

    log = tmp_path / "log.db"
    _make_log(log, tmp_path / "log.skey", 2, 2)
    holder = sqlite3.connect(log, isolation_level=None)  # holds the file, readers included
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO tlog_meta VALUES ('held', '1')")
    try:
        refused(log, "locked", "locked by another connection")
    finally:
        holder.rollback()
        holder.close()
    assert open_store(str(log), read_only=read_only).size() == 2  # healthy once released

    damaged = tmp_path / "damaged.db"
    shutil.copy(log, damaged)
    data = bytearray(damaged.read_bytes())
    data[100:300] = os.urandom(200)  # the schema page
    damaged.write_bytes(bytes(data))
    refused(damaged, "damaged", "damaged")

    if read_only:  # a writable open creates these; a read-only one must not
        refused(tmp_path / "absent.db", "missing", "does not exist")
        assert not (tmp_path / "absent.db").exists()
        refused(tmp_path, "missing", "is a directory")
        empty = tmp_path / "empty.db"
        _sqlite_file(empty)
        refused(empty, "not-a-log", "an empty database")
        other = tmp_path / "other.db"
        _sqlite_file(other, "CREATE TABLE notes (x TEXT)")
        refused(other, "not-a-log", "without the log's tables")


def test_old_layout_needs_a_writable_open_to_upgrade(tmp_path: Path) -> None:
    from glassbox.tlog.note import Signer

    db = tmp_path / "old.db"
    leaves = old_log(db, 40, [10, 40], Signer.generate("old.example/log"))
    before = _digest(db)
    with pytest.raises(StoreError, match="must be upgraded by a writable open") as err:
        open_store(str(db), read_only=True)
    assert err.value.kind == "needs-upgrade" and _digest(db) == before
    open_store(str(db)).close()  # a writable open upgrades it
    st = open_store(str(db), read_only=True)
    try:
        assert st.size() == 40 and [r.leaf for r in st.leaves(0, 40)] == leaves
    finally:
        st.close()


@pytest.fixture
def copy_of_a_log() -> Iterator[tuple[Path, Path]]:
    """A log in a directory the CLI's user may read but not write, and a home it may write.
    Outside pytest's tmp_path, whose parents only root may enter."""
    logdir = Path(tempfile.mkdtemp(prefix="glassbox-ro-"))
    home = Path(tempfile.mkdtemp(prefix="glassbox-home-"))
    try:
        _make_log(logdir / "log.db", logdir / "log.skey", 4, 3)  # entry 3 is not covered
        for p in logdir.iterdir():
            p.chmod(0o444)
        logdir.chmod(0o555)
        home.chmod(0o777)
        yield logdir / "log.db", home
    finally:
        logdir.chmod(0o755)
        shutil.rmtree(logdir)
        shutil.rmtree(home)


DROP_DAC = "-dac_override,-dac_read_search,-fowner"


def _cli_as_reader(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user the file modes stop: as root, root without the capabilities that
    override them (so the log's 0444 file in its 0555 directory is read-only for real)."""
    env = dict(os.environ, GLASSBOX_HOME=str(home), PYTHONPATH=str(SRC))
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file read-only for root")
        prefix = [setpriv, "--bounding-set", DROP_DAC, "--inh-caps", DROP_DAC, "--"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "glassbox", *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_read_only_copy_can_be_audited(copy_of_a_log: tuple[Path, Path]) -> None:
    db, home = copy_of_a_log
    store = str(db)
    before = _files(db)
    own = load_or_create_signer(home / "log" / "log.skey")  # the auditor's own embedded log key
    (home / "log" / "log.skey").chmod(0o644)
    ok = _cli_as_reader(home, "log", "search", "--store", store, "--name", "m0", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["indexes"] == [0, 2]
    # ... read with the key the copy records, though this machine has its own log key:
    assert (
        own.vkey
        != json.loads(_cli_as_reader(home, "log", "checkpoint", "--store", store, "--json").stdout)[
            "vkey"
        ]
    )
    own_key = str(home / "log" / "log.skey")
    wrong = _cli_as_reader(
        home, "log", "search", "--store", store, "--name", "m0", "--key", own_key
    )
    assert wrong.returncode == 2 and "this log was created with key" in wrong.stderr
    got = _cli_as_reader(home, "log", "get", "1", "--store", store, "--json")
    assert got.returncode == 0 and json.loads(got.stdout)["index"] == 1, got.stderr
    checked = _cli_as_reader(home, "log", "verify-store", "--store", store, "--json")
    assert checked.returncode == 0, checked.stderr
    assert (
        json.loads(checked.stdout)["size"] == 4 and json.loads(checked.stdout)["checkpoints"] == 1
    )
    exported = _cli_as_reader(home, "log", "export", str(home / "out.jsonl.gz"), "--store", store)
    assert exported.returncode == 0 and (home / "out.jsonl.gz").exists(), exported.stderr
    # The latest signed checkpoint, with a warning: the copy cannot sign one over entry 3.
    cp = _cli_as_reader(home, "log", "checkpoint", "--store", store, "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["size"] == 3 and "warning" in cp.stderr
    proof = home / "p.json"
    proved = _cli_as_reader(home, "log", "prove", "2", "-o", str(proof), "--store", store)
    assert proved.returncode == 0 and proof.exists(), proved.stderr
    refused = _cli_as_reader(home, "log", "prove", "3", "-o", str(proof), "--store", store)
    assert refused.returncode == 2
    assert "last signed checkpoint is size 3" in refused.stderr
    assert "Traceback" not in refused.stderr
    sub = home / "sub.json"
    sub.write_text(json.dumps(bundle_submission(new_key(), "m9", "9")))
    added = _cli_as_reader(home, "log", "add", str(sub), "--store", store)
    assert added.returncode == 2 and "read-only" in added.stderr, added.stderr
    assert "Traceback" not in added.stderr
    assert _files(db) == before  # nothing written, not even a WAL index


@needs_pg
@pytest.mark.postgres
def test_postgres_read_only_and_reconnect() -> None:
    import psycopg

    from glassbox.tlog import TransparencyLog
    from glassbox.tlog.note import Signer

    schema = fresh_pg_schema()
    try:
        with pytest.raises(StoreError, match="not a log database") as err:
            open_store(pg_url(schema), read_only=True)
        assert err.value.kind == "not-a-log"
        log = TransparencyLog(open_store(pg_url(schema)), Signer.generate("pg.example/log"))
        log.add_leaf(b"a")
        ro = open_store(pg_url(schema), read_only=True)
        try:
            assert ro.size() == 1
            with pytest.raises(StoreError, match="read-only"):
                ro._wexec("INSERT INTO tlog_meta VALUES ('x', 'y')")  # the server refuses too
            with pytest.raises(StoreError, match="read-only"):
                ro.set_meta("x", "y")
        finally:
            ro.close()
        # The database server drops every connection of the log: one read fails with a
        # typed error, then the store reconnects; an append is retried on a new connection.
        pids = [log.store._conn().info.backend_pid, log.store._writer().info.backend_pid]
        assert PG_DSN
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError) as err:
            log.size()
        assert err.value.kind == "unavailable"
        assert log.size() == 1
        assert log.add_leaf(b"b").index == 1
        log.close()
    finally:
        drop_pg_schema(schema)
