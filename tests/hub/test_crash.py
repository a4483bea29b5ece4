"""Crash safety: a hub process killed (SIGKILL, a real process) in the middle of a publish
leaves no claimed name blocked and no staging litter once a hub process starts again; and the
sweeps judge owners on this machine by their process, owners elsewhere by lease age."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from glassbox.hub import HubDB, publish_model, pull_model
from glassbox.hub.recovery import (
    owner_alive,
    owner_token,
    sweep_claims,
    sweep_orphan_blobs,
    sweep_staging,
)
from glassbox.sign import generate_private_key, load_private_key, public_key_id, write_keypair
from glassbox.sign.keys import parse_public_key
from tests.hub.conftest import free_port, make_model, write_policy
from tests.hub.test_processes import SRC, start_hub

CRASHING = Path(__file__).resolve().parent / "crashing_hub.py"


def start_crashing_hub(
    point: str, db_url: str, tmp: Path, port: int
) -> tuple[subprocess.Popen[bytes], Path]:
    marker = tmp / f"stopped-{point}"
    args = [str(marker), db_url, str(tmp / "blobs"), str(tmp / "log.skey"), str(port)]
    proc = subprocess.Popen(
        [sys.executable, str(CRASHING), point, *args],
        env=dict(os.environ, PYTHONPATH=SRC),
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/log", timeout=1).raise_for_status()
            return proc, marker
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                why = proc.stderr.read().decode() if proc.stderr else "no hub"
                raise RuntimeError(why) from None
            time.sleep(0.1)


def add_key(db_url: str, tmp: Path) -> tuple[Path, Path, str]:
    key, pub = write_keypair(generate_private_key(), tmp / "acme")
    db = HubDB(db_url)
    try:
        key_id = public_key_id(parse_public_key(pub.read_bytes()))
        db.add_key("acme", pub.read_text(), key_id)
        return key, pub, db.new_token(key_id)
    finally:
        db.close()


def staged(tmp: Path) -> list[str]:
    root = tmp / "blobs" / "staging"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


@pytest.mark.parametrize("point", ["upload", "claimed", "commit"])
def test_killed_mid_publish_leaves_nothing_blocked(db_url: str, tmp_path: Path, point: str) -> None:
    if not db_url.startswith("sqlite") and point != "commit":
        pytest.skip("PostgreSQL runs the commit point only (each case starts two processes)")
    key, pub, token = add_key(db_url, tmp_path)
    model = make_model(tmp_path / "m")
    port = free_port()
    proc, marker = start_crashing_hub(point, db_url, tmp_path, port)
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            publish_model(
                model,
                f"http://127.0.0.1:{port}",
                load_private_key(key),
                token,
                name="acme/m",
                version="1",
            )
        except BaseException as exc:  # the server dies under the request
            errors.append(exc)

    thread = threading.Thread(target=publish)
    thread.start()
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "never reached the fault"
        time.sleep(0.05)
    if point == "commit":  # logged, not committed: the live hub says so on its own pages
        key_id = public_key_id(load_private_key(key).public_key())
        live = _page(f"http://127.0.0.1:{port}/publishers/{key_id}")
        assert "logged by this hub for a publish in progress" in live
        assert "not a release on this hub" not in live
    os.kill(proc.pid, signal.SIGKILL)  # a crash: no cleanup handler runs
    proc.wait(20)
    thread.join(60)
    assert errors, "the publish should have died with the server"

    # The crash left debris: a staging directory, and (past the upload) a claimed name.
    assert staged(tmp_path), "the killed publish left no staging directory"
    db = HubDB(db_url)
    try:
        claims = [c[:2] for c in db.claims()]
        assert claims == ([] if point == "upload" else [("acme/m", "1")])
        assert db.release("acme/m", "1") is None
    finally:
        db.close()

    # A hub process starts again: it clears the dead publish's claim and staging at startup.
    port = free_port()
    hub = start_hub(db_url, tmp_path, port)
    try:
        assert staged(tmp_path) == []
        db = HubDB(db_url)
        try:
            assert db.claims() == []
        finally:
            db.close()
        url = f"http://127.0.0.1:{port}"
        answer = publish_model(model, url, load_private_key(key), token, name="acme/m", version="1")
        assert answer["release"]["name"] == "acme/m"
        vkey = httpx.get(url + "/api/v1/log").json()["vkey"]
        out = tmp_path / "out"
        pulled = pull_model("acme/m@1", url, write_policy(tmp_path / "p.toml", pub, vkey), out)
        assert pulled.verified and json.loads((out / "config.json").read_text())["seed"] == 1
        assert staged(tmp_path) == []
        check_publisher_pages(url, db_url, tmp_path, key, point)
    finally:
        hub.terminate()
        hub.wait(20)


def _page(url: str) -> str:
    resp = httpx.get(url, timeout=30)
    resp.raise_for_status()
    return resp.text


def check_publisher_pages(url: str, db_url: str, tmp: Path, key: Path, point: str) -> None:
    """What the killed publish logged (past the ``commit`` point: the signature, by the
    publisher's key, and the hub's scan, by the hub's key) is shown as the hub's own entries
    of a publish that did not complete, not as a stolen key's; an entry the hub did not write
    under a claim still raises the alarm."""
    from glassbox.sign import sign_model
    from glassbox.tlog import TransparencyLog, load_or_create_signer
    from glassbox.tlog.store import open_store

    key_id = public_key_id(load_private_key(key).public_key())
    attest_id = httpx.get(url + "/api/v1/log").json()["attest_key_id"]
    unfinished = 1 if point == "commit" else 0
    for page in (_page(f"{url}/publishers/{key_id}"), _page(f"{url}/publishers/{attest_id}")):
        assert "not a release on this hub" not in page, point
        assert page.count("did not complete (interrupted at ") == unfinished, point
        if unfinished:
            assert "<code>acme/m@1</code>, logged by this hub for a publish" in page
            assert 'class="unfinished"' in page

    # The key signs a model that never went through this hub, and the entry lands in the
    # hub's log from outside any publish (a stolen key, or a writer the hub does not know).
    other = make_model(tmp / "elsewhere", seed=7)
    signed = sign_model(other, load_private_key(key), signature_path=tmp / "elsewhere.sig")
    assert signed is not None
    log = TransparencyLog(open_store(db_url), load_or_create_signer(tmp / "log.skey"))
    try:
        foreign = log.add_signed(
            json.loads((tmp / "elsewhere.sig").read_text()), load_private_key(key).public_key()
        ).index
    finally:
        log.close()
    page = _page(f"{url}/publishers/{key_id}")
    assert "not a release on this hub" in page and f"<li>entry {foreign}</li>" in page
    assert page.count("did not complete (interrupted at ") == unfinished


def _dead_owner() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = owner_token(proc.pid)
        assert owner_alive(owner) is True
    finally:
        proc.kill()
        proc.wait()
    return owner


def test_owners_are_judged_by_process_here_and_by_age_elsewhere(tmp_path: Path) -> None:
    me, dead = owner_token(), _dead_owner()
    elsewhere = "0badc0de.12345678.4242.99"
    assert owner_alive(me) is True and owner_alive(dead) is False
    assert owner_alive(elsewhere) is None and owner_alive("not-an-owner") is None
    # Same pid, another start time: a reused pid is not the owner.
    assert owner_alive(me.rsplit(".", 1)[0] + ".1") is False

    root = tmp_path / "staging"
    root.mkdir()
    for owner in (me, dead, elsewhere, "old-" + elsewhere):
        (root / f"up-{owner.removeprefix('old-')}-{len(owner)}{owner[:3]}").mkdir()
    old = time.time() - 7200
    aged = root / f"up-{elsewhere}-aged"
    aged.mkdir()
    os.utime(aged, (old, old))
    removed = sweep_staging(root, stale_after=3600)
    left = sorted(p.name for p in root.iterdir())
    assert any(dead in r for r in removed) and aged.name in removed
    assert any(me in n for n in left) and any(elsewhere in n for n in left)

    db = HubDB(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        for name, owner in (("a/live", me), ("a/dead", dead), ("a/far", elsewhere)):
            assert db.claim(name, "1", owner)
        assert db.claim("a/far-old", "1", elsewhere)
        with db.transaction() as cur:
            cur.execute("UPDATE hub_claim SET created = ? WHERE name = 'a/far-old'", (old,))
        assert sorted(sweep_claims(db, 3600)) == ["a/dead@1", "a/far-old@1"]
        assert sorted(c[0] for c in db.claims()) == ["a/far", "a/live"]

        sha = tmp_path / "sha256"
        sha.mkdir()
        for name in ("a" * 64, "b" * 64):
            (sha / name).write_bytes(b"x")
        os.utime(sha / ("a" * 64), (old, old))
        assert sweep_orphan_blobs(db, sha, 3600) == ["a" * 64]  # the young one may be mid-commit
    finally:
        db.close()


def test_a_claim_of_a_dead_owner_is_taken_over_without_a_restart(
    hub: Any, served: Any, tmp_path: Path
) -> None:
    from tests.hub.conftest import add_publisher

    acme = add_publisher(hub, tmp_path, "acme")
    assert hub.db.claim("acme/m", "1", _dead_owner())
    publish_model(
        make_model(tmp_path / "m"),
        served.url,
        load_private_key(acme.key),
        acme.token,
        name="acme/m",
        version="1",
    )
    assert hub.db.release("acme/m", "1") is not None
    # A live owner's claim is respected: 409, not taken over.
    assert hub.db.claim("acme/m", "2", owner_token())
    from glassbox.hub.client import HubError

    with pytest.raises(HubError, match="409"):
        publish_model(
            make_model(tmp_path / "m2", seed=2),
            served.url,
            load_private_key(acme.key),
            acme.token,
            name="acme/m",
            version="2",
        )


def test_a_database_from_before_claim_owners_is_migrated(db_url: str) -> None:
    db = HubDB(db_url)
    try:
        with db.transaction() as cur:  # the claims table as the previous version made it
            cur.execute("ALTER TABLE hub_claim DROP COLUMN owner")
            cur.execute("INSERT INTO hub_claim (name, version, created) VALUES ('a/old', '1', 1.0)")
    finally:
        db.close()
    db = HubDB(db_url)
    try:
        assert db.claims() == [("a/old", "1", "", 1.0)]
        assert db.claim("a/new", "1", owner_token())
        # An owner-less claim from before is judged by its age alone.
        assert sweep_claims(db, 3600) == ["a/old@1"]
    finally:
        db.close()


def test_a_publish_refused_after_logging_is_marked_not_alarmed(
    hub: Any, served: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that fails in-process after its entries are logged (here the release's
    insert is refused: the fault a concurrent publish of the same name causes) gives up its
    claim and marks what it logged; the publisher page says so instead of a stolen-key alarm."""
    from glassbox.hub.client import HubError
    from glassbox.hub.pages import publisher_page
    from tests.hub.conftest import add_publisher

    acme = add_publisher(hub, tmp_path, "acme")
    monkeypatch.setattr(HubDB, "insert_release", lambda self, *a, **k: False)
    with pytest.raises(HubError, match="409"):
        publish_model(
            make_model(tmp_path / "m"),
            served.url,
            load_private_key(acme.key),
            acme.token,
            name="acme/m",
            version="1",
        )
    assert hub.db.claims() == [] and hub.db.release("acme/m", "1") is None
    page = publisher_page(hub, acme.key_id)
    assert "not a release on this hub" not in page
    assert "<code>acme/m@1</code>, logged by this hub for a publish that did not complete" in page
    own = publisher_page(hub, hub.attester_id)  # the hub's scan was logged too
    assert "not a release on this hub" not in own and "did not complete" in own
