"""The hub's work behind the HTTP API: accept a release, describe one, find its bytes.

A publish is judged by the trust part's gate, not by code of the hub's own: the hub turns its
namespace table into a ``TrustPolicy`` (each namespace's keys trusted for ``org/*``) and runs
``verify_model_with_policy`` on the uploaded files in a private staging directory, so a wrong
namespace, a bad signature, a tampered or extra file and a scan finding are refused with the
gate's own reasons. Only when everything holds are the statements appended to the hub's
transparency log (which lives in the same database), the release audited (``glassbox.audit``,
for the pages), the files moved into the content-addressed blob store and the rows inserted in
one transaction. A refused upload leaves no row, no blob and no log entry behind. Nothing
uploaded is ever imported, unpickled or run: it is hashed and statically scanned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from glassbox.errors import GlassboxError, InputError, VerificationError
from glassbox.files import parse_json
from glassbox.hub.db import EvidenceRow, FileRow, HubDB, KeyRow, ReleaseRow, RescanRow
from glassbox.hub.hubscan import HUB_SCAN_KIND
from glassbox.hub.lmevidence import LM_PREDICATES
from glassbox.hub.names import MAX_FILES, check_upload_path, check_version, split_model_name
from glassbox.hub.recovery import STALE_AFTER, Recovered
from glassbox.tlog import TransparencyLog

# Evidence kinds a publisher may attach (the audit's kinds, minus what the hub makes itself).
EVIDENCE_KINDS = ("provenance", "scan", "bom", "mof", "recipe", "attestation")
SIGNED_KINDS = ("provenance", "scan", "attestation")
MAX_EVIDENCE_BYTES = 16 << 20
CHUNK = 1 << 20


class HubRefused(VerificationError):
    """An upload the hub will not accept: HTTP ``status`` and every reason, one line each."""

    def __init__(self, status: int, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.status = status
        self.reasons = reasons


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its path in the model and a readable binary stream."""

    path: str
    stream: IO[bytes]


@dataclass
class Published:
    release: ReleaseRow
    files: list[FileRow]
    evidence: list[EvidenceRow]
    proof: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    hub_scan: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.release.to_dict(),
            "files": [f.__dict__ for f in self.files],
            "evidence": [
                {"kind": e.kind, "status": e.status, "log_index": e.log_index, "detail": e.detail}
                for e in self.evidence
            ],
            "proof": self.proof,
            "hub_scan": self.hub_scan,
            "notes": self.notes,
        }


class BlobStore:
    """Files by SHA-256 under ``root/sha256/``; written through a temp file and renamed."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        (self.root / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "staging").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InputError(f"{sha256[:80]!r} is not a SHA-256 hex digest")
        return self.root / "sha256" / sha256

    def staging(self) -> Path:
        """A private directory for one upload, named for its owner (this process), so a
        restarted hub knows whose it was (``glassbox.hub.recovery``)."""
        from glassbox.hub.recovery import STAGING_PREFIX, owner_token

        prefix = f"{STAGING_PREFIX}{owner_token()}-"
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.root / "staging"))

    def adopt(self, sha256: str, source: Path) -> None:
        target = self.path(sha256)
        if target.exists():
            return
        source.replace(target)


def publisher_policy(keys: Iterable[KeyRow]) -> Any:
    """The hub's namespace table as a trust policy: namespace ``org`` trusted for ``org/*``."""
    from glassbox.sign.keys import parse_public_key
    from glassbox.trust.policy import Publisher, PublisherKey, TrustPolicy

    by_org: dict[str, list[KeyRow]] = defaultdict(list)
    for row in keys:
        by_org[row.org].append(row)
    publishers = []
    for org, rows in sorted(by_org.items()):
        keys_ = tuple(
            PublisherKey(parse_public_key(r.pem.encode(), where="hub key"), r.key_id, "hub")
            for r in rows
        )
        publishers.append(Publisher(org, (f"{org}/*",), keys_))
    # Pickles are hosted (and flagged by the scan); whether to *load* one is the puller's call.
    return TrustPolicy(publishers=tuple(publishers), allow_pickle=True)


