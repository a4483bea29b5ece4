"""The hub's own scan of each release: signed by the hub's attestation key in the scan
part's format, appended to the hub's log, carried to ``pull`` with its proof, and checked
there (log proof, key, predicate, the files) before anything is moved into place."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from glassbox.errors import VerificationError
from glassbox.hub import Hub, publish_model, pull_model
from glassbox.hub.client import staging_dir
from glassbox.hub.hubscan import HUB_SCAN_KIND, HUB_SCAN_SUFFIX, verify_hub_scan
from glassbox.scan import SCAN_PREDICATE_TYPE
from glassbox.sign import generate_private_key, load_private_key, write_keypair
from glassbox.tlog import ProofBundle, Signer, entry_from_body
from glassbox.trust.policy import load_policy
from tests.hub.conftest import Publisher, Served, add_publisher, make_model, write_policy


def _publish(served: Served, acme: Publisher, tmp_path: Path, version: str = "1") -> Any:
    return publish_model(
        make_model(tmp_path / f"m{version}", seed=int(version)),
        served.url,
        load_private_key(acme.key),
        acme.token,
        name="acme/m",
        version=version,
    )


def test_the_hub_scan_is_logged_and_checked_at_pull(
    hub: Hub, served: Served, tmp_path: Path
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    answer = _publish(served, acme, tmp_path)
    carried = answer["hub_scan"]
    assert carried is not None and carried["key_id"] == hub.attester_id
    entry = hub.log.get(carried["log_index"])
    assert entry.body is not None
    logged = entry_from_body(entry.body)
    assert logged.statement["predicateType"] == SCAN_PREDICATE_TYPE
    assert logged.key_id == hub.attester_id != answer["release"]["key_id"]
    assert {s["name"] for s in logged.subjects()} == {f["path"] for f in answer["files"]}
    info = httpx.get(served.url + "/api/v1/log").json()
    assert info["attest_key_id"] == hub.attester_id

    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "out"
    hub_pub = tmp_path / "hub.attest.pub"
    result = pull_model("acme/m@1", served.url, policy, out, hub_key=hub_pub)
    assert result.hub_scan is not None
    assert result.hub_scan["key_id"] == hub.attester_id
    assert result.hub_scan["findings"] == 0 and result.hub_scan["max_severity"] is None
    # The pulled release carries the hub's scan with its proof: checkable offline.
    proof = out.with_name(out.name + HUB_SCAN_SUFFIX)
    bundle = ProofBundle.read(proof)
    verified = bundle.verify(hub.log.vkey)
    assert verified.entry is not None and verified.entry.key_id == hub.attester_id

    # The model page lists it as evidence signed by the hub's key; the log page names the key,
    # whose page lists its scans without taking them for a stolen key's signatures.
    html = httpx.get(served.url + "/models/acme/m").text
    assert HUB_SCAN_KIND in html and "signed by the hub&#x27;s key" in html
    assert f"/publishers/{hub.attester_id}" in httpx.get(served.url + "/log").text
    own = httpx.get(served.url + f"/publishers/{hub.attester_id}").text
    assert "own attestation key" in own
    assert "1 entr(y/ies) in the log" in own and "not a release on this hub" not in own


def test_pull_refuses_a_hub_scan_of_other_files_and_moves_nothing(
    hub: Hub, served: Served, tmp_path: Path
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    first = _publish(served, acme, tmp_path, "1")
    second = _publish(served, acme, tmp_path, "2")
    # The hub's row for release 2 is pointed at release 1's scan (a hub covering a scan up).
    release = hub.db.release("acme/m", "2")
    assert release is not None
    with hub.db.transaction() as cur:
        cur.execute(
            "UPDATE hub_evidence SET log_index = ? WHERE release_id = ? AND kind = ?",
            (first["hub_scan"]["log_index"], release.id, HUB_SCAN_KIND),
        )
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "out"
    with pytest.raises(VerificationError, match="about other files"):
        pull_model("acme/m@2", served.url, policy, out)
    assert not out.exists() and not out.with_name(out.name + HUB_SCAN_SUFFIX).exists()
    assert not staging_dir(out, second["release"]["root_digest"]).exists()


def test_pinned_hub_key_must_have_signed_the_scan(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    _publish(served, acme, tmp_path)
    _key, other_pub = write_keypair(generate_private_key(), tmp_path / "not-the-hub")
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    with pytest.raises(VerificationError, match="not the pinned hub key"):
        pull_model("acme/m@1", served.url, policy, tmp_path / "out", hub_key=other_pub)
    assert not (tmp_path / "out").exists()


def test_verify_hub_scan_refuses_forged_and_untrusted_proofs(
    hub: Hub, served: Served, tmp_path: Path
) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    answer = _publish(served, acme, tmp_path)
    policy = load_policy(write_policy(tmp_path / "p.toml", acme.pub, hub.log.vkey))
    files = {f["path"]: f["sha256"] for f in answer["files"]}
    carried = answer["hub_scan"]
    assert verify_hub_scan(carried, policy, files)["log_index"] == carried["log_index"]
    forged = json.loads(json.dumps(carried))
    leaf = bytearray(base64.b64decode(forged["proof"]["entry"]["leaf"]))
    leaf[-1] ^= 1  # another leaf than the one the log holds: the inclusion proof fails
    forged["proof"]["entry"]["leaf"] = base64.b64encode(bytes(leaf)).decode()
    with pytest.raises(VerificationError, match="hub scan"):
        verify_hub_scan(forged, policy, files)
    other = tmp_path / "other.toml"
    other_vkey = Signer.generate("other.test/log").vkey
    untrusted = load_policy(write_policy(other, acme.pub, other_vkey))
    with pytest.raises(VerificationError, match="not a log the policy trusts"):
        verify_hub_scan(carried, untrusted, files)
    with pytest.raises(VerificationError, match="no scan attestation"):
        verify_hub_scan(None, policy, files)
