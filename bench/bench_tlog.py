"""Benchmark: the transparency log against the machine's raw ceiling, measured in the same run.

Measures, on a fresh SQLite log (WAL, synchronous=FULL) in a temporary directory:

* **embedded appends/s** for ``--entries`` compact 97-byte leaves (default 1,000,000), through
  the batched path on one thread (``append_batch``: leaf hash, interior nodes, dedup, one
  transaction per batch) and through the ``Sequencer`` (its thread runs the same batches and
  acknowledges after commit), fed in bulk (``add_many``), with one ``Future`` per entry, or
  with one asyncio future per entry (``submit_async``, the HTTP server's path);
* **the raw ceiling**: SHA-256 (RFC 9162 leaf hash) of the same leaves, plus a bare batched
  SQLite insert of ``(index, leaf)`` rows with the same pragmas and batch size; the ceiling rate
  is ``entries / (hash time + insert time)``;
* **inclusion proof latency** p50/p99 at the final size (random leaves, proof generated from
  stored subtree hashes), each proof verified once with ``glassbox.digest.merkle``;
* **admission ceiling**: parsing and verifying the same signed submissions in-process, the work
  every add must do before it is appended (a bound on any HTTP add rate);
* **PostgreSQL appends/s** (with ``--postgres DSN``, default ``$GLASSBOX_TEST_POSTGRES_DSN``) beside
  the same SHA-256 plus a bare batched PostgreSQL insert;
* **HTTP adds/s** with ``--clients`` concurrent keep-alive clients against ``glassbox log serve``'s
  app under uvicorn in a separate process, for ``--http-entries`` pre-signed OMS bundles; beside
  the same raw ceiling and beside the HTTP stack's own ceiling (a bare Starlette POST endpoint
  under the same uvicorn, same clients);
* **HTTP batch adds/s**: ``--batch-size`` signed bundles per ``POST /v1/entries/batch`` from
  ``--batch-clients`` clients, in entries/s, beside the same ceilings (and beside a bare
  Starlette POST of the same batch bodies).

Ratios are printed as glassbox / ceiling. The machine may be shared: rates are from one run,
so the append lines also print the CPU-time ratio (process CPU seconds of the ceiling over
those of the run, per entry), which other processes' load disturbs far less than wall time.

    python bench/bench_tlog.py --entries 100000      # quick
    python bench/bench_tlog.py                       # 1,000,000 entries
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402

from glassbox.digest import merkle  # noqa: E402
from glassbox.tlog.sequencer import Pending, Sequencer, append_batch  # noqa: E402
from glassbox.tlog.sqlite_store import SQLiteStore  # noqa: E402
from glassbox.tlog.tree import StoredTree  # noqa: E402

BATCH = 4096


class Leaves:
    """The benchmark's input: ``n`` 97-byte leaves in one buffer, sliced out per batch.

    One bytes object rather than a list of a million: such a list is walked by every full
    garbage collection (about 25 ms each at 1M), and only the side that keeps objects alive
    across allocations triggers those collections (the log's batches do, the bare ceiling loop
    does not), so the harness's own input would be charged to the log. Both sides slice their
    leaves out of this buffer the same way.
    """

    SIZE = 97

    def __init__(self, n: int, buf: bytes | None = None) -> None:
        if buf is None:
            parts = []
            for i in range(n):
                d = hashlib.sha256(i.to_bytes(8, "big")).digest()
                parts.append(b"\x00" + d + d[::-1] + d)
            buf = b"".join(parts)
        self.n, self.buf = n, buf

    def __len__(self) -> int:
        return self.n

    def batch(self, start: int, count: int = BATCH) -> list[bytes]:
        buf, size = self.buf, self.SIZE
        return [buf[i * size : (i + 1) * size] for i in range(start, min(self.n, start + count))]

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, self.n, BATCH):
            yield from self.batch(start)

    def head(self, m: int) -> Leaves:
        return Leaves(min(m, self.n), self.buf)


class Clock:
    """Wall time and this process's CPU time (all threads) since creation. On a shared
    machine the wall rate depends on what else runs; the CPU ratio shows the cost per entry."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


