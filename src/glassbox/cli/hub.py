"""``glassbox hub ...`` (serve, keys, tiles, mirrors, gossip, bulk jobs) and the top-level
``glassbox publish`` / ``glassbox pull``. Thin: the work is in ``glassbox.hub``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from glassbox.cli._common import emit_json, guarded
from glassbox.errors import InputError


def _hub_dir() -> Path:
    from glassbox.paths import data_dir

    path = data_dir() / "hub"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _db(db: str | None) -> str:
    return db or f"sqlite:///{_hub_dir() / 'hub.db'}"


def _blobs(blobs: str | None) -> str:
    return blobs or str(_hub_dir() / "blobs")


def _log_key(key: str | None) -> str:
    return key or str(_hub_dir() / "log.skey")


DB_OPT = click.option(
    "--db", help="Hub database: sqlite:///PATH (default: under the data dir) or a PostgreSQL DSN."
)
BLOBS_OPT = click.option("--blobs", help="Blob directory shared by every hub process.")
LOGKEY_OPT = click.option("--log-key", help="The hub log's note key (created if missing).")


@click.group()
def hub() -> None:
    """Run a Glassbox Hub: a registry whose every release carries its evidence."""


@hub.command()
@DB_OPT
@BLOBS_OPT
@LOGKEY_OPT
@click.option("--origin", help="Log origin for a new log key (e.g. hub.example.org/log).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--max-upload", type=click.IntRange(1), default=1 << 30, show_default=True)
@click.option(
    "--rate",
    type=click.IntRange(1),
    default=60,
    show_default=True,
    help="Publishes per key per minute (counted in the database).",
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    help="A witness to gather cosignatures from, as VKEY=http(s)://URL (repeat).",
)
@click.option(
    "--cosign-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Be a witness too (POST /witness/add-checkpoint) with this cosignature skey.",
)
@click.option(
    "--cosign-log",
    "cosign_logs",
    multiple=True,
    help="A log (its vkey) this hub witnesses (repeat).",
)
@guarded
def serve(
    db: str | None,
    blobs: str | None,
    log_key: str | None,
    origin: str | None,
    host: str,
    port: int,
    workers: int,
    max_upload: int,
    rate: int,
    witnesses: tuple[str, ...],
    cosign_key: str | None,
    cosign_logs: tuple[str, ...],
) -> None:
    """Serve the hub (API under /api/v1, pages at /, OpenAPI at /docs)."""
    import uvicorn

    from glassbox.hub import open_hub
    from glassbox.tlog import parse_vkey

    for spec in witnesses:
        vkey, sep, _rest = spec.partition("=http")
        if not sep:
            raise InputError(f"--witness {spec!r}: expected VKEY=http(s)://URL")
        parse_vkey(vkey)
    for vkey in cosign_logs:
        parse_vkey(vkey)

    opened = open_hub(_db(db), _blobs(blobs), _log_key(log_key), origin=origin)
    click.echo(f"hub log {opened.log.origin} key {opened.log.vkey}", err=True)
    opened.close()  # created the tables and the key once, before any worker starts
    os.environ.update(
        GLASSBOX_HUB_DB=_db(db),
        GLASSBOX_HUB_BLOBS=_blobs(blobs),
        GLASSBOX_HUB_LOG_KEY=_log_key(log_key),
        GLASSBOX_HUB_MAX_UPLOAD=str(max_upload),
        GLASSBOX_HUB_RATE=str(rate),
        GLASSBOX_HUB_WITNESSES=" ".join(witnesses),
        GLASSBOX_HUB_COSIGN_KEY=cosign_key or "",
        GLASSBOX_HUB_COSIGN_LOGS=" ".join(cosign_logs),
        GLASSBOX_HUB_WITNESS_STATE=str(_hub_dir() / "witness.db"),
    )
    uvicorn.run(
        "glassbox.hub.app:app_from_env",
        factory=True,
        workers=workers if workers > 1 else None,
        host=host,
        port=port,
        log_level="warning",
    )


@hub.command("add-key")
@DB_OPT
@click.argument("namespace")
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False))
@click.option("--label", default="", help="What this key is (shown on its publisher page).")
@click.option("--json", "as_json", is_flag=True)
@guarded
def add_key(db: str | None, namespace: str, public_key: str, label: str, as_json: bool) -> None:
    """Give NAMESPACE to a publisher key and print an upload token bound to that key."""
    from glassbox.hub import HubDB
    from glassbox.hub.names import check_org
    from glassbox.sign import load_public_key, public_key_id, public_pem

    check_org(namespace)
    key = load_public_key(public_key)
    key_id = public_key_id(key)
    hubdb = HubDB(_db(db))
    try:
        hubdb.add_key(namespace, public_pem(key).decode(), key_id, label)
        token = hubdb.new_token(key_id)
    finally:
        hubdb.close()
    if as_json:
        emit_json({"namespace": namespace, "key_id": key_id, "token": token})
    else:
        click.echo(f"namespace {namespace}: key {key_id[:16]}")
        click.echo(f"upload token (shown once): {token}")


@hub.command("export-tiles")
@DB_OPT
@LOGKEY_OPT
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@guarded
def export_tiles_cmd(db: str | None, log_key: str | None, out: str, as_json: bool) -> None:
    """Write the hub log as static C2SP tiles (+ checkpoint, bodies) for any file server."""
    from glassbox.hub.federation import export_tiles
    from glassbox.tlog import TransparencyLog, load_or_create_signer
    from glassbox.tlog.store import open_store

    if not Path(_log_key(log_key)).is_file():
        raise InputError(f"{_log_key(log_key)}: no hub log key")
    log = TransparencyLog(open_store(_db(db)), load_or_create_signer(Path(_log_key(log_key))))
    try:
        done = export_tiles(log, out)
    finally:
        log.close()
    if as_json:
        emit_json(done)
    else:
        click.echo(f"exported {done['size']} entries ({done['tiles']} tiles) to {out}")


def _source(source: str) -> Any:
    from glassbox.hub.federation import dir_source, http_source

    if source.startswith(("http://", "https://")):
        return http_source(source)
    return dir_source(source)


@hub.command()
@DB_OPT
@click.argument("source")
@click.option("--log-vkey", required=True, help="The mirrored log's note verifier key.")
@click.option(
    "--witness-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Cosign each accepted checkpoint with this tlog-cosignature skey.",
)
@click.option(
    "--witness-state",
    type=click.Path(dir_okay=False),
    help="The witness's state file (default beside the database's data dir).",
)
@click.option("--json", "as_json", is_flag=True)
@guarded
def mirror(
    db: str | None,
    source: str,
    log_vkey: str,
    witness_key: str | None,
    witness_state: str | None,
    as_json: bool,
) -> None:
    """Mirror another hub's log from SOURCE (its URL, or a directory/URL of static tiles)."""
    from glassbox.hub import HubDB
    from glassbox.hub.federation import mirror_log

    witness = None
    if witness_key:
        from glassbox.tlog import Signer, Witness, parse_vkey

        signer = Signer.from_skey(Path(witness_key).read_text().strip())
        state = witness_state or str(_hub_dir() / "witness.db")
        witness = Witness(state, signer, [parse_vkey(log_vkey)])
    hubdb = HubDB(_db(db))
    try:
        done = mirror_log(hubdb, _source(source), log_vkey, source=source, witness=witness)
    finally:
        hubdb.close()
        if witness is not None:
            witness.close()
    if as_json:
        emit_json(done)
    else:
        click.echo(f"mirrored {done['origin']} at size {done['size']} (was {done['previous']})")


