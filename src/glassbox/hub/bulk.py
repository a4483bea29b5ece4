"""Bulk work over the whole hub on Dask distributed: re-scan every release, re-verify every
signature. The tasks are the ordinary single-release functions (``glassbox.scan.scan_path``,
the trust gate's ``authenticate``); Dask schedules them (a ``LocalCluster`` by default, any
scheduler address for a real cluster whose workers see the same blob directory). There is no
scheduler of our own here.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from glassbox.hub.db import HubDB, KeyRow


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None, workers: int = 2, processes: bool = True
) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a fresh ``LocalCluster``."""
    try:
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        from glassbox.errors import InputError

        raise InputError("bulk jobs need Dask: pip install 'glassbox[hub]'") from None
    if scheduler:
        client = distributed.Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=None,
        silence_logs=40,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def scan_release(
    blob_dir: str, files: list[tuple[str, str]], fail_on: str = "high"
) -> dict[str, Any]:
    """Scan one release's files, laid out under their names (hard links to the blobs, so
    nothing is copied; a copy where links are impossible). Runs on a Dask worker.

    Each linked file is hashed too (``sha256``: the digests of the bytes scanned, which the
    hub's signed attestation names), and a blob whose bytes are not the release's is itself
    a blocking finding. Blobs are never rewritten in place (``BlobStore.adopt`` renames), so
    the hard link is the inode both hashed and scanned."""
    from glassbox.digest.hashing import hash_range
    from glassbox.scan import Severity, scan_path

    threshold = Severity.parse(fail_on)
    root = Path(tempfile.mkdtemp(prefix="glassbox-rescan-"))
    digests: dict[str, str] = {}
    damaged: list[str] = []
    try:
        for path, sha in files:
            target = root / "model" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            source = Path(blob_dir) / "sha256" / sha
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            # No stat check around the hash: a worker linking the same blob for another
            # release moves its ctime mid-hash. Blobs are only ever renamed into place, and a
            # digest of changed bytes would not match ``sha`` anyway (a blocking finding).
            digests[path] = hash_range(target, 0, target.stat().st_size, "sha256").hex()
            if digests[path] != sha:
                damaged.append(f"blob store: {path} is not the release's bytes (sha256 {sha[:16]})")
        report = scan_path(root / "model", workers=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    doc = report.to_dict()
    doc["blocking"] = (
        damaged
        + [f"{f.rule_id} in {f.location}" for f in report.findings if f.severity >= threshold]
        + [f"not scanned: {e}" for e in report.errors]
    )
    doc["fail_on"] = str(threshold)
    doc["sha256"] = digests
    return doc


def _warm_up() -> None:
    import glassbox.scan  # noqa: F401


def verify_release(
    name: str, signature: dict[str, Any], keys: list[KeyRow], files: list[tuple[str, str]]
) -> str | None:
    """Re-check one release: its signature by a key of its namespace (the trust gate's
    ``authenticate``), and that the hub's file table still lists exactly the signed files.
    ``None`` when it holds, else the reason. Runs on a Dask worker."""
    from glassbox.errors import GlassboxError
    from glassbox.hub.service import publisher_policy
    from glassbox.trust.gate import authenticate, sha256_of

    with tempfile.TemporaryDirectory(prefix="glassbox-reverify-") as tmp:
        sig = Path(tmp) / "model.sig"
        sig.write_text(json.dumps(signature))
        try:
            auth, reason = authenticate(sig, publisher_policy(keys), name)
        except GlassboxError as exc:
            return f"{name}: {exc}"
    if reason is not None or auth is None:
        return f"{name}: {reason.message if reason else 'not authenticated'}"
    signed = sha256_of(auth.expected) or {}
    if files and signed != dict(files):
        return f"{name}: the hub's file list differs from what was signed"
    return None


def rescan_all(
    db_url: str,
    blob_dir: str,
    *,
    log_key: str | os.PathLike[str] | None = None,
    attest_key: str | os.PathLike[str] | None = None,
    fail_on: str = "high",
    scheduler: str | None = None,
    workers: int = 2,
    processes: bool = True,
    client: Any = None,
) -> dict[str, Any]:
    """Re-scan every hosted release on Dask; store each report; count the failing ones.

    With ``log_key`` (the hub's log key; its attestation key beside it, or ``attest_key``)
    each result becomes the hub's signed scan attestation, logged in the hub's log
    (``Hub.record_rescan``); the workers never see a key."""
    from glassbox.scan import Severity

    threshold = str(Severity.parse(fail_on))
    hub = _open_for_attesting(db_url, blob_dir, log_key, attest_key) if log_key else None
    db = hub.db if hub is not None else HubDB(db_url)
    try:
        rows = [(r, db.files(r.id)) for r in db.all_releases() if r.hosted]
        jobs = [(r, [(f.path, f.sha256) for f in files]) for r, files in rows]
        total = sum(f.size for _r, files in rows for f in files)
        with _client(client, scheduler, workers, processes) as dask:
            dask.run(_warm_up)  # imports on every worker: start-up, not the work
            started = time.perf_counter()  # the work, not the cluster's start-up
            futures = dask.map(
                scan_release,
                [blob_dir] * len(jobs),
                [files for _r, files in jobs],
                [threshold] * len(jobs),
                pure=False,
            )
            reports = dask.gather(futures)
            elapsed = time.perf_counter() - started
        failing, changed, logged = [], [], []
        started = time.perf_counter()
        for (release, _files), report in zip(jobs, reports, strict=True):
            digests = report.pop("sha256")
            if hub is not None:
                row = hub.record_rescan(release, report, digests, threshold)
                if row.log_index is not None:
                    logged.append(row.log_index)
            else:
                row = db.put_scan(release.id, report, fail_on=threshold, published=release.created)
            ref = f"{release.name}@{release.version}"
            if row.changed:
                changed.append(f"{ref}: {row.changed}")
            if report["blocking"]:
                failing.append(f"{ref}: {report['blocking'][0]}")
        recorded = time.perf_counter() - started
        return {
            "releases": len(jobs),
            "failing": len(failing),
            "failures": failing,
            "changed": changed,
            "fail_on": threshold,
            "attested": logged,
            "bytes": total,
            "seconds": elapsed,
            "record_seconds": recorded,  # storing (and signing and logging) every result
        }
    finally:
        if hub is not None:
            hub.close()
        else:
            db.close()


def _open_for_attesting(
    db_url: str,
    blob_dir: str,
    log_key: str | os.PathLike[str],
    attest_key: str | os.PathLike[str] | None,
) -> Any:
    from glassbox.errors import InputError
    from glassbox.hub.service import open_hub

    if not Path(log_key).is_file():
        raise InputError(f"{log_key}: no hub log key (the re-scans are logged in the hub's log)")
    return open_hub(db_url, blob_dir, log_key, attest_key=attest_key, recover=False)


def reverify_all(
    db_url: str,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    processes: bool = True,
    client: Any = None,
) -> dict[str, Any]:
    """Re-verify every release's signature (and the hub's file list) on Dask."""
    db = HubDB(db_url)
    try:
        releases = db.all_releases()
        keys_by_org: dict[str, list[KeyRow]] = {}
        for key in db.keys():  # noqa: SIM118 - a method of HubDB, not a dict
            keys_by_org.setdefault(key.org, []).append(key)
        args = [
            (
                r.name,
                r.signature,
                keys_by_org.get(r.org, []),
                [(f.path, f.sha256) for f in db.files(r.id)],
            )
            for r in releases
        ]
        with _client(client, scheduler, workers, processes) as dask:
            futures = [dask.submit(verify_release, *a, pure=False) for a in args]
            results = dask.gather(futures)
        failed = [r for r in results if r is not None]
        return {"releases": len(releases), "failed": failed}
    finally:
        db.close()


@contextlib.contextmanager
def _client(client: Any, scheduler: str | None, workers: int, processes: bool) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    with dask_client(scheduler, workers, processes) as made:
        yield made
