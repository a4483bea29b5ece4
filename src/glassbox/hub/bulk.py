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
    nothing is copied; a copy where links are impossible). Runs on a Dask worker."""
    from glassbox.scan import Severity, scan_path

    threshold = Severity.parse(fail_on)
    root = Path(tempfile.mkdtemp(prefix="glassbox-rescan-"))
    try:
        for path, sha in files:
            target = root / "model" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            source = Path(blob_dir) / "sha256" / sha
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
        report = scan_path(root / "model", workers=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    doc = report.to_dict()
    doc["blocking"] = [
        f"{f.rule_id} in {f.location}" for f in report.findings if f.severity >= threshold
    ] + [f"not scanned: {e}" for e in report.errors]
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
    scheduler: str | None = None,
    workers: int = 2,
    processes: bool = True,
    client: Any = None,
) -> dict[str, Any]:
    """Re-scan every hosted release on Dask; store each report; count the failing ones."""
    db = HubDB(db_url)
    try:
        rows = [(r, db.files(r.id)) for r in db.all_releases() if r.hosted]
        jobs = [(r, [(f.path, f.sha256) for f in files]) for r, files in rows]
        total = sum(f.size for _r, files in rows for f in files)
        with _client(client, scheduler, workers, processes) as dask:
            dask.run(_warm_up)  # imports on every worker: start-up, not the work
            started = time.perf_counter()  # the work, not the cluster's start-up
            futures = dask.map(
                scan_release, [blob_dir] * len(jobs), [files for _r, files in jobs], pure=False
            )
            reports = dask.gather(futures)
            elapsed = time.perf_counter() - started
        failing = []
        for (release, _files), report in zip(jobs, reports, strict=True):
            db.put_scan(release.id, report)
            if report["blocking"]:
                failing.append(f"{release.name}@{release.version}: {report['blocking'][0]}")
        return {
            "releases": len(jobs),
            "failing": len(failing),
            "failures": failing,
            "bytes": total,
            "seconds": elapsed,
        }
    finally:
        db.close()


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