@hub.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--log-vkey", required=True, help="The log's note verifier key.")
@click.option("--json", "as_json", is_flag=True)
@guarded
def gossip(sources: tuple[str, ...], log_vkey: str, as_json: bool) -> None:
    """Compare the log's signed checkpoints as each SOURCE shows them; exit 1 on a split view.

    A SOURCE is a hub URL, a static tile URL or directory, or HUB_URL#mirror for the copy a
    mirror hub keeps of the log."""
    from glassbox.hub.federation import compare_checkpoints, http_source

    fetchers = []
    for source in sources:
        base, _sep, _rest = source.partition("#mirror")
        if _sep:
            from glassbox.tlog import parse_vkey

            origin = parse_vkey(log_vkey).name
            fetchers.append(http_source(f"{base.rstrip('/')}/api/v1/mirrors/{origin}"))
        else:
            fetchers.append(_source(source))
    notes = [f("checkpoint").decode() for f in fetchers]
    results = []
    for i in range(1, len(notes)):
        larger = fetchers[i] if _size(notes[i]) >= _size(notes[0]) else fetchers[0]
        status = compare_checkpoints(notes[0], notes[i], log_vkey, larger)
        results.append({"first": sources[0], "other": sources[i], "status": status})
    if as_json:
        emit_json({"results": results})
    else:
        for r in results:
            click.echo(f"{r['first']} vs {r['other']}: {r['status']}")


def _size(note: str) -> int:
    from glassbox.tlog.checkpoint import Checkpoint
    from glassbox.tlog.note import parse_note

    return Checkpoint.parse(parse_note(note).text).size


@hub.command()
@DB_OPT
@BLOBS_OPT
@LOGKEY_OPT
@click.option(
    "--attest-key",
    type=click.Path(exists=True, dir_okay=False),
    help="The hub's attestation key (default: beside the log key).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low"]),
    default="high",
    show_default=True,
    help="The severity that flags a release.",
)
@click.option("--scheduler", help="A Dask scheduler address (default: a LocalCluster).")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@guarded
def rescan(
    db: str | None,
    blobs: str | None,
    log_key: str | None,
    attest_key: str | None,
    fail_on: str,
    scheduler: str | None,
    workers: int,
    as_json: bool,
) -> None:
    """Re-scan every hosted release on Dask distributed (after a scanner update); each result
    is signed by the hub's attestation key and logged in the hub's log."""
    from glassbox.hub.bulk import rescan_all

    done = rescan_all(
        _db(db),
        _blobs(blobs),
        log_key=_log_key(log_key),
        attest_key=attest_key,
        fail_on=fail_on,
        scheduler=scheduler,
        workers=workers,
    )
    if as_json:
        emit_json(done)
    else:
        click.echo(
            f"re-scanned {done['releases']} release(s): {done['failing']} with blocking findings"
            f" at {done['fail_on']}; {len(done['attested'])} attestation(s) logged"
        )
        for line in done["changed"]:
            click.echo(f"  {line}")
    if done["failing"]:
        raise SystemExit(1)