class Hub:
    """One hub process's view: the database, its embedded log, and the blob store."""

    def __init__(
        self, db: HubDB, log: TransparencyLog, blobs: BlobStore, attester: Any = None
    ) -> None:
        self.db = db
        self.log = log
        self.blobs = blobs
        #: The hub's attestation key (signs its scans of releases); ``None``: no attestations.
        self.attester = attester
        #: Lease of a claim whose owner is on another machine; age of orphan blobs to remove.
        self.stale_after = STALE_AFTER
        self.attester_pem = ""
        self.attester_id = ""
        if attester is not None:
            from glassbox.sign import public_key_id, public_pem

            self.attester_pem = public_pem(attester).decode()
            self.attester_id = public_key_id(attester)

    def close(self) -> None:
        self.log.close()
        self.db.close()

    def recover(self) -> Recovered:
        """Clear what crashed publishes left: staging, claims, orphan blobs (at startup)."""
        from glassbox.hub.recovery import recover

        return recover(self.db, self.blobs.root, self.stale_after)

    # -- publish -------------------------------------------------------------------------
    def publish(
        self,
        key: KeyRow,
        name: str,
        version: str,
        signature: bytes,
        uploads: list[Upload],
        evidence: Sequence[tuple[str, bytes]] = (),
        *,
        audit: bool = True,
    ) -> Published:
        org, _short = split_model_name(name)
        check_version(version)
        if len(uploads) > MAX_FILES:
            raise HubRefused(413, [f"{len(uploads)} files; at most {MAX_FILES} per release"])
        paths = [check_upload_path(u.path) for u in uploads]
        if len(set(paths)) != len(paths):
            raise HubRefused(400, ["the same file name is uploaded twice"])
        for kind, doc in evidence:
            if kind not in EVIDENCE_KINDS:
                raise HubRefused(400, [f"unknown evidence kind {kind!r}; one of {EVIDENCE_KINDS}"])
            if len(doc) > MAX_EVIDENCE_BYTES:
                raise HubRefused(413, [f"{kind} evidence is over {MAX_EVIDENCE_BYTES} bytes"])
        if key.org != org:
            raise HubRefused(
                403,
                [
                    f"your token's key belongs to namespace {key.org!r}; it cannot publish under "
                    f"{org!r}"
                ],
            )
        if self.db.release(name, version) is not None:
            raise HubRefused(409, [f"{name}@{version} is already published (releases are final)"])
        stage = self.blobs.staging()
        try:
            return self._publish_staged(
                stage, key, name, version, signature, uploads, evidence, audit
            )
        except (HubRefused, InputError, VerificationError) as exc:
            _hide_paths(exc, stage)
            raise
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _publish_staged(
        self,
        stage: Path,
        key: KeyRow,
        name: str,
        version: str,
        signature: bytes,
        uploads: list[Upload],
        evidence: Sequence[tuple[str, bytes]],
        audit: bool,
    ) -> Published:
        from glassbox.tlog import make_submission, parse_entry
        from glassbox.trust.gate import authenticate, verify_model_with_policy

        sig_doc = parse_json(signature, "signature")
        sig_path = stage / "model.sig.json"
        sig_path.write_bytes(signature)
        model_dir = stage / "model"
        model_dir.mkdir()
        files: list[FileRow] = []
        for upload in uploads:
            files.append(self._receive(model_dir, upload))
        hosted = bool(uploads)
        policy = publisher_policy(self.db.keys())
        reasons: list[str] = []
        scan: dict[str, Any] | None = None
        scan_report: Any = None
        if hosted:
            gate = verify_model_with_policy(
                model_dir, policy, name=name, signature=sig_path, proofs=[], scan=True
            )
            reasons = [f"{r.link}: {r.message}" for r in gate.reasons]
            signer_id = gate.key_id
            manifest = gate.manifest
            root = gate.root_digest
            scan = gate.scan
            scan_report = gate.scan_report
        else:
            auth, reason = authenticate(sig_path, policy, name)
            if reason is not None:
                reasons.append(f"{reason.link}: {reason.message}")
            signer_id = auth.key_id if auth else None
            manifest = auth.expected if auth else None
            root = "sha256:" + auth.expected.root_digest.hex() if auth else None
        if reasons:
            raise HubRefused(422, reasons)
        assert manifest is not None and root is not None
        if signer_id != key.key_id:
            raise HubRefused(
                403,
                [
                    f"the signature is by key {str(signer_id)[:16]}, but your token is bound "
                    f"to key {key.key_id[:16]}"
                ],
            )
        signed_files = _sha256_files(manifest)
        if hosted:
            if set(signed_files) != {f.path for f in files}:
                missing = sorted(set(signed_files) - {f.path for f in files})
                raise HubRefused(
                    422, [f"files: signed but not uploaded: {', '.join(missing[:10])}"]
                )
        else:
            files = [FileRow(p, s, d) for p, (s, d) in sorted(_sizes(manifest).items())]
        # Every signed statement must verify with the publisher's key before anything is logged.
        entries = [parse_entry(make_submission(sig_doc, key.pem), where="signature")]
        ev_rows: list[EvidenceRow] = []
        ev_entries: dict[int, Any] = {}
        evidence_paths: dict[str, list[Path]] = defaultdict(list)
        for seq, (kind, raw) in enumerate(evidence):
            doc = parse_json(raw, f"{kind} evidence")
            predicate = None
            if kind in SIGNED_KINDS:
                try:
                    entry = parse_entry(make_submission(doc, key.pem), where=f"{kind} evidence")
                except VerificationError as exc:
                    raise HubRefused(422, [f"{kind} evidence: {exc}"]) from None
                predicate = entry.statement.get("predicateType")
                ev_entries[seq] = entry
            if predicate in LM_PREDICATES:
                # Lineage and probe results: the lm part's verifiers judge them now, and the
                # pages again at render time; the audit's provenance link does not read them.
                ev_rows.append(_lm_row(seq, kind, predicate, raw, key, root))
                continue
            path = stage / "evidence" / f"{seq}-{kind}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(raw)
            audit_kind = "provenance" if kind == "attestation" else kind
            evidence_paths[audit_kind].append(path)
            ev_rows.append(EvidenceRow(seq, kind, predicate, None, "unknown", "", raw.decode()))
        # Everything holds: claim the name, record every statement in the log, then the release.
        if not self._claim(name, version):
            raise HubRefused(409, [f"{name}@{version} is already published (releases are final)"])
        try:
            return self._record(
                stage,
                key,
                name,
                version,
                sig_doc,
                entries[0],
                ev_entries,
                ev_rows,
                evidence_paths,
                files,
                hosted,
                scan,
                root,
                model_dir,
                sig_path,
                audit,
                scan_report,
            )
        except BaseException:
            if self.db.release(name, version) is None:
                self.db.unclaim(name, version)
            raise

    def _claim(self, name: str, version: str) -> bool:
        """Claim ``name@version`` for this process; a claim left by a dead owner (a hub killed
        mid-publish) or whose lease ran out is taken over, once."""
        from glassbox.hub.recovery import is_dead, owner_token

        owner = owner_token()
        if self.db.claim(name, version, owner):
            return True
        held = self.db.claim_of(name, version)
        if held is None or self.db.release(name, version) is not None:
            return held is None and self.db.claim(name, version, owner)
        holder, created = held
        if not is_dead(holder, time.time() - created, self.stale_after):
            return False
        self.db.drop_claim(name, version, holder, created)
        return self.db.claim(name, version, owner)

    def _record(
        self,
        stage: Path,
        key: KeyRow,
        name: str,
        version: str,
        sig_doc: dict[str, Any],
        entry: Any,
        ev_entries: dict[int, Any],
        ev_rows: list[EvidenceRow],
        evidence_paths: dict[str, list[Path]],
        files: list[FileRow],
        hosted: bool,
        scan: dict[str, Any] | None,
        root: str,
        model_dir: Path,
        sig_path: Path,
        audit: bool,
        scan_report: Any = None,
    ) -> Published:
        from glassbox.hub.recovery import owner_token

        owner = owner_token()
        self._note_entries(name, version, owner, [entry, *ev_entries.values()])
        appended = self.log.add(entry)
        for seq, entry in ev_entries.items():
            done = self.log.add(entry)
            ev_rows[seq] = EvidenceRow(**{**ev_rows[seq].__dict__, "log_index": done.index})
        self.db.renew_claim(name, version, owner)
        hub_scan = None
        if hosted and scan_report is not None and self.attester is not None:
            hub_scan = self._attest_scan(scan_report, len(ev_rows), files, (name, version, owner))
            ev_rows.append(hub_scan)
        bundle = self.log.proof_bundle(appended.index)
        audit_doc = None
        checks: dict[str, Any] = {"scan": scan, "gate": "pass"}
        if audit and hosted:
            # The audit relates the proof to the checkpoint this machine last saw of the hub's
            # own log, so it gets a bundle carrying the consistency proof from that size.
            from glassbox.hub.client import remembered_size

            since = remembered_size(self.log.origin)
            if since and since <= self.log.size():
                audit_bundle = self.log.proof_bundle(appended.index, since)
            else:
                audit_bundle = bundle
            proof_path = stage / "model.proof.json"
            audit_bundle.write(proof_path)
            key_path = stage / "publisher.pub"
            key_path.write_text(key.pem)
            vkey_path = stage / "log.vkey"
            vkey_path.write_text(self.log.vkey + "\n")
            audit_doc = self._audit(
                model_dir, sig_path, proof_path, key_path, vkey_path, evidence_paths
            )
            ev_rows = _judge_evidence(ev_rows, audit_doc)
            self.db.renew_claim(name, version, owner)
        verdict = _verdict(hosted, audit_doc)
        release = ReleaseRow(
            uuid.uuid4().hex,
            name,
            version,
            key.org,
            key.key_id,
            root,
            hosted,
            sig_doc,
            appended.index,
            verdict,
            checks,
            audit_doc,
            time.time(),
        )
        for f in files if hosted else []:
            self.blobs.adopt(f.sha256, model_dir / f.path)
        if not self.db.insert_release(release, files, ev_rows):
            raise HubRefused(409, [f"{name}@{version} was published concurrently"])
        carried = None
        if hub_scan is not None and hub_scan.log_index is not None:
            carried = self._hub_scan_doc(hub_scan, None)
        return Published(release, files, ev_rows, bundle.to_dict(), hub_scan=carried)

    def _note_entries(self, name: str, version: str, owner: str, entries: list[Any]) -> None:
        """Record, before appending them, the entries this publish is about to log: if it
        never commits, they are known as the hub's own, not a stolen key's (publisher page)."""
        from glassbox.digest.merkle import leaf_hash

        hashes = [leaf_hash(e.leaf).hex() for e in entries]
        self.db.note_claim_entries(name, version, owner, hashes)

    def _attest_scan(
        self, report: Any, seq: int, files: list[FileRow], claim: tuple[str, str, str]
    ) -> EvidenceRow:
        """Sign the gate's scan report with the hub's key and log it (``glassbox.hub.hubscan``)
        under the publish's claim (``name``, ``version``, ``owner``)."""
        from glassbox.hub.hubscan import HUB_SCAN_KIND, attest_hub_scan
        from glassbox.scan import SCAN_PREDICATE_TYPE
        from glassbox.tlog import make_submission, parse_entry

        attestation = attest_hub_scan(report, self.attester, {f.path: f.sha256 for f in files})
        entry = parse_entry(make_submission(attestation, self.attester_pem), where="hub scan")
        self._note_entries(*claim, [entry])
        done = self.log.add(entry)
        worst = report.max_severity
        detail = (
            f"the hub's scan, signed by the hub's key {self.attester_id[:16]}: "
            f"{len(report.findings)} finding(s), worst {worst or 'none'}"
        )
        return EvidenceRow(
            seq,
            HUB_SCAN_KIND,
            SCAN_PREDICATE_TYPE,
            done.index,
            "pass",
            detail,
            json.dumps(attestation, sort_keys=True),
        )

    def _hub_scan_doc(self, row: EvidenceRow, since: int | None) -> dict[str, Any]:
        """What a pull gets of the hub's scan: the attestation and its log proof bundle (whose
        entry body is the attestation, so the bundle alone is enough offline)."""
        assert row.log_index is not None
        return self._attested_doc(row.log_index, json.loads(row.document), since)

    def _attested_doc(
        self, log_index: int, attestation: dict[str, Any], since: int | None
    ) -> dict[str, Any]:
        return {
            "log_index": log_index,
            "key_id": self.attester_id,
            "public_key": self.attester_pem,
            "attestation": attestation,
            "proof": self.log.proof_bundle(log_index, since).to_dict(),
        }

    def record_rescan(
        self,
        release: ReleaseRow,
        report: dict[str, Any],
        digests: dict[str, str],
        fail_on: str = "high",
    ) -> RescanRow:
        """Keep one re-scan of ``release`` (a ``bulk.scan_release`` result) and, with the hub's
        attestation key, sign it in the scan part's format and log it like the publish-time
        scan (``hubscan``). ``digests`` are the SHA-256 of the bytes the worker scanned (it
        hashed them itself), so the attestation names exactly what was scanned. The entry is
        recorded as the hub's before it is appended, so a re-scan killed in between is never
        taken for a stolen key's signature."""
        from glassbox.digest.merkle import leaf_hash
        from glassbox.hub.hubscan import attest_hub_scan
        from glassbox.scan.report import ScanReport
        from glassbox.tlog import make_submission, parse_entry

        attestation = entry = None
        if self.attester is not None and report.get("files"):  # nothing scanned: no statement
            attestation = attest_hub_scan(ScanReport.from_dict(report), self.attester, digests)
            entry = parse_entry(make_submission(attestation, self.attester_pem), where="re-scan")
        row = self.db.put_scan(
            release.id,
            report,
            fail_on=fail_on,
            published=release.created,
            attestation=attestation,
            leaf_hash=None if entry is None else leaf_hash(entry.leaf).hex(),
        )
        if entry is not None:
            done = self.log.add(entry)
            self.db.rescan_logged(row.id, done.index)
            row = RescanRow(**{**row.__dict__, "log_index": done.index})
        return row

    def _receive(self, model_dir: Path, upload: Upload) -> FileRow:
        """Copy one upload into the staging model, hashing as it goes (never executed)."""
        target = model_dir / upload.path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out = target.open("xb")
        except OSError:  # "a" and "a/b" both uploaded: one is a file, the other needs a dir
            raise HubRefused(
                400, [f"file name {upload.path!r} conflicts with another uploaded file"]
            ) from None
        h = hashlib.sha256()
        size = 0
        with out:
            while chunk := upload.stream.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return FileRow(upload.path, size, h.hexdigest())

    def _audit(
        self,
        model_dir: Path,
        sig_path: Path,
        proof_path: Path,
        key_path: Path,
        vkey_path: Path,
        evidence: dict[str, list[Path]],
    ) -> dict[str, Any] | None:
        from glassbox.audit import AuditOptions, audit_model

        named: dict[str, list[Path]] = {k: list(v) for k, v in evidence.items()}
        named["signature"] = [sig_path]
        named["log-proof"] = [proof_path]
        options = AuditOptions(
            keys=(key_path,),
            evidence=named,
            log_keys=(vkey_path,),
            scan_now=True,
        )
        try:
            return audit_model(model_dir, options).to_dict()
        except GlassboxError as exc:
            return {"verdict": "unknown", "error": str(exc), "links": []}

    # -- reading -------------------------------------------------------------------------
    def release_doc(self, name: str, version: str, since: int | None = None) -> dict[str, Any]:
        """What ``glassbox pull`` needs: files, signature, evidence and a fresh proof bundle
        (with a consistency proof from ``since``, the checkpoint size the client saw)."""
        release = self.db.release(name, version)
        if release is None:
            raise LookupError(f"{name}@{version} is not on this hub")
        size = self.log.size()
        if since is not None and not 0 < since <= size:
            since = None
        latest = self.log.latest_checkpoint()
        if since is not None and latest is not None and since > latest.checkpoint.size:
            self.log.issue_checkpoint()
        bundle = self.log.proof_bundle(release.log_index, since)
        evidence = self.db.evidence(release.id)
        hub_scan = next((e for e in evidence if e.kind == HUB_SCAN_KIND), None)
        return {
            "name": name,
            "version": version,
            "release": release.to_dict(),
            "signature": release.signature,
            "files": [f.__dict__ for f in self.db.files(release.id)],
            "evidence": [
                {"kind": e.kind, "status": e.status, "log_index": e.log_index} for e in evidence
            ],
            "proof": bundle.to_dict(),
            "hub_scan": None if hub_scan is None else self._hub_scan_doc(hub_scan, since),
            "latest_scan": self._latest_scan_doc(release, since),
            "log": {"origin": self.log.origin, "vkey": self.log.vkey},
        }

    def _latest_scan_doc(self, release: ReleaseRow, since: int | None) -> dict[str, Any] | None:
        """The most recent attested re-scan, as the publish-time scan is carried, with what
        the hub concluded (its threshold and verdict; the signed part is the attestation)."""
        row = self.db.latest_scan(release.id)
        if row is None or row.log_index is None or row.attestation is None:
            return None
        doc = self._attested_doc(row.log_index, row.attestation, since)
        doc.update(
            scanned=row.scanned,
            fail_on=row.fail_on,
            verdict=row.verdict,
            previous=row.previous,
            changed=row.changed,
        )
        return doc

    def blob(self, sha256: str) -> Path:
        path = self.blobs.path(sha256)
        if not self.db.blob_known(sha256) or not path.is_file():
            raise LookupError(f"no file with SHA-256 {sha256} on this hub")
        return path


