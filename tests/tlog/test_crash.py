"""Crash test: a writer killed with SIGKILL mid-batch loses no acknowledged entry.

The writer process appends from several threads and prints ``ACK <n> <index>`` only after
``Sequencer.add`` returns (the batch committed). We kill it while batches are in flight, then
check every acknowledged entry is at its index and the whole stored tree still verifies, and
that the log keeps working afterwards. Run against SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from glassbox.tlog.sequencer import Pending, Sequencer
from glassbox.tlog.store import open_store
from glassbox.tlog.tree import StoredTree, audit_store

WRITER = r"""
import sys, threading
from glassbox.tlog.store import open_store
from glassbox.tlog.sequencer import Pending, Sequencer
store = open_store(sys.argv[1])
seq = Sequencer(store, max_batch=64)
lock = threading.Lock()
def work(t):
    n = 0
    while True:
        leaf = f"w{t}-{n}".encode()
        r = seq.add(Pending(leaf))
        with lock:
            sys.stdout.write(f"ACK {leaf.decode()} {r.index}\n")
            sys.stdout.flush()
        n += 1
for t in range(8):
    threading.Thread(target=work, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def run_and_kill(url: str, min_acks: int) -> dict[str, int]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True, env=env
    )
    acks: dict[str, int] = {}
    assert proc.stdout is not None
    enough = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # acks written before the kill still count
            if line.startswith("ACK ") and len(line.split()) == 3:
                _, name, index = line.split()
                acks[name] = int(index)
                if len(acks) >= min_acks:
                    enough.set()
        enough.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        enough.wait(60)
        os.kill(proc.pid, signal.SIGKILL)  # mid-batch: 8 threads keep the sequencer busy
    finally:
        proc.kill()
        proc.wait()
        thread.join(10)
    assert len(acks) >= min_acks, "writer did not start"
    return acks


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_entry(store_url: str) -> None:
    total: dict[str, int] = {}
    for round_ in range(3):
        total.update(run_and_kill(store_url, 300 + 200 * round_))
        store = open_store(store_url)
        try:
            size = store.size()
            assert size >= len(total)
            rows = {r.leaf.decode(): r.index for r in store.leaves(0, size)}
            missing = {k: v for k, v in total.items() if rows.get(k) != v}
            assert not missing, f"acknowledged entries lost after SIGKILL: {list(missing)[:5]}"
            root = audit_store(store)
            assert StoredTree(store).root(size) == root
        finally:
            store.close()
    store = open_store(store_url)
    seq = Sequencer(store)
    try:
        after = seq.add(Pending(b"after the crashes"))
        assert after.index == size
        assert seq.add(Pending(b"w0-0")).index == total["w0-0"]  # dedup survives restarts
    finally:
        seq.close()
        audit_store(store)
        store.close()
