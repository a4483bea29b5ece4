"""Storage faults in the log server: the checkpoint timer survives them, requests get 503 (never
500) with Retry-After, ``/health`` says what is wrong, and once the fault clears checkpoints
resume without a restart. Faults are real where they can be (another connection holding the
write lock past the busy timeout); a disk I/O error, which cannot be caused on demand, is
injected by wrapping the store's write connection (fault injection only).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient

from glassbox.tlog import TransparencyLog, Witness, WitnessCosigner, open_store
from glassbox.tlog.faults import StoreError
from glassbox.tlog.health import Checkpointer
from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer
from glassbox.tlog.server import create_app
from glassbox.tlog.sqlite_store import SQLiteStore
from tests.tlog.helpers import bundle_submission, corrupt_node, new_key, serve

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T = TypeVar("T")


def wait_for(get: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Poll until ``done`` (liveness only: the bound is generous, nothing is timed)."""
    for _ in range(600):
        value = get()
        if done(value):
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: last {value!r}")


class WriteLock:
    """Another connection holding the log's write lock: a real lock, held until released."""

    def __init__(self, store_url: str) -> None:
        self.conn: Any
        if store_url.startswith("sqlite:"):
            self.conn = sqlite3.connect(store_url[len("sqlite://") :], isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.conn = psycopg.connect(store_url)
            self.conn.execute(
                "LOCK TABLE tlog_head, tlog_bundle, tlog_checkpoint, tlog_meta IN EXCLUSIVE MODE"
            )

    def release(self) -> None:
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None


class FailingWrites:
    """Fault injection only: the store's real write connection, except that while ``failing``
    every statement but a SELECT raises what SQLite raises on a failing disk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.failing = True

    def execute(self, sql: str, params: Any = ()) -> Any:
        if self.failing and not sql.lstrip().upper().startswith("SELECT"):
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_locked_store_gives_503_and_checkpoints_resume_without_restart(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's reproduction: the database is locked past the busy timeout while the tree
    has entries no checkpoint covers. Adds get 503 with Retry-After, never 500; the timer keeps
    retrying (backing off) and /health says degraded; once the lock goes, checkpoints resume
    and adds succeed, in the same server process."""
    caplog.set_level(logging.WARNING, logger="glassbox")
    log = TransparencyLog(
        open_store(store_url, busy_timeout=0.2), Signer.generate("faults.example/log")
    )
    for i in range(3):
        log.add_leaf(f"leaf {i}".encode())
    sub = bundle_submission(new_key(), "locked-model", "1")
    lock = WriteLock(store_url)
    try:
        for url in serve(create_app(log, checkpoint_interval=0.05, max_backoff=0.2)):
            with httpx.Client(base_url=url, timeout=60) as http:
                resp = wait_for(
                    lambda: http.get("/health"),
                    lambda r: r.json()["checkpointer"]["consecutive_failures"] >= 3,
                    "three failed checkpoint attempts",
                )
                body = resp.json()
                assert resp.status_code == 503 and body["status"] == "degraded"
                assert body["checkpointer"]["running"] is True
                assert body["checkpointer"]["last_error"]["kind"] == "locked"
                assert body["checkpoint"]["size"] is None
                assert body["checkpoint"]["uncovered_entries"] == 3

                added = http.post("/v1/entries", content=json.dumps(sub))
                assert added.status_code == 503, added.text
                assert "locked" in added.json()["detail"]
                assert int(added.headers["Retry-After"]) > 0
                batch = http.post("/v1/entries/batch", content=json.dumps({"entries": [sub]}))
                assert batch.status_code == 503, batch.text
                body = http.get("/health").json()
                assert body["writes"]["consecutive_failures"] >= 1
                assert body["writes"]["last_error"]["kind"] == "locked"
                assert http.get("/v1/log").json()["size"] == 3  # reads still work

                lock.release()
                resp = wait_for(
                    lambda: http.get("/health"), lambda r: r.status_code == 200, "recovery"
                )
                body = resp.json()
                assert body["status"] == "ok" and body["problems"] == []
                assert body["checkpoint"]["size"] == 3
                assert body["writes"]["consecutive_failures"] == 0
                added = http.post("/v1/entries", content=json.dumps(sub))
                assert added.status_code == 201 and added.json()["index"] == 3
                wait_for(
                    lambda: http.get("/health").json()["checkpoint"]["size"],
                    lambda n: n == 4,
                    "a checkpoint over the new entry",
                )
                assert http.get("/checkpoint").text.split("\n")[1] == "4"
    finally:
        lock.release()
        log.close()
    errors = _messages(caplog, logging.ERROR)
    assert any("checkpoint failed" in m and "locked" in m for m in errors), errors
    assert any("checkpoints resumed" in m for m in _messages(caplog, logging.WARNING))


def test_disk_io_error_backs_off_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A disk I/O error on every write (injected): 503 not 500, the timer backs off to its
    cap instead of spinning, and recovers by itself when the disk does."""
    caplog.set_level(logging.WARNING, logger="glassbox")
    store = SQLiteStore(tmp_path / "log.db")
    log = TransparencyLog(store, Signer.generate("faults.example/log"))
    log.add_leaf(b"a")
    log.add_leaf(b"b")
    fault = FailingWrites(store._writer())
    store._wconn = fault
    sub = bundle_submission(new_key(), "io-model", "1")
    try:
        for url in serve(create_app(log, checkpoint_interval=0.05, max_backoff=0.4)):
            with httpx.Client(base_url=url, timeout=60) as http:
                resp = wait_for(
                    lambda: http.get("/health"),
                    lambda r: r.json()["checkpointer"]["consecutive_failures"] >= 4,
                    "four failed checkpoint attempts",
                )
                cp = resp.json()["checkpointer"]
                assert resp.status_code == 503
                assert cp["last_error"]["kind"] == "io-error"
                assert "disk I/O error" in cp["last_error"]["message"]
                assert cp["next_attempt_in_seconds"] == 0.4  # 0.05 * 2**4, capped
                added = http.post("/v1/entries", content=json.dumps(sub))
                assert added.status_code == 503 and "disk I/O" in added.json()["detail"]

                fault.failing = False
                wait_for(lambda: http.get("/health"), lambda r: r.status_code == 200, "recovery")
                assert http.post("/v1/entries", content=json.dumps(sub)).status_code == 201
                wait_for(
                    lambda: http.get("/health").json()["checkpoint"]["size"],
                    lambda n: n == 3,
                    "a checkpoint over the new entry",
                )
    finally:
        log.close()
    assert any("disk I/O error" in m for m in _messages(caplog, logging.ERROR))


def test_checkpointer_survives_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not only library errors: any exception is logged (with its traceback) and retried."""
    caplog.set_level(logging.ERROR, logger="glassbox")
    log = TransparencyLog(open_store(str(tmp_path / "log.db")), Signer.generate("bug.example"))
    log.add_leaf(b"a")
    real = log.maybe_checkpoint
    calls: list[float] = []

    def broken(max_age: float) -> Any:  # fault injection: a bug for the first two ticks
        calls.append(max_age)
        if len(calls) <= 2:
            raise RuntimeError("boom")
        return real(max_age)

    monkeypatch.setattr(log, "maybe_checkpoint", broken)
    timer = Checkpointer(log, 0.01, max_backoff=0.02)
    timer.start()
    try:
        wait_for(lambda: timer.last_success, lambda t: t is not None, "a checkpoint")
        assert timer.running and timer.failures == 0 and len(calls) >= 3
        cp = log.latest_checkpoint()
        assert cp is not None and cp.checkpoint.size == 1
    finally:
        timer.stop()
        log.close()
    bugs = [r for r in caplog.records if "RuntimeError: boom" in r.getMessage()]
    assert len(bugs) == 2 and all(r.exc_info for r in bugs)


def _write_marker(store: Any) -> Any:
    """Something that changes whenever the store writes."""
    if isinstance(store, SQLiteStore):
        wal = store.path.with_name(store.path.name + "-wal")
        stat = [(p.stat().st_size, p.stat().st_mtime_ns) for p in (store.path, wal) if p.exists()]
        return store._writer().total_changes, stat
    return store._read("SELECT key, value, xmin::text FROM tlog_meta ORDER BY key") + store._read(
        "SELECT size, xmin::text FROM tlog_checkpoint ORDER BY size"
    )


def test_idle_log_writes_nothing(store_url: str) -> None:
    """``maybe_checkpoint`` on every tick of an idle log: no write at all (it used to rewrite
    ``checkpoint_time`` each time)."""
    log = TransparencyLog(open_store(store_url), Signer.generate("idle.example/log"))
    try:
        assert log.maybe_checkpoint(0) is None  # empty: nothing to sign, nothing written
        for i in range(3):
            log.add_leaf(f"leaf {i}".encode())
        first = log.maybe_checkpoint(0)
        assert first is not None and first.checkpoint.size == 3
        before = _write_marker(log.store)
        time.sleep(0.01)
        for _ in range(20):
            cp = log.maybe_checkpoint(0)
            assert cp is not None and cp.checkpoint.size == 3
        assert _write_marker(log.store) == before
        log.add_leaf(b"new")  # the marker does see writes
        cp = log.maybe_checkpoint(0)
        assert cp is not None and cp.checkpoint.size == 4
        assert _write_marker(log.store) != before
    finally:
        log.close()


def test_idle_server_writes_nothing(tmp_path: Path) -> None:
    """The same through the server's timer, running many ticks on an idle log."""
    log = TransparencyLog(open_store(str(tmp_path / "log.db")), Signer.generate("idle.example"))
    log.add_leaf(b"a")
    log.issue_checkpoint()
    before = _write_marker(log.store)
    with TestClient(create_app(log, checkpoint_interval=0.01)) as http:
        time.sleep(0.5)  # about fifty ticks
        assert http.get("/health").json()["status"] == "ok"
    assert _write_marker(log.store) == before
    log.close()


def test_witness_refusal_is_logged_and_on_health(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A witness that refuses (it cosigned another tree at this size: a fork) does not stop the
    log, but it is logged and shown on /health as a warning (the log still answers 200)."""
    caplog.set_level(logging.WARNING, logger="glassbox")
    signer = Signer.generate("fork.example/log")
    witness = Witness(
        tmp_path / "w.db", Signer.generate("w.example", ALG_COSIGNATURE_V1), [signer.verifier]
    )
    other = TransparencyLog(open_store(str(tmp_path / "other.db")), signer)
    other.cosigners = [WitnessCosigner.local(witness)]
    other.add_leaf(b"one history")
    other.issue_checkpoint()
    other.close()
    log = TransparencyLog(open_store(str(tmp_path / "log.db")), signer)
    log.cosigners = [WitnessCosigner.local(witness)]
    log.add_leaf(b"another history")
    try:
        with TestClient(create_app(log, checkpoint_interval=0.02)) as http:
            resp = wait_for(
                lambda: http.get("/health"), lambda r: r.json()["witnesses"], "a witness answer"
            )
            body = resp.json()
            assert resp.status_code == 200 and body["status"] == "ok"
            (w,) = body["witnesses"]
            assert w["name"] == "w.example" and w["ok"] is False
            assert "refused checkpoint 1: 409" in w["error"]  # 409: it cosigned another tree
            assert any("w.example" in x and "409" in x for x in body["warnings"])
            assert body["checkpoint"]["size"] == 1  # the log signed; the witness did not
    finally:
        log.close()
        witness.close()
    assert any("witness w.example did not cosign" in m for m in _messages(caplog, logging.WARNING))


def test_refusal_to_sign_is_logged_and_degrades_health(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The stored tree no longer matches the log's own last checkpoint: the log refuses to
    sign, says so at ERROR, and /health is 503 with the reason."""
    caplog.set_level(logging.WARNING, logger="glassbox")
    log = TransparencyLog(open_store(str(tmp_path / "log.db")), Signer.generate("edit.example"))
    for i in range(20):
        log.add_leaf(f"leaf {i}".encode())
    log.issue_checkpoint()
    corrupt_node(log.store, 4, 0)  # an edited interior hash under the signed tree
    for i in range(20, 25):
        log.add_leaf(f"leaf {i}".encode())
    try:
        with TestClient(create_app(log, checkpoint_interval=0.02, max_backoff=0.05)) as http:
            resp = wait_for(
                lambda: http.get("/health"), lambda r: r.status_code == 503, "degraded health"
            )
            body = resp.json()
            assert body["checkpointer"]["last_error"]["kind"] == "refused-to-sign"
            assert "refuses to sign size 25" in body["checkpointer"]["last_error"]["message"]
            assert body["checkpoint"]["size"] == 20 and body["checkpointer"]["running"]
    finally:
        log.close()
    assert any("REFUSING TO SIGN" in m for m in _messages(caplog, logging.ERROR))


def test_store_errors_are_typed_and_connections_recover(store_url: str) -> None:
    """A write past the busy timeout is a StoreError of kind ``locked`` (not a raw driver
    error), leaves no transaction behind, and the store works again once the lock goes."""
    log = TransparencyLog(open_store(store_url, busy_timeout=0.1), Signer.generate("t.example"))
    try:
        log.add_leaf(b"a")
        lock = WriteLock(store_url)
        try:
            with pytest.raises(StoreError, match="locked") as err:
                log.add_leaf(b"b")
            assert err.value.kind == "locked" and err.value.transient
            with pytest.raises(StoreError, match="locked"):
                log.store.set_meta("x", "1")
            assert log.size() == 1  # reads do not wait behind the writer
        finally:
            lock.release()
        assert log.add_leaf(b"b").index == 1
        log.store.set_meta("x", "1")
        assert log.store.get_meta("x") == "1"
    finally:
        log.close()


def test_serve_logs_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """``log serve`` shows the log's warnings and errors on stderr, time-stamped, once."""
    from glassbox.tlog.server import log_to_stderr

    logger = logging.getLogger("glassbox")
    handlers, level = list(logger.handlers), logger.level
    try:
        log_to_stderr()
        log_to_stderr()
        logging.getLogger("glassbox.tlog.server").error("checkpoint failed: %s", "locked")
        err = capfd.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].endswith(
            "ERROR glassbox.tlog.server: checkpoint failed: locked"
        )
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)


