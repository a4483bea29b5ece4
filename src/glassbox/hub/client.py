"""``glassbox publish`` and ``glassbox pull``: the hub's client side.

Pull never trusts the hub: it downloads into a staging directory beside the destination,
runs the trust part's gate there (a signature by a publisher *the user's policy* trusts, the
files exactly as signed, a log proof with the policy's witness cosignatures and consistent with
the checkpoints this machine saw, a scan), and only then renames the verified directory into
place. An interrupted download leaves its partial files in the staging directory, where the
next pull resumes them with HTTP ``Range``; the destination never holds anything unverified.
A release the gate refuses is deleted from staging.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.errors import InputError, VerificationError
from glassbox.hub.hubscan import HUB_RESCAN_SUFFIX, HUB_SCAN_SUFFIX
from glassbox.hub.names import check_upload_path, parse_ref, split_model_name
from glassbox.hub.swap import restore_aside, swap_into_place

CHUNK = 1 << 20
PROOF_SUFFIX = ".proof.json"


class HubError(VerificationError):
    """The hub refused a request; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.exit_code = 1 if status in (401, 403, 409, 422) else 2


def _http(timeout: float = 60.0) -> Any:
    try:
        import httpx
    except ImportError:
        raise InputError("the hub client needs httpx: pip install 'glassbox[hub]'") from None
    return httpx.Client(timeout=timeout, follow_redirects=False)


def _check(resp: Any, what: str) -> Any:
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        raise HubError(resp.status_code, f"{what}: hub answered {resp.status_code}: {detail}")
    return resp


def publish_model(
    model: str | os.PathLike[str],
    hub: str,
    key: Any,
    token: str,
    *,
    name: str,
    version: str,
    evidence: Sequence[tuple[str, Path]] = (),
    manifest_only: bool = False,
) -> dict[str, Any]:
    """Sign ``model`` with ``key`` (OMS, default method) and upload it with its evidence.

    Returns the hub's answer: the release and the offline proof bundle of its log entry.
    """
    import tempfile

    from glassbox.sign import sign_model

    split_model_name(name)
    path = Path(model)
    if not path.is_dir():
        raise InputError(f"{path}: publish a model directory")
    with tempfile.TemporaryDirectory(prefix="glassbox-publish-") as tmp:
        sig_path = Path(tmp) / "model.sig"
        signed = sign_model(path, key, signature_path=sig_path, use_cache=False)
        names = sorted(signed.manifest.file_digests())
        form: list[tuple[str, Any]] = [
            ("signature", ("model.sig", sig_path.read_bytes(), "application/json"))
        ]
        for kind, ev in evidence:
            form.append((f"evidence:{kind}", (ev.name, ev.read_bytes(), "application/json")))
        with contextlib.ExitStack() as stack:
            if not manifest_only:
                for rel in names:
                    fh = stack.enter_context((path / rel).open("rb"))
                    form.append(("file", (rel, fh, "application/octet-stream")))
            with _http(600.0) as http:
                resp = http.post(
                    hub.rstrip("/") + "/api/v1/releases",
                    data={"name": name, "version": version},
                    files=form,
                    headers={"Authorization": f"Bearer {token}"},
                )
        _check(resp, f"publish {name}@{version}")
        return dict(resp.json())


@dataclass
class PullResult:
    name: str
    version: str
    path: Path
    verified: bool
    bytes_downloaded: int = 0
    resumed: list[str] = field(default_factory=list)
    seconds_download: float = 0.0
    seconds_gate: float = 0.0
    gate: dict[str, Any] = field(default_factory=dict)
    hub_scan: dict[str, Any] | None = None
    #: The hub's most recent re-scan, verified like ``hub_scan`` (``None``: never re-scanned).
    latest_scan: dict[str, Any] | None = None
    swap: str = ""  # how OUT was put in place: rename, exchange (atomic) or aside

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "verified": self.verified,
            "bytes_downloaded": self.bytes_downloaded,
            "resumed": self.resumed,
            "gate": self.gate,
            "hub_scan": self.hub_scan,
            "latest_scan": self.latest_scan,
            "swap": self.swap,
        }


