"""``glassbox hub serve``: the hub's HTTP API and pages (FastAPI, the log server's stack).

The application object holds no state of its own beyond open connections: releases, keys,
tokens, rate counters, mirrors and the log are rows in the database, so any number of these
processes can serve one database. Uploads are capped while they stream (``StreamLimit``), the
publish rate is counted per publisher key in the database, and every library error maps to a
4xx with a one-line reason.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from glassbox.errors import InputError
from glassbox.hub.service import EVIDENCE_KINDS, Hub, HubRefused, Upload
from glassbox.tlog.server import (
    ASGIApp,
    BodyLimit,
    Receive,
    Scope,
    Send,
    install_error_handlers,
)

DEFAULT_MAX_UPLOAD = 1 << 30
DEFAULT_RATE = 60  # publishes per key per minute


_FIELDS = frozenset(
    {"name", "version", "signature", "file"} | {f"evidence:{k}" for k in EVIDENCE_KINDS}
)


class _TooLarge(Exception):
    pass


class StreamLimit(BodyLimit):
    """The log server's body limit (by header, then while streaming), without buffering the
    body: uploads are model-sized, so the application reads it as it arrives."""

    async def limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except _TooLarge:
            if not started:
                await self.refuse(send)


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _sep, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HubRefused(401, ["give an upload token: Authorization: Bearer TOKEN"])
    return token.strip()


def create_app(
    hub: Hub,
    *,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    rate_per_minute: int = DEFAULT_RATE,
    witness: Any = None,
    close_hub: bool = False,
) -> ASGIApp:
    from glassbox.hub import pages

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close_hub:
                hub.close()

    app = FastAPI(
        title="Glassbox Hub",
        description="A model registry whose every release carries its evidence.",
        version="1",
        lifespan=lifespan,
    )

    install_error_handlers(app)  # the log server's mapping; the hub adds its own two below

    @app.exception_handler(HubRefused)
    async def _refused(_r: Request, exc: HubRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "reasons": exc.reasons}, status_code=exc.status)

    @app.exception_handler(LookupError)
    async def _missing(_r: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse({"detail": str(exc).strip("'\"")}, status_code=404)

    # -- API -----------------------------------------------------------------------------
    @app.post("/api/v1/releases", summary="Publish a release (multipart form)")
    async def publish(request: Request) -> JSONResponse:
        token = _bearer(request)
        key = await run_in_threadpool(hub.db.token_key, token)
        if key is None:
            raise HubRefused(401, ["unknown upload token"])
        count = await run_in_threadpool(hub.db.hit_rate, "publish:" + key.key_id, 60)
        if count > rate_per_minute:
            raise HubRefused(429, [f"over {rate_per_minute} publishes a minute for this key"])
        try:
            form = await request.form(max_files=100_000, max_fields=1000)
        except _TooLarge:
            raise HubRefused(413, [f"request body over {max_upload} bytes"]) from None
        except Exception as exc:  # malformed multipart: python-multipart's own errors
            raise HubRefused(400, [f"not a multipart form: {exc}"]) from None
        try:
            for field in form:
                if field not in _FIELDS:
                    raise HubRefused(400, [f"unknown form field {field[:80]!r}"])
            name = _text(form.get("name"), "name")
            version = _text(form.get("version"), "version")
            signature = await _bytes(form.get("signature"), "signature")
            uploads: list[Upload] = []
            for item in form.getlist("file"):
                if not isinstance(item, UploadFile) or item.filename is None:
                    raise HubRefused(400, ["each 'file' part needs a file name (its path)"])
                uploads.append(Upload(item.filename, item.file))
            evidence: list[tuple[str, bytes]] = []
            for kind in EVIDENCE_KINDS:
                for item in form.getlist("evidence:" + kind):
                    evidence.append((kind, await _bytes(item, "evidence:" + kind)))
            done = await run_in_threadpool(
                hub.publish, key, name, version, signature, uploads, evidence
            )
        finally:
            await form.close()
        return JSONResponse(done.to_dict(), status_code=201)

    @app.get("/api/v1/releases/{org}/{model}/{version}", summary="A release, for pull")
    def release(
        org: str, model: str, version: str, since: int | None = Query(None, ge=1)
    ) -> dict[str, Any]:
        return hub.release_doc(f"{org}/{model}", version, since)

    @app.get("/api/v1/models/{org}/{model}", summary="Every version of a model")
    def versions(org: str, model: str) -> dict[str, Any]:
        rows = hub.db.releases_of(f"{org}/{model}")
        if not rows:
            raise LookupError(f"{org}/{model} is not on this hub")
        return {"name": f"{org}/{model}", "releases": [r.to_dict() for r in rows]}

    @app.get("/api/v1/blobs/{sha256}", summary="A file's bytes (HTTP Range supported)")
    def blob(sha256: str) -> Response:
        path = hub.blob(sha256)
        return FileResponse(path, media_type="application/octet-stream")

    @app.get("/api/v1/log", summary="The hub log's origin, key and size")
    def log_info() -> dict[str, Any]:
        return {
            "origin": hub.log.origin,
            "vkey": hub.log.vkey,
            "size": hub.log.size(),
            "attest_key": hub.attester_pem or None,
            "attest_key_id": hub.attester_id or None,
        }

    @app.get("/api/v1/log/entries", summary="Log entry bodies [start, end), at most 256")
    def log_entries(start: int = Query(ge=0), end: int = Query(ge=0)) -> dict[str, Any]:
        if end < start or end - start > 256:
            raise InputError(f"range [{start}, {end}) is empty-negative or over 256")
        return {"entries": [e.to_dict() for e in hub.log.entries(start, end)]}

    @app.get("/checkpoint", summary="The hub log's latest checkpoint (signed note)")
    def checkpoint() -> Response:
        cp = hub.log.latest_checkpoint()
        if cp is None:
            cp = hub.log.issue_checkpoint()
        return PlainTextResponse(cp.serialize(), headers={"Cache-Control": "no-store"})

    @app.get("/tile/{path:path}", summary="c2sp.org/tlog-tiles of the hub log")
    def tile(path: str) -> Response:
        from glassbox.tlog.tiles import parse_tile_path, read_tile

        level, index, width = parse_tile_path("tile/" + path)
        data = read_tile(hub.log.store, hub.log.size(), level, index, width)
        return Response(data, media_type="application/octet-stream")

    @app.get("/bodies/{path:path}", summary="A logged entry's full body (tile index encoding)")
    def body(path: str) -> Response:
        from glassbox.tlog.tiles import parse_tile_path

        _level, index, _width = parse_tile_path("tile/0/" + path)
        stored = hub.log.get(index)
        if stored.body is None:
            raise LookupError(f"entry {index} has no body")
        return Response(stored.body, media_type="application/json")

    @app.get("/api/v1/mirrors/{origin:path}/proof", summary="Proof bundle from a mirrored log")
    def mirror_proof(
        origin: str, index: int = Query(ge=0), since: int | None = Query(None, ge=1)
    ) -> dict[str, Any]:
        from glassbox.hub.federation import mirror_proof_bundle

        return dict(mirror_proof_bundle(hub.db, origin, index, since).to_dict())

    @app.get("/api/v1/mirrors/{origin:path}/tile/{rest:path}", summary="A mirrored log's tile")
    def mirror_tile(origin: str, rest: str) -> Response:
        from glassbox.hub.federation import db_source

        return Response(db_source(hub.db, origin)("tile/" + rest))

    @app.get("/api/v1/mirrors/{origin:path}/bodies/{rest:path}", summary="A mirrored body")
    def mirror_body(origin: str, rest: str) -> Response:
        from glassbox.hub.federation import db_source

        return Response(db_source(hub.db, origin)("bodies/" + rest))

    @app.get("/api/v1/mirrors/{origin:path}/checkpoint", summary="A mirrored log's checkpoint")
    def mirror_checkpoint(origin: str) -> Response:
        from glassbox.hub.federation import mirrored_checkpoint

        return PlainTextResponse(mirrored_checkpoint(hub.db, origin))

    if witness is not None:
        from glassbox.tlog.server import create_witness_app

        app.mount("/witness", create_witness_app(witness))

    # -- pages ---------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(pages.home(hub))

    @app.get("/models/{org}/{model}", response_class=HTMLResponse, include_in_schema=False)
    def model_page(org: str, model: str) -> HTMLResponse:
        return HTMLResponse(pages.model_page(hub, f"{org}/{model}"))

    @app.get("/publishers/{key_id}", response_class=HTMLResponse, include_in_schema=False)
    def publisher_page(key_id: str) -> HTMLResponse:
        return HTMLResponse(pages.publisher_page(hub, key_id))

    @app.get("/log", response_class=HTMLResponse, include_in_schema=False)
    def log_page() -> HTMLResponse:
        return HTMLResponse(pages.log_page(hub))

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page(q: str = Query("", max_length=200)) -> HTMLResponse:
        return HTMLResponse(pages.search_page(hub, q))

    return StreamLimit(app, max_upload)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise HubRefused(400, [f"the form needs a '{what}' field"])
    return value


async def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, UploadFile):
        data = await value.read((16 << 20) + 1)
        if len(data) > 16 << 20:
            raise HubRefused(413, [f"{what} is over 16 MiB"])
        return data
    raise HubRefused(400, [f"the form needs a '{what}' part"])


def app_from_env() -> ASGIApp:
    """App factory for several worker processes over one database (``--workers N``)."""
    from glassbox.hub.service import open_hub
    from glassbox.tlog import Signer, Witness, WitnessCosigner, parse_vkey

    env = os.environ
    cosigners: list[Any] = []
    for spec in filter(None, env.get("GLASSBOX_HUB_WITNESSES", "").split(" ")):
        vkey, _sep, rest = spec.partition("=http")
        cosigners.append(WitnessCosigner.http(parse_vkey(vkey), "http" + rest))
    hub = open_hub(
        env["GLASSBOX_HUB_DB"],
        env["GLASSBOX_HUB_BLOBS"],
        env["GLASSBOX_HUB_LOG_KEY"],
        cosigners=cosigners,
    )
    witness = None
    if env.get("GLASSBOX_HUB_COSIGN_KEY"):
        with open(env["GLASSBOX_HUB_COSIGN_KEY"], encoding="utf-8") as fh:  # noqa: PTH123
            signer = Signer.from_skey(fh.read().strip())
        logs = [parse_vkey(v) for v in env.get("GLASSBOX_HUB_COSIGN_LOGS", "").split(" ") if v]
        witness = Witness(env["GLASSBOX_HUB_WITNESS_STATE"], signer, logs)
    return create_app(
        hub,
        witness=witness,
        max_upload=int(env.get("GLASSBOX_HUB_MAX_UPLOAD", str(DEFAULT_MAX_UPLOAD))),
        rate_per_minute=int(env.get("GLASSBOX_HUB_RATE", str(DEFAULT_RATE))),
        close_hub=True,
    )
