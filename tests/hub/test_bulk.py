"""Bulk jobs on a real Dask LocalCluster: re-scan and re-verify every release on the hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glassbox.hub import Hub, publish_model
from glassbox.hub.bulk import dask_client, rescan_all, reverify_all
from glassbox.sign import load_private_key
from tests.hub.conftest import Served, add_publisher, evil_pickle, make_model


@pytest.fixture
def published(hub: Hub, served: Served, tmp_path: Path) -> list[dict]:
    acme = add_publisher(hub, tmp_path, "acme")
    return [
        publish_model(
            make_model(tmp_path / f"m{n}", seed=n + 1),
            served.url,
            load_private_key(acme.key),
            acme.token,
            name=f"acme/m{n}",
            version="1",
        )
        for n in range(3)
    ]


def test_rescan_finds_a_payload_the_old_scan_missed(
    hub: Hub, published: list[dict], tmp_path: Path
) -> None:
    db_url = hub.db.url
    with dask_client(workers=2, processes=False) as client:
        clean = rescan_all(db_url, str(tmp_path / "blobs"), client=client)
        assert clean["releases"] == 3 and clean["failing"] == 0
        # A blob turns malicious behind the hub's back (storage tampering, or a payload the
        # scanner of the day could not see): the bulk re-scan catches it.
        sha = next(f["sha256"] for f in published[1]["files"] if f["path"] == "model.safetensors")
        (tmp_path / "blobs" / "sha256" / sha).write_bytes(evil_pickle())
        dirty = rescan_all(db_url, str(tmp_path / "blobs"), client=client)
    assert dirty["failing"] == 1 and "acme/m1@1" in dirty["failures"][0]
    release = hub.db.release("acme/m1", "1")
    assert release is not None
    stored = hub.db.latest_scan(release.id)
    assert stored is not None and stored.report["blocking"] and stored.verdict == "fail"


def test_reverify_catches_an_edited_database(hub: Hub, published: list[dict]) -> None:
    with dask_client(workers=2, processes=False) as client:
        assert reverify_all(hub.db.url, client=client)["failed"] == []
        release = hub.db.release("acme/m0", "1")
        assert release is not None
        with hub.db.transaction() as cur:
            cur.execute(
                "UPDATE hub_file SET sha256 = ? WHERE release_id = ? AND path = ?",
                ("0" * 64, release.id, "config.json"),
            )
        doc = dict(release.signature)
        doc["dsseEnvelope"] = dict(doc["dsseEnvelope"], payload="e30=")
        with hub.db.transaction() as cur:
            cur.execute(
                "UPDATE hub_release SET signature = ? WHERE name = ?",
                (json.dumps(doc), "acme/m2"),
            )
        failed = reverify_all(hub.db.url, client=client)["failed"]
    assert len(failed) == 2
    assert any("acme/m0" in f and "file list" in f for f in failed)
    assert any(f.startswith("acme/m2") for f in failed)


def test_scheduler_address_is_used_as_given(
    hub: Hub, published: list[dict], tmp_path: Path
) -> None:
    """``--scheduler ADDR``: the jobs go to an existing cluster's scheduler (here a local one
    started by the test, reached over TCP like a remote one)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith(("tcp://", "inproc://"))
        done = rescan_all(hub.db.url, str(tmp_path / "blobs"), scheduler=address)
        assert done["releases"] == 3 and done["failing"] == 0
        assert reverify_all(hub.db.url, scheduler=address)["failed"] == []


def test_rescan_of_a_blob_another_worker_links_at_the_same_time(tmp_path: Path) -> None:
    """Releases share blobs (the same README in every version), and each re-scan task
    hard-links its files: a link moves the shared inode's ctime while another task hashes it.
    That must not be taken for a changed file (it failed the re-scan once, in CI)."""
    import hashlib
    import os
    import threading

    from glassbox.hub.bulk import scan_release

    data = b"# a shared README\n" * 200_000
    sha = hashlib.sha256(data).hexdigest()
    blob = tmp_path / "blobs" / "sha256" / sha
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            link = tmp_path / f"link{n % 2}"
            os.link(blob, link)
            link.unlink()
            n += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(10):
            doc = scan_release(str(tmp_path / "blobs"), [("README.md", sha)])
            assert doc["sha256"] == {"README.md": sha} and doc["blocking"] == []
    finally:
        stop.set()
        worker.join()