def _hide_paths(exc: Exception, stage: Path) -> None:
    """Errors name the upload's parts, not the server's staging paths."""
    for where, what in ((f"{stage}/model.sig.json", "signature"), (f"{stage}/model/", "")):
        exc.args = tuple(a.replace(where, what) if isinstance(a, str) else a for a in exc.args)
        if isinstance(exc, HubRefused):
            exc.reasons = [r.replace(where, what) for r in exc.reasons]


def _sha256_files(manifest: Any) -> dict[str, str]:
    from glassbox.trust.gate import sha256_of

    files = sha256_of(manifest)
    if files is None:
        raise HubRefused(
            422, ["the hub stores whole-file SHA-256 signatures (sign with the default method)"]
        )
    return files


def _sizes(manifest: Any) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for item in manifest.items:
        out[item.path] = (int(item.size), item.digest.hex())
    return out


def _lm_row(
    seq: int, kind: str, predicate_type: str, raw: bytes, key: KeyRow, root: str
) -> EvidenceRow:
    """A lineage or probe attestation's row: refused when malformed or not signed by the
    publisher's key; a FAIL when it is about other bytes than this release's."""
    from glassbox.hub.lmevidence import about_release, check_lm_statement

    try:
        predicate = check_lm_statement(predicate_type, raw, key.pem, where=f"{kind} evidence")
    except (InputError, VerificationError) as exc:
        raise HubRefused(422, [f"{kind} evidence: {exc}"]) from None
    about = about_release(predicate_type, predicate, root.split(":", 1)[-1].lower())
    if about:
        return EvidenceRow(seq, kind, predicate_type, None, "fail", about, raw.decode())
    if "verdict" in predicate:
        detail = f"lineage: {predicate['verdict']} (score {predicate.get('score')})"
    else:
        detail = f"probe suite {predicate.get('suite', {}).get('name', '?')}"
    return EvidenceRow(seq, kind, predicate_type, None, "pass", detail, raw.decode())