CPU: dict[str, float] = {}  # CPU seconds per measurement, for the CPU-time ratios


def ceiling(leaves: Leaves, path: Path) -> tuple[float, float]:
    """Hash every leaf, then insert every leaf: each leaf is sliced out of the input once, in
    the hash phase (the log's run slices once too); the insert phase reuses those slices."""
    clock = Clock()
    t = time.perf_counter()
    batches = []
    for start in range(0, len(leaves), BATCH):
        batch = leaves.batch(start)
        for leaf in batch:
            merkle.leaf_hash(leaf)
        batches.append(batch)
    t_hash = time.perf_counter() - t
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL)")
    t = time.perf_counter()
    for n, batch in enumerate(batches):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO t (idx, leaf) VALUES (?, ?)",
            ((n * BATCH + i, x) for i, x in enumerate(batch)),
        )
        db.execute("COMMIT")
    t_insert = time.perf_counter() - t
    db.close()
    CPU["ceiling"] = clock.stop()[1]
    return t_hash, t_insert


def embedded(leaves: Leaves, path: Path) -> tuple[float, SQLiteStore]:
    store = SQLiteStore(path)
    edge = None
    clock = Clock()
    for start in range(0, len(leaves), BATCH):
        edge, _ = append_batch(store, edge, [Pending(x) for x in leaves.batch(start)])
    wall, CPU["embedded"] = clock.stop()
    return wall, store


def sequenced(leaves: Leaves, path: Path, mode: str) -> float:
    """Through the Sequencer: 2 producer threads calling ``add_many`` with 4096 entries each
    (bulk submitters, ``bulk``), one ``submit`` future per entry (``future``), or one
    ``submit_async`` asyncio future per entry awaited on an event loop (``async``: the HTTP
    server's path)."""
    store = SQLiteStore(path)
    seq = Sequencer(store, max_batch=BATCH)
    clock = Clock()
    if mode == "future":
        for f in [seq.submit(Pending(x)) for x in leaves]:
            f.result()
    elif mode == "async":

        async def feed() -> None:
            for f in [seq.submit_async(Pending(x)) for x in leaves]:
                await f

        asyncio.run(feed())
    else:
        starts = range(0, len(leaves), BATCH)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda i: seq.add_many([Pending(x) for x in leaves.batch(i)]), starts))
    elapsed, CPU[mode] = clock.stop()
    seq.close()
    store.close()
    return elapsed


def proof_latency(store: SQLiteStore, size: int, samples: int) -> tuple[list[float], list[float]]:
    """Wall and thread-CPU time per inclusion proof. On a shared machine the wall p99 includes
    being descheduled (a time slice is ~4 ms); the CPU time shows what the proof itself costs."""
    tree = StoredTree(store)
    root = tree.root(size)
    rng = random.Random(7)
    wall, cpu = [], []
    for _ in range(samples):
        i = rng.randrange(size)
        t, c = time.perf_counter(), time.thread_time()
        proof = tree.inclusion_proof(i, size)
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - t)
        leaf = store.leaves(i, i + 1)[0].leaf
        merkle.verify_inclusion(merkle.leaf_hash(leaf), i, size, proof, root)
    wall.sort()
    cpu.sort()
    return wall, cpu


def pct(values: list[float], q: float) -> str:
    return f"{values[min(len(values) - 1, int(len(values) * q))] * 1e3:.3f} ms"


