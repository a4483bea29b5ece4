"""``glassbox hub rescan`` results are the hub's signed scan attestations: each is logged in
the hub's log like the publish-time scan, shown on the model page (when, which scanner, a
changed verdict), carried to ``pull`` as the most recent scan and verified there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from glassbox.errors import VerificationError
from glassbox.hub import Hub, publish_model, pull_model
from glassbox.hub.bulk import dask_client, rescan_all
from glassbox.hub.hubscan import HUB_RESCAN_SUFFIX
from glassbox.scan import SCAN_PREDICATE_TYPE
from glassbox.sign import load_private_key
from glassbox.tlog import ProofBundle, entry_from_body
from tests.hub.conftest import (
    Publisher,
    Served,
    add_publisher,
    evil_pickle,
    make_model,
    write_policy,
)


@pytest.fixture
def dask() -> Iterator[Any]:
    with dask_client(workers=1, processes=False) as client:
        yield client


def _publish(served: Served, acme: Publisher, tmp_path: Path, n: int) -> dict[str, Any]:
    return publish_model(
        make_model(tmp_path / f"m{n}", seed=n + 1),
        served.url,
        load_private_key(acme.key),
        acme.token,
        name=f"acme/m{n}",
        version="1",
    )


def _rescan(hub: Hub, tmp_path: Path, dask: Any) -> dict[str, Any]:
    return rescan_all(
        hub.db.url, str(tmp_path / "blobs"), log_key=tmp_path / "hub.key", client=dask
    )


def test_each_rescan_is_a_logged_attestation_that_pull_verifies(
    hub: Hub, served: Served, tmp_path: Path, dask: Any
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    answers = [_publish(served, acme, tmp_path, n) for n in range(2)]
    done = _rescan(hub, tmp_path, dask)
    assert done["releases"] == 2 and done["failing"] == 0 and done["changed"] == []
    assert len(done["attested"]) == 2
    for index in done["attested"]:
        stored = hub.log.get(index)
        assert stored.body is not None
        entry = entry_from_body(stored.body)
        assert entry.statement["predicateType"] == SCAN_PREDICATE_TYPE
        assert entry.key_id == hub.attester_id
    # Each names exactly the release's files, by the digests the worker hashed.
    release = hub.db.release("acme/m0", "1")
    assert release is not None
    latest = hub.db.latest_scan(release.id)
    assert latest is not None and latest.log_index in done["attested"]
    logged = entry_from_body(hub.log.get(latest.log_index).body or b"")
    subjects = {s["name"]: s["digest"]["sha256"] for s in logged.subjects()}
    assert subjects == {f["path"]: f["sha256"] for f in answers[0]["files"]}

    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "out"
    result = pull_model("acme/m0@1", served.url, policy, out, hub_key=tmp_path / "hub.attest.pub")
    assert result.latest_scan is not None
    assert result.latest_scan["log_index"] == latest.log_index
    assert result.latest_scan["key_id"] == hub.attester_id
    assert result.latest_scan["verdict"] == "pass" and result.latest_scan["flagged"] is False
    assert result.latest_scan["scanner"]["name"] == "glassbox"
    bundle = ProofBundle.read(out.with_name(out.name + HUB_RESCAN_SUFFIX))
    assert bundle.verify(hub.log.vkey).index == latest.log_index  # checkable offline

    page = httpx.get(served.url + "/models/acme/m0").text
    assert "Latest scan" in page and 'class="scanner"' in page
    assert f"signature verified now · log entry {latest.log_index}" in page
    assert "Newly flagged" not in page and "flagged by the latest scan" not in page
    # The hub's key page counts the re-scans as its own, not as a stolen key's.
    own = httpx.get(served.url + f"/publishers/{hub.attester_id}").text
    assert "4 entr(y/ies) in the log" in own and "not a release on this hub" not in own


def test_a_newly_flagged_release_shows_on_its_page(
    hub: Hub, served: Served, tmp_path: Path, dask: Any
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    answers = [_publish(served, acme, tmp_path, n) for n in range(2)]
    assert _rescan(hub, tmp_path, dask)["changed"] == []
    # A blob turns malicious behind the hub's back: the re-scan flags the release, says the
    # stored bytes are not the release's, and signs what it scanned (those other bytes).
    sha = next(f["sha256"] for f in answers[1]["files"] if f["path"] == "model.safetensors")
    (tmp_path / "blobs" / "sha256" / sha).write_bytes(evil_pickle())
    done = _rescan(hub, tmp_path, dask)
    assert done["changed"] == ["acme/m1@1: newly flagged"] and done["failing"] == 1
    release = hub.db.release("acme/m1", "1")
    assert release is not None
    latest = hub.db.latest_scan(release.id)
    assert latest is not None and latest.verdict == "fail" and latest.previous_rescan
    assert any("not the release's bytes" in b for b in latest.report["blocking"])
    logged = entry_from_body(hub.log.get(latest.log_index or 0).body or b"")
    digest = next(
        s["digest"]["sha256"] for s in logged.subjects() if s["name"] == "model.safetensors"
    )
    assert digest != sha  # it names the bytes it scanned

    page = httpx.get(served.url + "/models/acme/m1").text
    assert "flagged by the latest scan" in page
    assert 'class="newly-flagged"' in page and "an earlier re-scan" in page
    assert "GBX-PKL" in page and "not the release&#x27;s bytes" in page
    assert "Newly flagged" not in httpx.get(served.url + "/models/acme/m0").text

    # Once the blob is restored, the next re-scan says so.
    (tmp_path / "blobs" / "sha256" / sha).write_bytes(
        (tmp_path / "m1" / "model.safetensors").read_bytes()
    )
    assert _rescan(hub, tmp_path, dask)["changed"] == ["acme/m1@1: no longer flagged"]


def test_pull_refuses_a_latest_scan_that_does_not_hold(
    hub: Hub, served: Served, tmp_path: Path, dask: Any
) -> None:
    """The hub's database row points the release's latest scan at another release's scan
    entry: pull refuses and moves nothing; the page shows the attestation failing."""
    acme = add_publisher(hub, tmp_path, "acme")
    for n in range(2):
        _publish(served, acme, tmp_path, n)
    _rescan(hub, tmp_path, dask)
    m0, m1 = (hub.db.release(f"acme/m{n}", "1") for n in range(2))
    assert m0 is not None and m1 is not None
    other = hub.db.latest_scan(m1.id)
    assert other is not None
    with hub.db.transaction() as cur:
        cur.execute(
            "UPDATE hub_rescan SET log_index = ? WHERE release_id = ?", (other.log_index, m0.id)
        )
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "out"
    with pytest.raises(
        VerificationError, match="latest hub scan: the attestation is about other files"
    ):
        pull_model("acme/m0@1", served.url, policy, out)
    assert not out.exists() and not out.with_name(out.name + HUB_RESCAN_SUFFIX).exists()
    page = httpx.get(served.url + "/models/acme/m0").text
    assert (
        f"attestation did not verify: log entry {other.log_index} holds another statement" in page
    )


def test_cli_rescan_attests_and_needs_the_hub_key(hub: Hub, served: Served, tmp_path: Path) -> None:
    from distributed import LocalCluster

    from glassbox.cli.main import cli

    acme = add_publisher(hub, tmp_path, "acme")
    _publish(served, acme, tmp_path, 0)
    common = ["hub", "rescan", "--db", hub.db.url, "--blobs", str(tmp_path / "blobs")]
    missing = CliRunner().invoke(cli, [*common, "--log-key", str(tmp_path / "none.key")])
    assert missing.exit_code == 2 and "no hub log key" in missing.output
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        args = [*common, "--log-key", str(tmp_path / "hub.key"), "--json"]
        ran = CliRunner().invoke(cli, [*args, "--scheduler", cluster.scheduler_address])
    assert ran.exit_code == 0, ran.output
    done = json.loads(ran.output)
    assert done["releases"] == 1 and len(done["attested"]) == 1 and done["fail_on"] == "high"
    stored = hub.log.get(done["attested"][0])
    assert entry_from_body(stored.body or b"").key_id == hub.attester_id


def test_rescans_kept_one_per_release_before_are_moved_over(tmp_path: Path) -> None:
    """A database from before re-scans were kept (one ``hub_scan`` row per release) keeps
    what it had: each row becomes that release's latest (unattested) re-scan."""
    from glassbox.hub import HubDB

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    db = HubDB(url)
    try:
        with db.transaction() as cur:
            cur.execute(
                "INSERT INTO hub_scan (release_id, scanned, report) VALUES (?, ?, ?)",
                ("r1", 5.0, json.dumps({"findings": [], "blocking": ["GBX-PKL-001 in x"]})),
            )
    finally:
        db.close()
    db = HubDB(url)
    try:
        latest = db.latest_scan("r1")
        assert latest is not None and latest.scanned == 5.0 and latest.verdict == "fail"
        assert latest.changed == "newly flagged" and latest.attestation is None
        assert db.query("SELECT COUNT(*) FROM hub_scan")[0][0] == 0
    finally:
        db.close()