@pytest.mark.slow
def test_log_serve_process_reports_and_survives_a_locked_store(tmp_path: Path) -> None:
    """``glassbox log serve`` as an operator runs it: it starts on a locked database (opening
    does not write), logs each failed checkpoint on stderr, answers 503, and recovers."""
    import os
    import socket
    import subprocess
    import sys

    from glassbox.tlog import open_log

    db, key = tmp_path / "log.db", tmp_path / "log.skey"
    lg = open_log(str(db), key)
    lg.add_leaf(b"a")
    lg.add_leaf(b"b")
    lg.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    stderr = tmp_path / "stderr.txt"
    lock = WriteLock(f"sqlite:///{db}")
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "glassbox", "log", "serve", "--store", str(db), "--key",
             str(key), "--port", str(port), "--checkpoint-interval", "0.1", "--busy-timeout",
             "0.2"],
            env=dict(os.environ, GLASSBOX_HOME=str(tmp_path / "home")),
            stderr=err,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as http:

            def health() -> httpx.Response | None:
                try:
                    return http.get("/health")
                except httpx.TransportError:
                    return None  # not listening yet

            resp = wait_for(
                health,
                lambda r: r is not None and r.json()["checkpointer"]["consecutive_failures"] >= 2,
                "failed checkpoints",
            )
            assert resp is not None and resp.status_code == 503
            sub = bundle_submission(new_key(), "served", "1")
            added = http.post("/v1/entries", content=json.dumps(sub))
            assert added.status_code == 503 and "Retry-After" in added.headers
            lock.release()
            resp = wait_for(health, lambda r: r is not None and r.status_code == 200, "recovery")
            assert resp is not None and resp.json()["checkpoint"]["size"] == 2
            assert http.post("/v1/entries", content=json.dumps(sub)).status_code == 201
    finally:
        lock.release()
        proc.terminate()
        proc.wait(30)
    text = stderr.read_text()
    assert "ERROR glassbox.tlog.server:" in text and "locked" in text, text
    assert "checkpoints resumed" in text, text