def remembered_size(origin: str) -> int | None:
    """The size of the latest checkpoint of ``origin`` this machine verified (to ask a hub or
    a mirror for a consistency proof from it)."""
    from glassbox.tlog import SeenCheckpoints

    seen = SeenCheckpoints()
    try:
        last = seen.get(origin)
    finally:
        seen.close()
    return last.size if last is not None and last.size > 0 else None


def staging_dir(out: Path, root_digest: str) -> Path:
    """Where a pull of this release into ``out`` keeps its partial files (stable, so a second
    pull of the same release resumes; another release gets another directory)."""
    short = root_digest.split(":")[-1][:16]
    return out.absolute().parent / f".{out.name}.glassbox-pull-{short}"


def pull_model(
    ref: str,
    hub: str,
    policy_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    replace: bool = False,
    stop_after: int | None = None,
    progress: Callable[[int], None] | None = None,
    hub_key: str | os.PathLike[str] | None = None,
) -> PullResult:
    """Download ``org/name@version`` from ``hub`` and move it to ``out`` once the gate passes.

    The hub's signed scan attestation, when the hub sent one, must hold too (``hubscan``); with
    ``hub_key`` (the hub's attestation public key) it must be there and signed by that key.
    ``stop_after`` (bytes) stops the download part-way, as an interrupted pull would: for tests
    of resuming. Raises ``TrustRefused`` when the gate refuses (nothing is moved into place).
    """
    from glassbox.trust.gate import verify_model_with_policy
    from glassbox.trust.policy import load_policy

    name, version = parse_ref(ref)
    policy = load_policy(policy_path)
    pinned = _pinned_key_id(hub_key)
    dest = Path(out)
    restore_aside(dest)  # a previous pull killed mid-swap put the old tree aside
    if dest.exists() and not replace:
        raise InputError(f"{dest}: exists; pass --replace to swap in the verified release")
    base = hub.rstrip("/")
    with _http() as http:
        info = _check(http.get(base + "/api/v1/log"), "hub log").json()
        since = remembered_size(str(info.get("origin")))
        params = {"since": since} if since else {}
        doc = _check(
            http.get(f"{base}/api/v1/releases/{name}/{version}", params=params), f"pull {ref}"
        ).json()
        stage = staging_dir(dest, str(doc["release"]["root_digest"]))
        model_dir = stage / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        result = PullResult(name, version, dest, False)
        started = time.perf_counter()
        budget = stop_after
        for item in doc["files"]:
            rel = check_upload_path(str(item["path"]))
            got, resumed = _download(
                http,
                base,
                str(item["sha256"]),
                int(item["size"]),
                model_dir / rel,
                budget,
                progress,
            )
            result.bytes_downloaded += got
            if resumed:
                result.resumed.append(rel)
            if budget is not None:
                budget -= got
                if budget <= 0:
                    raise InputError(f"pull of {ref} stopped after {stop_after} bytes (resumable)")
        result.seconds_download = time.perf_counter() - started
    (model_dir / "model.sig").write_text(json.dumps(doc["signature"]))
    proof = stage / ("model" + PROOF_SUFFIX)
    proof.write_text(json.dumps(doc["proof"]))
    started = time.perf_counter()
    gate = verify_model_with_policy(
        model_dir, policy, name=name, signature=model_dir / "model.sig", proofs=[proof]
    )
    result.seconds_gate = time.perf_counter() - started
    result.gate = gate.to_dict()
    if not gate.ok:
        shutil.rmtree(stage, ignore_errors=True)
        raise gate.refusal()
    extra: list[tuple[Path, str]] = []
    if doc.get("hub_scan") is not None or pinned is not None:
        try:
            result.hub_scan = _check_hub_scan(doc, policy, gate, pinned)
        except VerificationError:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        scan_proof = stage / ("model" + HUB_SCAN_SUFFIX)
        scan_proof.write_text(json.dumps(doc["hub_scan"]["proof"]))
        extra.append((scan_proof, HUB_SCAN_SUFFIX))
    if doc.get("latest_scan") is not None:
        try:
            result.latest_scan = _check_latest_scan(doc, policy, gate, pinned)
        except VerificationError:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        rescan_proof = stage / ("model" + HUB_RESCAN_SUFFIX)
        rescan_proof.write_text(json.dumps(doc["latest_scan"]["proof"]))
        extra.append((rescan_proof, HUB_RESCAN_SUFFIX))
    result.swap = _move_into_place(model_dir, proof, dest, extra)
    shutil.rmtree(stage, ignore_errors=True)
    result.verified = True
    return result