@hub.command()
@DB_OPT
@click.option("--scheduler", help="A Dask scheduler address (default: a LocalCluster).")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@guarded
def reverify(db: str | None, scheduler: str | None, workers: int, as_json: bool) -> None:
    """Re-verify every release's signature against its namespace's keys, on Dask."""
    from glassbox.hub.bulk import reverify_all

    done = reverify_all(_db(db), scheduler=scheduler, workers=workers)
    if as_json:
        emit_json(done)
    else:
        click.echo(f"re-verified {done['releases']} release(s): {len(done['failed'])} failed")
        for line in done["failed"]:
            click.echo(f"  {line}")
    if done["failed"]:
        raise SystemExit(1)


@click.command()
@click.argument("model", type=click.Path(exists=True, file_okay=False))
@click.option("--hub", "hub_url", required=True, help="The hub's URL.")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Your private signing key (its namespace's key on the hub).",
)
@click.option(
    "--token",
    envvar="GLASSBOX_HUB_TOKEN",
    required=True,
    help="Upload token bound to the key (or GLASSBOX_HUB_TOKEN).",
)
@click.option("--name", required=True, help="org/name on the hub.")
@click.option("--version", "version", required=True)
@click.option("--evidence", multiple=True, help="KIND=FILE (provenance, scan, bom, mof, ...).")
@click.option("--manifest-only", is_flag=True, help="Upload only the signature (files elsewhere).")
@click.option(
    "--proof-out",
    type=click.Path(dir_okay=False),
    help="Write the log's offline proof bundle here.",
)
@click.option("--json", "as_json", is_flag=True)
@guarded
def publish(
    model: str,
    hub_url: str,
    key_path: str,
    token: str,
    name: str,
    version: str,
    evidence: tuple[str, ...],
    manifest_only: bool,
    proof_out: str | None,
    as_json: bool,
) -> None:
    """Sign MODEL and publish it to a hub with its evidence; print the log proof."""
    import json

    from glassbox.hub import publish_model
    from glassbox.sign import load_private_key

    pieces = []
    for spec in evidence:
        kind, sep, path = spec.partition("=")
        if not sep or not Path(path).is_file():
            raise InputError(f"--evidence {spec!r}: expected KIND=FILE with an existing file")
        pieces.append((kind, Path(path)))
    answer = publish_model(
        model,
        hub_url,
        load_private_key(key_path),
        token,
        name=name,
        version=version,
        evidence=pieces,
        manifest_only=manifest_only,
    )
    if proof_out:
        Path(proof_out).write_text(json.dumps(answer["proof"], indent=2))
    if as_json:
        emit_json(answer)
    else:
        rel = answer["release"]
        click.echo(
            f"published {rel['name']}@{rel['version']}: log entry {rel['log_index']}, "
            f"verdict {rel['verdict']}"
        )


@click.command()
@click.argument("ref")
@click.option("--hub", "hub_url", required=True)
@click.option("--policy", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(), help="Where the verified model goes.")
@click.option("--replace", is_flag=True, help="Swap out an existing OUT once verified.")
@click.option(
    "--hub-key",
    type=click.Path(exists=True, dir_okay=False),
    help="The hub's attestation public key: its signed scan must be there, by this key.",
)
@click.option("--json", "as_json", is_flag=True)
@guarded
def pull(
    ref: str, hub_url: str, policy: str, out: str, replace: bool, hub_key: str | None, as_json: bool
) -> None:
    """Download NAME@VERSION, run your trust policy's gate, then move it into place."""
    from glassbox.cli._common import progress
    from glassbox.hub import pull_model

    with progress(f"pull {ref}", None, enabled=not as_json) as bar:
        result = pull_model(
            ref, hub_url, policy, out, replace=replace, progress=bar.advance, hub_key=hub_key
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        scanned = result.hub_scan
        said = (
            f"; hub scan: log entry {scanned['log_index']}, {scanned['findings']} finding(s)"
            if scanned
            else "; no hub scan attestation"
        )
        latest = result.latest_scan
        if latest:
            said += (
                f"; latest re-scan: log entry {latest['log_index']}, "
                f"{latest['findings']} finding(s), worst {latest['max_severity'] or 'none'}"
                + (" (FLAGGED at your policy's fail-on)" if latest["flagged"] else "")
            )
        click.echo(
            f"verified {result.name}@{result.version} (publisher {result.gate.get('publisher')}) "
            f"-> {result.path}{said}"
        )