def _zip_with_bad_crc() -> bytes:
    """A zip whose member fails its CRC: the scanner's GBX-ZIP-004, a *medium* finding, so a
    release holding it passes a publish gate that fails on high."""
    import io
    import struct
    import zipfile
    import zlib

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("notes.txt", "hello world")
    data = buf.getvalue()
    crc = struct.pack("<I", zlib.crc32(b"hello world"))
    return data.replace(crc, bytes(b ^ 0xFF for b in crc))


def _publish_with_zip(hub: Hub, served: Served, tmp_path: Path) -> tuple[Publisher, Path]:
    acme = add_publisher(hub, tmp_path, "acme")
    model = make_model(tmp_path / "z")
    (model / "extra.zip").write_bytes(_zip_with_bad_crc())
    publish_model(
        model, served.url, load_private_key(acme.key), acme.token, name="acme/z", version="1"
    )
    return acme, model


def test_a_stricter_rescan_flags_a_release_and_pull_reports_it(
    hub: Hub, served: Served, tmp_path: Path, dask: Any
) -> None:
    """Nothing changed but the threshold: the bytes are the release's, so the flagged scan's
    attestation holds at pull, which reports it (the gate's own scan, at the policy's
    fail-on, still decides)."""
    acme, _model = _publish_with_zip(hub, served, tmp_path)
    blobs, key = str(tmp_path / "blobs"), tmp_path / "hub.key"
    calm = rescan_all(hub.db.url, blobs, log_key=key, client=dask)
    assert calm["failing"] == 0 and calm["changed"] == []
    strict = rescan_all(hub.db.url, blobs, log_key=key, fail_on="medium", client=dask)
    assert strict["changed"] == ["acme/z@1: newly flagged"] and strict["fail_on"] == "medium"
    assert "GBX-ZIP-004" in strict["failures"][0]

    page = httpx.get(served.url + "/models/acme/z").text
    assert "flagged by the latest scan" in page and "fails on medium" in page
    assert 'class="newly-flagged"' in page and "an earlier re-scan" in page

    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    result = pull_model("acme/z@1", served.url, policy, tmp_path / "out")
    latest = result.latest_scan
    assert latest is not None and latest["log_index"] == strict["attested"][0]
    assert latest["verdict"] == "fail" and latest["changed"] == "newly flagged"
    assert latest["max_severity"] == "medium" and latest["findings"] == 1
    assert latest["flagged"] is False  # at this policy's fail-on (high)