def _pinned_key_id(hub_key: str | os.PathLike[str] | None) -> str | None:
    if hub_key is None:
        return None
    from glassbox.sign import load_public_key, public_key_id

    return public_key_id(load_public_key(hub_key))


def _check_hub_scan(doc: dict[str, Any], policy: Any, gate: Any, pinned: str | None) -> Any:
    from glassbox.hub.hubscan import verify_hub_scan
    from glassbox.trust.gate import sha256_of

    if doc.get("hub_scan") is None:
        raise VerificationError("hub scan: the hub sent no scan attestation (--hub-key given)")
    files = sha256_of(gate.manifest) if gate.manifest is not None else None
    if files is None:
        raise VerificationError("hub scan: the release is not signed by whole-file SHA-256")
    return verify_hub_scan(doc["hub_scan"], policy, files, pinned_key_id=pinned)


def _check_latest_scan(doc: dict[str, Any], policy: Any, gate: Any, pinned: str | None) -> Any:
    """The hub's most recent re-scan holds like its publish-time scan (``verify_hub_scan``:
    logged under a checkpoint the policy trusts, by the pinned key when given, about exactly
    these files). What it found is reported with the hub's verdict and, judged here at the
    policy's own threshold, ``flagged``; the gate's local scan stays what decides."""
    from glassbox.hub.hubscan import verify_hub_scan
    from glassbox.scan import Severity
    from glassbox.trust.gate import sha256_of

    carried = doc["latest_scan"]
    files = sha256_of(gate.manifest) if gate.manifest is not None else None
    if files is None:
        raise VerificationError("latest scan: the release is not signed by whole-file SHA-256")
    try:
        checked = verify_hub_scan(carried, policy, files, pinned_key_id=pinned)
    except VerificationError as exc:
        raise VerificationError(f"latest {exc}") from None
    worst = checked.get("max_severity")
    checked["flagged"] = worst is not None and Severity.parse(str(worst)) >= policy.fail_on
    for key in ("scanned", "fail_on", "verdict", "changed"):
        checked[key] = carried.get(key)  # the hub's word, not signed
    return checked


def _download(
    http: Any,
    base: str,
    sha256: str,
    size: int,
    target: Path,
    budget: int | None,
    progress: Callable[[int], None] | None,
) -> tuple[int, bool]:
    """Fetch one file into ``target``, resuming a partial one with ``Range``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    have = target.stat().st_size if target.is_file() else 0
    if have > size:
        target.unlink()
        have = 0
    if have == size:
        return 0, False
    headers = {"Range": f"bytes={have}-"} if have else {}
    got = 0
    with http.stream("GET", f"{base}/api/v1/blobs/{sha256}", headers=headers) as resp:
        _check(resp, f"download {target.name}")
        if have and resp.status_code != 206:
            have = 0  # the server ignored the range: start again
        with target.open("r+b" if have else "wb") as fh:
            fh.seek(have)
            fh.truncate()
            for chunk in resp.iter_bytes(CHUNK):
                if have + got + len(chunk) > size:
                    raise VerificationError(f"{target.name}: the hub sent more than {size} bytes")
                if budget is not None and got + len(chunk) > budget:
                    chunk = chunk[: budget - got]
                fh.write(chunk)
                got += len(chunk)
                if progress is not None:
                    progress(len(chunk))
                if budget is not None and got >= budget:
                    break
            fh.flush()
            os.fsync(fh.fileno())
    return got, bool(have)


def _move_into_place(
    model_dir: Path, proof: Path, dest: Path, extra: Sequence[tuple[Path, str]] = ()
) -> str:
    """Swap the verified directory into ``dest`` (``glassbox.hub.swap``: an atomic
    rename-exchange where the system has one), then the proof files beside it (each replaced
    atomically). Returns how the directory went in."""
    dest = dest.absolute()
    how = swap_into_place(model_dir, dest)
    proof.replace(dest.with_name(dest.name + PROOF_SUFFIX))
    for path, suffix in extra:
        path.replace(dest.with_name(dest.name + suffix))
    return how