SERVER = r"""
import sys, uvicorn
kind, port, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "log":
    from glassbox.tlog import TransparencyLog, open_store
    from glassbox.tlog.note import Signer
    from glassbox.tlog.server import create_app
    app = create_app(TransparencyLog(open_store(db), Signer.generate("bench.example/log")),
                     checkpoint_interval=1.0)
else:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    async def add(request):
        await request.body()
        return JSONResponse({"index": 0}, status_code=201)
    app = Starlette(routes=[Route("/v1/entries", add, methods=["POST"]),
                            Route("/v1/entries/batch", add, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_rate(
    kind: str, bodies: list[bytes], clients: int, db: Path, path: str = "/v1/entries"
) -> float:
    """Requests per second: ``clients`` threads with keep-alive connections POST ``bodies``."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-c", SERVER, kind, str(port), str(db)], env=env)
    url = f"http://127.0.0.1:{port}{path}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        local = threading.local()

        def send(body: bytes) -> None:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(timeout=120)
            resp = client.post(url, content=body)
            if resp.status_code not in (200, 201):
                raise RuntimeError(f"{resp.status_code} {resp.text[:200]}")

        with ThreadPoolExecutor(clients) as pool:  # warm the connections
            list(pool.map(send, bodies[:clients]))
            t = time.perf_counter()
            list(pool.map(send, bodies[clients:]))
            elapsed = time.perf_counter() - t
        return (len(bodies) - clients) / elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def batch_bodies(bodies: list[bytes], size: int) -> list[bytes]:
    """``/v1/entries/batch`` request bodies of ``size`` submissions each."""
    return [
        b'{"entries":[' + b",".join(bodies[i : i + size]) + b"]}"
        for i in range(0, len(bodies), size)
    ]


def signed_bodies(n: int) -> list[bytes]:
    from glassbox.sign import generate_private_key, make_statement, sign_statement
    from glassbox.tlog import make_submission

    key = generate_private_key("ed25519")
    out = []
    for i in range(n):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        st = make_statement(
            [{"name": f"model-{i % 50}", "digest": {"sha256": digest}}],
            "https://model_signing/signature/v1.0",
            {"i": i},
        )
        out.append(json.dumps(make_submission(sign_statement(st, key), key.public_key())).encode())
    return out


def postgres(leaves: Leaves, dsn: str) -> tuple[float, float]:
    """The server store: ``append_batch`` into PostgreSQL, and the bare ceiling there (a
    batched ``executemany`` of ``(index, leaf)`` rows), each in a throw-away schema."""
    import uuid

    import psycopg

    from glassbox.tlog.postgres_store import PostgresStore

    schema = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        store = PostgresStore(dsn, schema=schema)
        state = None
        t = time.perf_counter()
        for start in range(0, len(leaves), BATCH):
            state, _ = append_batch(store, state, [Pending(x) for x in leaves.batch(start)])
        t_log = time.perf_counter() - t
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE TABLE "{schema}".t (idx BIGINT PRIMARY KEY, leaf BYTEA NOT NULL)')
            t = time.perf_counter()
            for start in range(0, len(leaves), BATCH):
                rows = [(start + i, x) for i, x in enumerate(leaves.batch(start))]
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(f'INSERT INTO "{schema}".t VALUES (%s, %s)', rows)
            t_bare = time.perf_counter() - t
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return t_log, t_bare


