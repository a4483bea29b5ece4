"""Benchmark: Glassbox Hub against named anchors, measured in the same run.

* **publishes/s and pulls/s** with ``--clients`` concurrent clients against two
  ``glassbox hub serve`` processes over one PostgreSQL database (``--postgres DSN``, default
  ``$GLASSBOX_TEST_POSTGRES_DSN``; SQLite if none), then checks that every acknowledged
  release is in the database and every returned proof bundle verifies with the log key;
* **pull overhead**: one ``glassbox pull`` of a ``--pull-mb`` model (download into staging,
  the whole trust gate: signature, hashing, log proof, scan; rename) beside the anchor of the
  raw download of the same files plus their SHA-256 (what any downloader that checks hashes
  does), printing the ratio and the seconds beyond the anchor;
* **bulk re-scan** of every release with Dask ``LocalCluster`` (1 and 2 worker processes)
  beside the plain single-process loop over the same releases (anchor); the share of the
  loop spent hashing the scanned bytes (for the signed statement), and recording the results
  unsigned vs signed and logged in the hub's log;
* **the hub's signed scan**: in-process publishes into a hub with its attestation key beside
  the same publishes into one without (anchor), interleaved.

    python bench/bench_hub.py --releases 8 --pull-mb 32
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)

from glassbox.digest import hash_file  # noqa: E402
from glassbox.hub import HubDB, publish_model, pull_model  # noqa: E402
from glassbox.hub.bulk import rescan_all, scan_release  # noqa: E402
from glassbox.sign import (  # noqa: E402
    generate_private_key,
    load_private_key,
    public_key_id,
    public_pem,
    write_keypair,
)
from glassbox.tlog import ProofBundle, parse_vkey, verify_proof_bundle  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_model(root: Path, seed: int, floats: int, pickle_kb: int = 0) -> Path:
    root.mkdir(parents=True)
    if pickle_kb:  # a benign pickle the scanner must walk opcode by opcode (never loaded)
        import pickle

        values = [float(i * seed % 1013) for i in range(pickle_kb * 100)]
        (root / "extra.bin").write_bytes(pickle.dumps({"values": values}, protocol=2))
    data = struct.pack(f"<{floats}f", *(float((i * seed) % 251) for i in range(floats)))
    header = json.dumps({"w": {"dtype": "F32", "shape": [floats], "data_offsets": [0, len(data)]}})
    head = header.encode() + b" " * (-len(header) % 8)
    (root / "model.safetensors").write_bytes(struct.pack("<Q", len(head)) + head + data)
    (root / "config.json").write_text(json.dumps({"seed": seed}))
    return root


def start_hub(db: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glassbox",
            "hub",
            "serve",
            "--db",
            db,
            "--blobs",
            str(tmp / "blobs"),
            "--log-key",
            str(tmp / "log.skey"),
            "--origin",
            "bench.hub/log",
            "--port",
            str(port),
            "--rate",
            "100000",
        ],
        env=dict(os.environ, PYTHONPATH=SRC, GLASSBOX_HOME=str(tmp / "server-home")),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/api/v1/log", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hub did not start") from None
            time.sleep(0.1)


def fresh_schema(dsn: str) -> tuple[str, str]:
    import psycopg

    name = f"bench_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return name, f"{dsn} options='-c search_path={name}'"


def drop_schema(dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--releases", type=int, default=8)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--release-kb", type=int, default=256)
    ap.add_argument("--pull-mb", type=int, default=32)
    ap.add_argument("--pickle-kb", type=int, default=512, help="pickle per release (re-scan work)")
    ap.add_argument("--postgres", default=os.environ.get("GLASSBOX_TEST_POSTGRES_DSN"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    os.environ["GLASSBOX_HOME"] = str(tmp / "client-home")
    schema = None
    if args.postgres:
        schema, db = fresh_schema(args.postgres)
        backend = "PostgreSQL"
    else:
        db, backend = f"sqlite:///{tmp / 'hub.db'}", "SQLite"
    procs = []
    try:
        for _ in range(2):
            procs.append(start_hub(db, tmp))
        urls = [u for _p, u in procs]
        key_path, pub_path = write_keypair(generate_private_key(), tmp / "acme")
        key = load_private_key(key_path)
        hubdb = HubDB(db)
        kid = public_key_id(key)
        hubdb.add_key("acme", public_pem(key).decode(), kid)
        token = hubdb.new_token(kid)
        floats = args.release_kb * 256
        models = [
            make_model(tmp / f"m{n}", n + 1, floats, args.pickle_kb) for n in range(args.releases)
        ]
        for i, url in enumerate(urls):  # each process pays its imports once, untimed
            warm = make_model(tmp / f"warm{i}", 1000 + i, 256)
            publish_model(warm, url, key, token, name=f"acme/warm{i}", version="1")

        def publish(n: int) -> dict[str, Any]:
            return publish_model(models[n], urls[n % 2], key, token, name=f"acme/m{n}", version="1")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            answers = list(pool.map(publish, range(args.releases)))
        t_pub = time.perf_counter() - t0
        vkey = httpx.get(urls[0] + "/api/v1/log").json()["vkey"]
        present = sum(hubdb.release(f"acme/m{n}", "1") is not None for n in range(args.releases))
        for a in answers:
            verify_proof_bundle(ProofBundle.from_dict(a["proof"]), parse_vkey(vkey))
        policy = tmp / "policy.toml"
        policy.write_text(  # pickles allowed: the bench's releases carry a benign one
            "version = 1\n[pickle]\nallow = true\n"
            '[[publisher]]\nname = "Acme"\nmodels = ["acme/*"]\n'
            f'keys = ["{pub_path}"]\n[log]\nrequire = true\nkeys = ["{vkey}"]\n'
        )

        def pull(n: int) -> bool:
            return pull_model(
                f"acme/m{n}@1", urls[(n + 1) % 2], policy, tmp / f"pulled{n}"
            ).verified

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            pulled = sum(pool.map(pull, range(args.releases)))
        t_pull = time.perf_counter() - t0
        print(
            f"hub: 2 processes over {backend}, {args.clients} clients, "
            f"{args.releases} releases of {args.release_kb} KiB"
        )
        print(
            f"  publishes/s {args.releases / t_pub:8.2f}   acknowledged {len(answers)}, "
            f"present {present}, proofs valid {len(answers)}"
        )
        print(f"  pulls/s     {args.releases / t_pull:8.2f}   verified {pulled}")

        # Pull overhead against raw download + hashing of the same bytes.
        big = make_model(tmp / "big", 7, args.pull_mb * 262_144)
        publish_model(big, urls[0], key, token, name="acme/big", version="1")
        doc = httpx.get(urls[1] + "/api/v1/releases/acme/big/1").json()
        t0 = time.perf_counter()
        with httpx.Client(timeout=600) as http:
            for f in doc["files"]:
                target = tmp / "raw" / f["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with (
                    http.stream("GET", f"{urls[1]}/api/v1/blobs/{f['sha256']}") as resp,
                    target.open("wb") as out,
                ):
                    for chunk in resp.iter_bytes(1 << 20):
                        out.write(chunk)
                with target.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        h.update(chunk)
                assert h.hexdigest() == f["sha256"]
        t_raw = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = pull_model("acme/big@1", urls[1], policy, tmp / "big-pulled")
        t_gate = time.perf_counter() - t0
        print(
            f"pull of {args.pull_mb} MiB: glassbox pull {t_gate:6.2f} s   anchor raw download"
            f" + SHA-256 {t_raw:6.2f} s   ratio {t_gate / t_raw:5.2f}   beyond anchor"
            f" {t_gate - t_raw:6.2f} s (download {result.seconds_download:.2f} s,"
            f" gate {result.seconds_gate:.2f} s)"
        )
        hubdb.close()
        for p, _u in procs:
            p.terminate()
            p.wait(30)
        procs = []

        # Bulk re-scan: plain loop (anchor) vs Dask LocalCluster with 1 and 2 workers.
        db_ro = HubDB(db)
        jobs = [[(f.path, f.sha256) for f in db_ro.files(r.id)] for r in db_ro.all_releases()]
        size = sum(f.size for r in db_ro.all_releases() for f in db_ro.files(r.id))
        db_ro.close()
        t0 = time.perf_counter()
        for files in jobs:
            scan_release(str(tmp / "blobs"), files)
        t_plain = time.perf_counter() - t0
        print(f"bulk re-scan of {len(jobs)} releases ({size / 2**20:.1f} MiB):")
        print(f"  plain single-process loop   {t_plain:6.2f} s  {len(jobs) / t_plain:6.2f} rel/s")
        for workers in (1, 2):
            done = rescan_all(db, str(tmp / "blobs"), workers=workers, processes=True)
            rate = done["releases"] / done["seconds"]
            print(
                f"  Dask LocalCluster {workers} worker(s) {done['seconds']:6.2f} s  {rate:6.2f}"
                f" rel/s  ratio vs plain {t_plain / done['seconds']:5.2f}"
                f"  (cluster start-up excluded)"
            )
        # What the re-scan's attestation adds: the worker hashes the bytes it scans (so the
        # signed statement names them), and each result is signed and logged afterwards.
        t0 = time.perf_counter()
        for files in jobs:
            for _path, sha in files:
                hash_file(tmp / "blobs" / "sha256" / sha, "sha256")
        t_hash = time.perf_counter() - t0
        print(
            f"  of which hashing the scanned bytes {t_hash:6.2f} s"
            f" ({t_hash / t_plain:.0%} of the plain loop)"
        )
        plain = rescan_all(db, str(tmp / "blobs"), workers=1, processes=True)
        signed = rescan_all(
            db, str(tmp / "blobs"), log_key=tmp / "log.skey", workers=1, processes=True
        )
        print(
            f"  recording {len(jobs)} results: unsigned {plain['record_seconds']:6.3f} s,"
            f" signed and logged {signed['record_seconds']:6.3f} s"
            f" ({1000 * signed['record_seconds'] / len(jobs):.1f} ms per release;"
            f" scan work {signed['seconds']:.2f} s)"
        )
        attest_cost(tmp, key, floats, min(args.releases, 8))
    finally:
        for p, _u in procs:
            p.terminate()
        if schema and args.postgres:
            drop_schema(args.postgres, schema)


def attest_cost(tmp: Path, key: Any, floats: int, n: int) -> None:
    """The hub's signed scan per publish: the same releases published in-process into a hub
    with its attestation key and into one without (anchor), interleaved, on SQLite."""
    from contextlib import ExitStack

    from glassbox.hub import Upload, open_hub
    from glassbox.hub.db import KeyRow
    from glassbox.sign import sign_model

    hubs = {}
    for label in ("with", "without"):
        hub = open_hub(f"sqlite:///{tmp / label / 'hub.db'}", tmp / label / "b", tmp / label / "k")
        kid = public_key_id(key)
        hub.db.add_key("acme", public_pem(key).decode(), kid)
        if label == "without":
            hub.attester = None
        hubs[label] = (hub, KeyRow(kid, "acme", public_pem(key).decode(), ""))
    spent = {"with": 0.0, "without": 0.0}
    for i in range(n + 1):  # the first round warms imports and is not counted
        model = make_model(tmp / f"ab{i}", 500 + i, floats)
        sig = tmp / f"ab{i}.sig"
        sign_model(model, key, signature_path=sig, use_cache=False)
        for label in ("with", "without") if i % 2 else ("without", "with"):
            hub, row = hubs[label]
            with ExitStack() as stack:
                ups = [
                    Upload(f.name, stack.enter_context(f.open("rb")))
                    for f in sorted(model.iterdir())
                ]
                t0 = time.perf_counter()
                hub.publish(row, f"acme/ab{i}", "1", sig.read_bytes(), ups)
                if i:
                    spent[label] += time.perf_counter() - t0
    for hub, _row in hubs.values():
        hub.close()
    w, wo = spent["with"] / n, spent["without"] / n
    print(
        f"hub scan attestation ({n} in-process publishes each, SQLite): with {w * 1000:7.1f} ms"
        f"   anchor without {wo * 1000:7.1f} ms   ratio {w / wo:5.2f}"
        f"   cost {(w - wo) * 1000:6.1f} ms/publish"
    )


if __name__ == "__main__":
    main()
