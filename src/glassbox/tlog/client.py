"""HTTP client for ``glassbox log serve``: the same read/write surface as the embedded log.

The client trusts nothing the server says on its own: checkpoints are verified against the
log key the caller trusts (``log_vkey``), and callers verify proofs with ``glassbox.digest.merkle``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx

from glassbox.errors import GlassboxError, InputError, VerificationError
from glassbox.tlog.checkpoint import SignedCheckpoint, open_checkpoint
from glassbox.tlog.log import StoredEntry
from glassbox.tlog.note import NoteError, Verifier, parse_vkey
from glassbox.tlog.proofbundle import ProofBundle


def _hashes(values: object, what: str) -> list[bytes]:
    if not isinstance(values, list) or len(values) > 128:
        raise VerificationError(f"log server sent a malformed {what}")
    out = []
    for v in values:
        try:
            h = base64.b64decode(str(v), validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError(f"log server sent a malformed {what}") from None
        out.append(h)
    return out


class LogClient:
    def __init__(
        self,
        url: str,
        log_vkey: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        info = self._json("GET", "/v1/log")
        served = info.get("vkey")
        if log_vkey is not None and served != log_vkey:
            raise VerificationError(f"{self.url} serves log key {served}, expected {log_vkey}")
        if not isinstance(served, str):
            raise VerificationError(f"{self.url} did not say which log key it uses")
        try:
            self.verifier: Verifier = parse_vkey(log_vkey or served)
        except NoteError as exc:
            raise VerificationError(f"{self.url}: {exc}") from None
        self.origin = self.verifier.name
        self.vkey = self.verifier.vkey

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise GlassboxError(f"log {self.url}: {exc}") from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            err = InputError if resp.status_code < 500 else GlassboxError
            if resp.status_code == 422:
                err = VerificationError
            raise err(f"log {self.url}{path}: {resp.status_code} {str(detail)[:300]}")
        return resp

    def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = self._request(method, path, **kw)
        try:
            data = resp.json()
        except ValueError:
            raise VerificationError(f"log {self.url}{path}: response is not JSON") from None
        if not isinstance(data, dict):
            raise VerificationError(f"log {self.url}{path}: response is not a JSON object")
        return data

    def add(self, submission: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/v1/entries", json=submission)

    def add_many(self, submissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add many entries in one request (``/v1/entries/batch``); per entry, in order, its
        acknowledgement or ``{"status", "error"}`` when the server refused it."""
        data = self._json("POST", "/v1/entries/batch", json={"entries": submissions})
        results = data.get("results")
        if not isinstance(results, list) or len(results) != len(submissions):
            raise VerificationError(f"log {self.url}: batch answer does not match the request")
        return [r if isinstance(r, dict) else {} for r in results]

    def size(self) -> int:
        return int(self._json("GET", "/v1/log")["size"])

    def get(self, index: int) -> StoredEntry:
        return _entry(self._json("GET", f"/v1/entries/{index}"))

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        data = self._json("GET", "/v1/entries", params={"start": start, "end": end})
        return [_entry(e) for e in data.get("entries", [])]

    def search(self, kind: str, value: str, limit: int = 100) -> list[int]:
        data = self._json("GET", "/v1/search", params={kind: value, "limit": limit})
        return [int(i) for i in data.get("indexes", [])]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        data = self._json("GET", "/v1/proof/inclusion", params={"index": index, "size": size})
        return _hashes(data.get("hashes"), "inclusion proof")

    def consistency_proof(self, old: int, size: int) -> list[bytes]:
        data = self._json("GET", "/v1/proof/consistency", params={"old": old, "size": size})
        return _hashes(data.get("hashes"), "consistency proof")

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        resp = self._request("GET", "/checkpoint")
        try:
            return open_checkpoint(resp.content, self.verifier)
        except NoteError as exc:
            raise VerificationError(f"log {self.url} checkpoint: {exc}") from None

    def proof_bundle(self, index: int, since: int | None = None) -> ProofBundle:
        params = {} if since is None else {"since": since}
        return ProofBundle.from_dict(self._json("GET", f"/v1/proof/bundle/{index}", params=params))

    def tile(self, path: str) -> bytes:
        return self._request("GET", "/" + path.lstrip("/")).content

    def close(self) -> None:
        self._http.close()


def _entry(data: dict[str, Any]) -> StoredEntry:
    try:
        body = data.get("body")
        return StoredEntry(
            int(data["index"]),
            base64.b64decode(data["leaf"], validate=True),
            bytes.fromhex(data["leaf_hash"]),
            None if body is None else base64.b64decode(body, validate=True),
        )
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise VerificationError("log server sent a malformed entry") from None