def admission_rate(bodies: list[bytes]) -> float:
    """What verifying submissions alone allows: the log must check each signature before it
    admits an entry, so no HTTP add rate can exceed this (times the cores that verify)."""
    from glassbox.tlog import entry_from_body

    t = time.perf_counter()
    for body in bodies:
        entry_from_body(body)
    return len(bodies) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--proofs", type=int, default=5000)
    ap.add_argument("--http-entries", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--sequencer-entries", type=int, default=200_000)
    ap.add_argument("--http-batch-entries", type=int, default=12_800)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--batch-clients", type=int, default=8)
    ap.add_argument(
        "--postgres",
        default=os.environ.get("GLASSBOX_TEST_POSTGRES_DSN"),
        help="also measure the PostgreSQL store (default: $GLASSBOX_TEST_POSTGRES_DSN)",
    )
    ap.add_argument("--postgres-entries", type=int, default=200_000)
    args = ap.parse_args()
    n = args.entries
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        print(f"leaves: {n:,} x 97 bytes; batch {BATCH}; SQLite WAL synchronous=FULL")
        leaves = Leaves(n)
        t_hash, t_insert = ceiling(leaves, d / "ceiling.db")
        ceil_rate = n / (t_hash + t_insert)
        print(
            f"raw ceiling: sha256 {n / t_hash:,.0f}/s + bare insert {n / t_insert:,.0f}/s"
            f" -> {ceil_rate:,.0f} entries/s"
        )
        t_app, store = embedded(leaves, d / "log.db")
        rate = n / t_app
        print(
            f"embedded append (append_batch): {rate:,.0f} entries/s"
            f"  ratio {rate / ceil_rate:.0%} of ceiling"
            f" (CPU-time ratio {CPU['ceiling'] / CPU['embedded']:.0%})"
        )
        m = min(n, args.sequencer_entries)
        for mode, label in (
            ("bulk", "add_many, 2 threads"),
            ("future", "submit() future/entry"),
            ("async", "submit_async() asyncio future/entry"),
        ):
            t_seq = sequenced(leaves.head(m), d / f"seq-{mode}.db", mode)
            print(
                f"embedded append (Sequencer {label}, {m:,}): {m / t_seq:,.0f} entries/s"
                f"  ratio {m / t_seq / ceil_rate:.0%} of ceiling"
                f" (CPU-time ratio {CPU['ceiling'] * m / n / CPU[mode]:.0%})"
            )
        if args.postgres:
            m = min(n, args.postgres_entries)
            t_pg, t_bare = postgres(leaves.head(m), args.postgres)
            pg_ceiling = m / (t_hash * m / n + t_bare)
            print(
                f"PostgreSQL append (append_batch, {m:,}): {m / t_pg:,.0f} entries/s  ratio"
                f" {m / t_pg / pg_ceiling:.0%} of its ceiling (sha256 + bare batched insert"
                f" {m / t_bare:,.0f} rows/s -> {pg_ceiling:,.0f} entries/s)"
            )
        wall, cpu = proof_latency(store, n, args.proofs)
        print(
            f"inclusion proof at size {n:,} ({len(wall)} random leaves): wall p50 {pct(wall, 0.5)}"
            f"  p99 {pct(wall, 0.99)};  CPU p50 {pct(cpu, 0.5)}  p99 {pct(cpu, 0.99)}"
            "  (goal p99 < 1 ms)"
        )
        store.close()
        size = args.batch_size
        total = max(args.http_entries, args.http_batch_entries)
        bodies = signed_bodies(total)
        single = bodies[: args.http_entries]
        admit = admission_rate(bodies[: min(len(bodies), 2000)])
        print(
            f"admission ceiling (JSON + key + signature check of one signed bundle, the work every"
            f" add must do before it is appended; in-process, one thread): {admit:,.0f}/s"
        )
        http = http_rate("log", single, args.clients, d / "http.db")
        bare = http_rate("bare", single, args.clients, d / "unused.db")
        print(
            f"HTTP adds ({args.clients} clients, {len(single):,} signed bundles, one per POST):"
            f" {http:,.0f}/s  ratio {http / ceil_rate:.1%} of raw ceiling,"
            f" {http / bare:.0%} of bare Starlette POST ({bare:,.0f} requests/s)"
        )
        batches = batch_bodies(bodies[: args.http_batch_entries], size)
        clients = min(args.batch_clients, len(batches) // 2)
        per_req = http_rate("log", batches, clients, d / "http-batch.db", "/v1/entries/batch")
        bare_b = http_rate("bare", batches, clients, d / "unused.db", "/v1/entries/batch")
        rate_b = per_req * size
        print(
            f"HTTP batch adds ({clients} clients, {len(batches) * size:,} signed bundles,"
            f" {size} per POST): {rate_b:,.0f} entries/s  ratio {rate_b / ceil_rate:.1%} of raw"
            f" ceiling, {rate_b / bare:.0f}x the bare Starlette POST rate ({bare:,.0f} requests/s;"
            f" bare POST of the same batch bodies: {bare_b * size:,.0f} entries/s,"
            f" ratio {per_req / bare_b:.0%})"
        )


if __name__ == "__main__":
    main()
