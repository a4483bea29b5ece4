"""``glassbox log serve``: the log over HTTP (FastAPI, OpenAPI docs at ``/docs``).

Hostile input is the normal case for a public log: bodies are capped before they are read
(``BodyLimit``), JSON is parsed by us so errors say what is wrong, and every library error maps
to a 4xx. A 500 would be a bug. An add verifies in a worker thread (signature checks are CPU
work and never run inside the sequencer's commit path), then awaits an asyncio future that the
sequencer completes after the batch's COMMIT, without holding a worker thread, so many
concurrent clients share each batch's commit. ``/v1/entries/batch`` takes many entries per
request (one HTTP round trip, one future) for bulk producers. Checkpoints are issued by a
timer (``checkpoint_interval``, see ``health.Checkpointer``), never per request.

When the storage fails (locked past the busy timeout, read-only, I/O error, database server
gone) every request answers 503 with ``Retry-After`` and what is wrong, never 500; the timer
keeps retrying, and ``GET /health`` says what the log can and cannot do right now.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from glassbox.errors import GlassboxError, InputError, VerificationError
from glassbox.tlog.entries import MAX_BODY_BYTES, LogEntry, parse_entry
from glassbox.tlog.faults import StoreError
from glassbox.tlog.health import Checkpointer, health
from glassbox.tlog.log import TransparencyLog
from glassbox.tlog.sequencer import Appended, Pending
from glassbox.tlog.store import MAX_INDEX
from glassbox.tlog.tiles import parse_tile_path, read_tile
from glassbox.tlog.witness import Witness, WitnessError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_RANGE = 1000
MAX_BATCH = 1000


class BodyLimit:
    """Reject request bodies over ``limit`` bytes with 413, by header and while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self.refuse(send)
                return
        await self.limited(scope, receive, send)

    async def refuse(self, send: Send) -> None:
        await _plain(send, 413, f"request body over {self.limit} bytes")

    async def limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The body within the limit by its header: count it as it arrives."""
        # Read the whole body first (it is capped), so an oversized stream is refused before
        # the application sees any of it and no half-sent response can follow.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self.refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _plain(send: Send, status: int, text: str) -> None:
    body = json.dumps({"detail": text}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class _Refused(NamedTuple):
    status: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.detail}


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputError("request body is not JSON") from None


def _admitted(entry: LogEntry) -> tuple[LogEntry, Pending]:
    return entry, Pending(entry.leaf, entry.body, entry.body_digest, entry.terms())


def _admit_one(raw: bytes) -> tuple[LogEntry, Pending]:
    """All the CPU work of an add (JSON, key, signature, canonical body), in a worker thread
    so the event loop only awaits the sequencer."""
    return _admitted(parse_entry(_loads(raw), where="submitted entry"))


def _admit_many(raw: bytes) -> list[tuple[LogEntry, Pending] | _Refused]:
    doc = _loads(raw)
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InputError('batch body must be {"entries": [submission, ...]}')
    if len(entries) > MAX_BATCH:
        raise InputError(f"batch holds {len(entries)} entries; at most {MAX_BATCH} per request")
    out: list[tuple[LogEntry, Pending] | _Refused] = []
    for n, item in enumerate(entries):
        try:
            out.append(_admitted(parse_entry(item, where=f"entries[{n}]")))
        except VerificationError as exc:
            out.append(_Refused(422, str(exc)))
        except InputError as exc:
            out.append(_Refused(400, str(exc)))
    return out


def _ack(appended: Appended, entry: LogEntry) -> dict[str, Any]:
    return {
        "index": appended.index,
        "leaf_hash": appended.leaf_hash.hex(),
        "duplicate": appended.duplicate,
        "key_id": entry.key_id,
    }


def install_error_handlers(app: FastAPI) -> None:
    """The one mapping of Glassbox errors to HTTP answers, shared by the log server and the hub:
    unreadable input 400, a failed verification 422, storage 503 with a retry hint, any other
    Glassbox error 503, a malformed request 400 with its problems in one line."""

    @app.exception_handler(InputError)
    async def _input(_r: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(VerificationError)
    async def _verify(_r: Request, exc: VerificationError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StoreError)
    async def _storage(_r: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the log's storage is unavailable: {exc}", "kind": exc.kind},
            status_code=503,
            headers={"Retry-After": "5" if exc.transient else "60"},
        )

    @app.exception_handler(GlassboxError)
    async def _other(_r: Request, exc: GlassboxError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse({"detail": f"bad request: {problems}"[:1000]}, status_code=400)


def create_app(
    log: TransparencyLog,
    *,
    checkpoint_interval: float = 1.0,
    max_body: int = MAX_BODY_BYTES,
    close_log: bool = False,
    max_backoff: float = 60.0,
) -> ASGIApp:
    timer: list[Checkpointer] = []  # the running one, for /health

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        checkpointer = Checkpointer(log, checkpoint_interval, max_backoff)
        timer[:] = [checkpointer]
        checkpointer.start()
        try:
            yield
        finally:
            checkpointer.stop()
            if close_log:
                log.close()

    app = FastAPI(
        title="Glassbox transparency log",
        description=f"Append-only log of signed model statements. Origin: {log.origin}",
        version="1",
        lifespan=lifespan,
    )

    install_error_handlers(app)

    @app.get(
        "/health",
        summary="Can the log take entries and sign checkpoints? 200 ok, 503 degraded",
        description=(
            "Tree size, last checkpoint (size, time, entries it does not cover yet), the"
            " checkpoint timer (consecutive failures, last error, next attempt), failed"
            " writes, each witness's last answer. Degraded (503) while storage faults stop"
            " writes or checkpoints, or the log refuses to sign; a refusing witness is a"
            " warning."
        ),
    )
    def health_check() -> JSONResponse:
        status, body = health(log, timer[0] if timer else None)
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    @app.get("/v1/log", summary="Log origin, key and size")
    def info() -> dict[str, Any]:
        return {"origin": log.origin, "vkey": log.vkey, "size": log.size()}

    @app.post("/v1/entries", summary="Add a signed statement (OMS bundle or DSSE envelope)")
    async def add(request: Request) -> JSONResponse:
        raw = await request.body()
        entry, pending = await run_in_threadpool(_admit_one, raw)
        appended = await log.sequencer.submit_async(pending)
        return JSONResponse(_ack(appended, entry), status_code=200 if appended.duplicate else 201)

    @app.post(
        "/v1/entries/batch",
        summary=f"Add up to {MAX_BATCH} signed statements in one request",
        description=(
            'Body: {"entries": [submission, ...]}. Each entry is verified on its own; the answer'
            " lists, in order, its index (once durable) or why it was refused (status 400"
            " malformed, 422 signature does not verify)."
        ),
    )
    async def add_batch(request: Request) -> JSONResponse:
        raw = await request.body()
        admitted = await run_in_threadpool(_admit_many, raw)
        pendings = [a[1] for a in admitted if not isinstance(a, _Refused)]
        appended = iter(await log.sequencer.add_many_async(pendings))
        results = [
            a.to_dict() if isinstance(a, _Refused) else _ack(next(appended), a[0]) for a in admitted
        ]
        return JSONResponse({"results": results})

    @app.get("/v1/entries/{index}", summary="One entry: leaf and full body")
    def get_entry(index: int = Path(ge=0, le=MAX_INDEX)) -> dict[str, Any]:
        return log.get(index).to_dict()

    @app.get("/v1/entries", summary=f"Entries [start, end), at most {MAX_RANGE}")
    def list_entries(
        start: int = Query(ge=0, le=MAX_INDEX), end: int = Query(ge=0, le=MAX_INDEX)
    ) -> dict[str, Any]:
        if end < start or end - start > MAX_RANGE:
            raise InputError(f"range [{start}, {end}) is empty-negative or over {MAX_RANGE}")
        return {"entries": [e.to_dict() for e in log.entries(start, end)]}

    @app.get("/v1/proof/inclusion", summary="RFC 9162 inclusion proof")
    def inclusion(
        index: int = Query(ge=0, le=MAX_INDEX), size: int = Query(ge=1, le=MAX_INDEX)
    ) -> dict[str, Any]:
        hashes = log.inclusion_proof(index, size)
        leaf = log.get(index)
        return {
            "index": index,
            "size": size,
            "leaf_hash": leaf.leaf_hash.hex(),
            "hashes": [_b64(h) for h in hashes],
        }

    @app.get("/v1/proof/consistency", summary="RFC 9162 consistency proof")
    def consistency(
        old: int = Query(ge=0, le=MAX_INDEX), size: int = Query(ge=0, le=MAX_INDEX)
    ) -> dict[str, Any]:
        return {
            "old": old,
            "size": size,
            "hashes": [_b64(h) for h in log.consistency_proof(old, size)],
        }

    @app.get("/v1/proof/bundle/{index}", summary="Offline proof bundle for one entry")
    def bundle(
        index: int = Path(ge=0, le=MAX_INDEX),
        since: int | None = Query(None, ge=1, le=MAX_INDEX),
    ) -> dict[str, Any]:
        return log.proof_bundle(index, since).to_dict()

    @app.get("/v1/search", summary="Find entries by subject digest, signer key or model name")
    def search(
        digest: str | None = None,
        key: str | None = None,
        name: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_RANGE),
    ) -> dict[str, Any]:
        given = [(k, v) for k, v in (("digest", digest), ("key", key), ("name", name)) if v]
        if len(given) != 1:
            raise InputError("give exactly one of digest=, key=, name=")
        kind, value = given[0]
        if len(value) > 1024:
            raise InputError("search value is longer than 1024 characters")
        return {"kind": kind, "value": value, "indexes": log.search(kind, value, limit)}

    @app.get("/checkpoint", summary="Latest checkpoint (c2sp.org/tlog-checkpoint signed note)")
    def checkpoint() -> Response:
        cp = log.latest_checkpoint()
        if cp is None:
            cp = log.issue_checkpoint()
        return PlainTextResponse(cp.serialize(), headers={"Cache-Control": "no-store"})

    @app.get("/tile/{path:path}", summary="c2sp.org/tlog-tiles hash tiles and entry bundles")
    def tile(path: str) -> Response:
        level, index, width = parse_tile_path("tile/" + path)
        try:
            data = read_tile(log.store, log.size(), level, index, width)
        except LookupError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    return BodyLimit(app, max_body)


def create_witness_app(witness: Witness, *, max_body: int = 64 << 10) -> ASGIApp:
    """The c2sp.org/tlog-witness HTTP interface: ``POST /add-checkpoint``."""
    app = FastAPI(
        title="Glassbox witness",
        description=f"tlog-witness for {witness.signer.name}; key {witness.signer.vkey}",
        version="1",
    )

    @app.post("/add-checkpoint", summary="Cosign a checkpoint consistent with the last one")
    async def add_checkpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            lines = await run_in_threadpool(witness.add_checkpoint, raw)
        except WitnessError as exc:
            if exc.status == 409 and exc.latest_size is not None:
                return Response(  # exactly this type, no charset (tlog-witness)
                    f"{exc.latest_size}\n".encode(),
                    status_code=409,
                    headers={"content-type": "text/x.tlog.size"},
                )
            return PlainTextResponse(str(exc) + "\n", status_code=exc.status)
        return PlainTextResponse(lines)

    @app.get("/v1/witness", summary="Witness name and cosignature key")
    def info() -> dict[str, Any]:
        return {
            "name": witness.signer.name,
            "vkey": witness.signer.vkey,
            "logs": sorted(witness.logs),
        }

    return BodyLimit(app, max_body)


def log_to_stderr() -> None:
    """Send the log's own messages (failed checkpoints, refusals, witnesses) to stderr with a
    time stamp, as ``log serve`` runs: the operator must see them without configuring
    anything. Once per process."""
    import logging
    import sys

    logger = logging.getLogger("glassbox")
    if any(getattr(h, "_glassbox_serve", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._glassbox_serve = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def app_from_env() -> ASGIApp:
    """App factory for ``glassbox log serve --workers N``: each worker process opens the same
    store (PostgreSQL, or one SQLite file) with its own sequencer; batches from different
    workers serialise on the tree-head lock, so the servers themselves stay stateless."""
    import os

    from glassbox.tlog.local import open_log
    from glassbox.tlog.note import parse_vkey
    from glassbox.tlog.witness import WitnessCosigner

    log_to_stderr()
    env = os.environ
    cosigners: list[Any] = []
    for spec in filter(None, env.get("GLASSBOX_TLOG_WITNESSES", "").split(" ")):
        vkey, _sep, rest = spec.partition("=http")
        cosigners.append(WitnessCosigner.http(parse_vkey(vkey), "http" + rest))
    log = open_log(
        env.get("GLASSBOX_TLOG_STORE") or None,
        env.get("GLASSBOX_TLOG_KEY") or None,
        cosigners=cosigners,
        busy_timeout=float(env.get("GLASSBOX_TLOG_BUSY_TIMEOUT", "60")),
    )
    return create_app(
        log,
        checkpoint_interval=float(env.get("GLASSBOX_TLOG_CHECKPOINT_INTERVAL", "5")),
        close_log=True,
    )
