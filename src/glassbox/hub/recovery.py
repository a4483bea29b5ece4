"""Crash safety for publishes: who owns a claim or a staging directory, and clearing what a
dead owner left behind.

A publish claims ``name@version`` (a row) and works in a staging directory before the one
transaction that inserts the release. A hub process killed in between leaves both. Each is
tagged with its *owner*: this machine (a hash of its host name), this boot (a hash of the
kernel's boot id), the process id and the process's start time, so a reused pid is not
mistaken for the owner. An owner on this machine is dead when its process is gone, has
another start time, or ran in an earlier boot; that is checked directly, so a restarted hub
clears its own debris at once. An owner on another machine cannot be checked from here: its
claim is a lease that expires (``stale_after`` seconds after its last renewal; a live publish
renews it as it goes) and its staging directories are cleared once that old.

Blobs moved into the content-addressed store just before a commit that never came are
orphans (no file row names them); they are never served (``Hub.blob`` needs a row) and are
removed once older than ``stale_after``, never sooner, since another process's publish may be
about to commit a row for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glassbox.hub.db import HubDB

STALE_AFTER = 3600.0  # seconds: a lease of an owner on another machine, and orphan blob age
STAGING_PREFIX = "up-"
log = logging.getLogger("glassbox.hub")


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "no-boot-id"


HOST = _short(socket.gethostname())
BOOT = _short(_boot_id())


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, from ``/proc``), ``"0"`` where
    ``/proc`` is missing but the process exists, ``None`` when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        pass
    if Path("/proc/self/stat").exists():
        return None  # /proc works here, so the process is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return "0"
    return "0"


def owner_token(pid: int | None = None) -> str:
    """This process as an owner: ``HOST.BOOT.PID.START`` (no ``-``, so it fits a file name)."""
    pid = os.getpid() if pid is None else pid
    return f"{HOST}.{BOOT}.{pid}.{start_time(pid) or '0'}"


def owner_alive(owner: str) -> bool | None:
    """``True``/``False`` for an owner on this machine; ``None`` for another machine's or an
    unreadable owner (only its age can tell)."""
    parts = owner.split(".")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    host, boot, pid, start = parts
    if host != HOST:
        return None
    if boot != BOOT:
        return False
    return start_time(int(pid)) == start


def staging_owner(path: Path) -> str:
    name = path.name
    return name[len(STAGING_PREFIX) :].split("-", 1)[0] if name.startswith(STAGING_PREFIX) else ""


@dataclass
class Recovered:
    """What a sweep removed: staging directories, claims (``name@version``) and blobs."""

    staging: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.staging or self.claims or self.blobs)


def is_dead(owner: str, age: float, stale_after: float) -> bool:
    alive = owner_alive(owner)
    return alive is False or (alive is None and age > stale_after)


def sweep_staging(root: Path, stale_after: float, now: float | None = None) -> list[str]:
    """Remove staging directories whose owner is dead (or, elsewhere, older than allowed)."""
    now = time.time() if now is None else now
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in root.iterdir():
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:
                continue
            if is_dead(staging_owner(entry), age, stale_after):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry.name)
    return removed


def sweep_claims(db: HubDB, stale_after: float, now: float | None = None) -> list[str]:
    """Release claims on names that were never published whose owner is dead."""
    now = time.time() if now is None else now
    removed = []
    for name, version, owner, created in db.claims():
        if db.release(name, version) is not None:
            continue  # published: the claim is moot, and harmless
        if is_dead(owner, now - created, stale_after) and db.drop_claim(
            name, version, owner, created
        ):
            removed.append(f"{name}@{version}")
    return removed


def sweep_orphan_blobs(
    db: HubDB, sha_dir: Path, stale_after: float, now: float | None = None
) -> list[str]:
    """Remove blobs no file row names, once older than ``stale_after``."""
    now = time.time() if now is None else now
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in sha_dir.iterdir():
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:
                continue
            if age > stale_after and not db.blob_known(entry.name):
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
    return removed


def recover(db: HubDB, blob_root: Path, stale_after: float = STALE_AFTER) -> Recovered:
    """Everything a crashed publish can leave, cleared (run when a hub process starts)."""
    done = Recovered(
        staging=sweep_staging(blob_root / "staging", stale_after),
        claims=sweep_claims(db, stale_after),
        blobs=sweep_orphan_blobs(db, blob_root / "sha256", stale_after),
    )
    if done:
        log.warning(
            "recovered after a crash: %d staging dir(s), claims %s, %d orphan blob(s)",
            len(done.staging),
            ", ".join(done.claims) or "none",
            len(done.blobs),
        )
    return done