def _judge_evidence(rows: list[EvidenceRow], audit_doc: dict[str, Any] | None) -> list[EvidenceRow]:
    """Each piece of evidence gets the verdict of the audit link that read it (lineage and
    probe attestations keep the verdict their own verifiers gave)."""
    if not audit_doc:
        return rows
    links = {link.get("link"): link for link in audit_doc.get("links", [])}
    link_of = {
        "provenance": "provenance",
        "attestation": "provenance",
        "scan": "safety",
        "bom": "openness",
        "mof": "openness",
        "recipe": "provenance",
    }
    out = []
    for row in rows:
        if row.predicate_type in LM_PREDICATES or row.kind == HUB_SCAN_KIND:
            out.append(row)
            continue
        link = links.get(link_of.get(row.kind, ""), {})
        status = str(link.get("verdict", "unknown"))
        detail = str(link.get("summary", ""))
        out.append(EvidenceRow(**{**row.__dict__, "status": status, "detail": detail}))
    return out


def _verdict(hosted: bool, audit_doc: dict[str, Any] | None) -> str:
    if not hosted:
        return "unknown"  # files hosted elsewhere: the hub could not scan them
    if audit_doc is None:
        return "pass"
    return str(audit_doc.get("verdict", "unknown"))


def open_hub(
    db_url: str,
    blob_dir: str | os.PathLike[str],
    log_key: str | os.PathLike[str],
    *,
    origin: str | None = None,
    cosigners: list[Any] | None = None,
    attest_key: str | os.PathLike[str] | None = None,
    recover: bool = True,
) -> Hub:
    """Open (creating on first use) a hub: its tables, its log in the same database, blobs,
    and its attestation key (default: beside the log key, ``NAME.attest.key``)."""
    from glassbox.hub.hubscan import attest_key_path, load_or_create_attester
    from glassbox.tlog import load_or_create_signer
    from glassbox.tlog.store import open_store

    signer = load_or_create_signer(Path(log_key), origin)
    attester = load_or_create_attester(attest_key or attest_key_path(log_key))
    db = HubDB(db_url)
    store = open_store(db_url)
    try:
        log = TransparencyLog(store, signer, cosigners=cosigners)
    except BaseException:
        with contextlib.suppress(Exception):
            store.close()
        db.close()
        raise
    hub = Hub(db, log, BlobStore(blob_dir), attester)
    if recover:
        hub.recover()
    return hub


def release_json(published: Published) -> str:
    return json.dumps(published.to_dict(), sort_keys=True)