def test_sequencer_does_not_wait_out_a_lock_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that failed on a lock already waited the whole busy timeout: it is not retried
    (its submitters hear "locked" after one wait); other errors still get one retry."""
    store = SQLiteStore(tmp_path / "log.db", busy_timeout=0.1)
    log = TransparencyLog(store, Signer.generate("retry.example"))
    calls: list[int] = []
    real = store.begin_append

    def counted() -> int:
        calls.append(1)
        return real()

    monkeypatch.setattr(store, "begin_append", counted)
    lock = WriteLock(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        with pytest.raises(StoreError, match="locked"):
            log.add_leaf(b"a")
        assert len(calls) == 1
    finally:
        lock.release()
    fault = FailingWrites(store._writer())
    store._wconn = fault
    calls.clear()
    with pytest.raises(StoreError, match="disk I/O"):
        log.add_leaf(b"a")
    assert len(calls) == 2
    fault.failing = False
    assert log.add_leaf(b"a").index == 0
    log.close()


def test_driver_errors_map_to_kinds() -> None:
    """The classification behind every StoreError, for errors this suite cannot cause on
    demand (a full disk, a corrupted PostgreSQL page, an administrator's shutdown)."""
    from glassbox.tlog.faults import postgres_kind, sqlite_kind, store_error

    sqlite_cases = {
        "database is locked": "locked",
        "attempt to write a readonly database": "read-only",
        "disk I/O error": "io-error",
        "database or disk is full": "disk-full",
        "database disk image is malformed": "damaged",
        "file is not a database": "not-a-log",
        "unable to open database file": "missing",
    }
    for text, kind in sqlite_cases.items():
        assert sqlite_kind(sqlite3.OperationalError(text)) == kind, text
    psycopg = pytest.importorskip("psycopg")
    errors = psycopg.errors
    pg_cases = {
        errors.LockNotAvailable: "locked",
        errors.DeadlockDetected: "locked",
        errors.QueryCanceled: "locked",
        errors.ReadOnlySqlTransaction: "read-only",
        errors.InsufficientPrivilege: "read-only",
        errors.DiskFull: "disk-full",
        errors.DataCorrupted: "damaged",
        errors.UndefinedTable: "not-a-log",
        errors.AdminShutdown: "unavailable",
        psycopg.OperationalError: "unavailable",
    }
    for cls, kind in pg_cases.items():
        assert postgres_kind(cls("x")) == kind, cls
    err = store_error("db", sqlite3.OperationalError("disk I/O error\nmore"), "io-error")
    assert str(err) == "db: disk I/O error on the log database (disk I/O error)"
    assert err.transient and not store_error("db", ValueError(), "damaged").transient
