"""``glassbox log``: use the embedded log or a log server, serve one, monitor one.

Without ``--log URL`` every command works on the embedded SQLite log under the data directory
(or ``--store``: another SQLite path or a PostgreSQL DSN), with its key in ``--key``. Commands
that only read a log open it read-only (so a read-only copy can be audited, and they never wait
behind a writer); ``checkpoint`` and ``prove`` write only to sign a checkpoint the log lacks.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from glassbox.cli._common import emit_json, guarded
from glassbox.errors import InputError

LOG_OPT = click.option("--log", "log_url", help="Log server URL (default: the embedded log).")
STORE_OPT = click.option(
    "--store", help="Embedded store: SQLite path / sqlite:///path or a PostgreSQL DSN."
)
KEY_OPT = click.option(
    "--key", "key_path", type=click.Path(dir_okay=False), help="Log signing key (skey file)."
)
VKEY_OPT = click.option("--log-key", "log_vkey", help="Trusted log verifier key (vkey).")
JSON_OPT = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


R = TypeVar("R")


@dataclass(frozen=True)
class LogTarget:
    """The log a command talks to: a server (``--log``) or the embedded log (``--store`` and its
    ``--key``), with the verifier key to trust (``--log-key``)."""

    log_url: str | None
    store: str | None
    key_path: str | None
    log_vkey: str | None

    def open(self, *, read_only: bool = False) -> closing[Any]:
        """The log server client or the embedded log, closed when the ``with`` block ends."""
        if self.log_url:
            from glassbox.tlog.client import LogClient

            return closing(LogClient(self.log_url, self.log_vkey))
        from glassbox.tlog import open_log

        lg = open_log(self.store, self.key_path, read_only=read_only)
        if self.log_vkey and self.log_vkey != lg.vkey:
            lg.close()
            raise InputError(f"the embedded log's key is {lg.vkey}, not {self.log_vkey}")
        return closing(lg)


def log_target(func: Callable[..., R]) -> Callable[..., R]:
    """Give a command ``--log``, ``--store``, ``--key`` and ``--log-key`` (in that order in
    ``--help``) and hand it them as one ``target: LogTarget``, so every command that reads a
    log opens it the same way."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        log_url: str | None,
        store: str | None,
        key_path: str | None,
        log_vkey: str | None,
        **kwargs: Any,
    ) -> R:
        return func(*args, target=LogTarget(log_url, store, key_path, log_vkey), **kwargs)

    return LOG_OPT(STORE_OPT(KEY_OPT(VKEY_OPT(wrapper))))


def _open_store(store: str | None) -> closing[Any]:
    """``--store``, or the embedded log's own SQLite file, read-only (export, verify-store)."""
    from glassbox.tlog import local_log_dir, open_store

    return closing(open_store(store or f"sqlite:///{local_log_dir() / 'log.db'}", read_only=True))


def _read_json(path: str) -> Any:
    from glassbox.files import read_small_file

    p = Path(path)
    raw = read_small_file(p, 64 << 20, "signed statement")  # bounded: not a stat-then-read
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputError(f"{p}: not JSON") from None


@click.group()
def log() -> None:
    """Use or serve a transparency log."""


@log.command()
@click.argument("signed", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM public key that signed it (not needed if SIGNED is a submission with one).",
)
@log_target
@JSON_OPT
@guarded
def add(
    signed: str,
    public_key: str | None,
    target: LogTarget,
    as_json: bool,
) -> None:
    """Add an OMS signature bundle or a DSSE envelope (verified before it is admitted)."""
    from glassbox.tlog import make_submission, parse_entry

    doc = _read_json(signed)
    if isinstance(doc, dict) and "public_key" in doc:
        submission = doc
    else:
        if public_key is None:
            raise InputError(f"{signed}: give --public-key (the key that signed it)")
        from glassbox.sign import load_public_key

        if not isinstance(doc, dict):
            raise InputError(f"{signed}: expected a JSON object")
        submission = make_submission(doc, load_public_key(public_key))
    with target.open() as lg:
        if target.log_url:
            result = lg.add(submission)
        else:
            entry = parse_entry(submission, where=signed)
            appended = lg.add(entry)
            result = {
                "index": appended.index,
                "leaf_hash": appended.leaf_hash.hex(),
                "duplicate": appended.duplicate,
                "key_id": entry.key_id,
            }
    if as_json:
        emit_json(result)
    else:
        note = " (already in the log)" if result["duplicate"] else ""
        click.echo(f"entry {result['index']}{note}")


@log.command()
@click.argument("index", type=click.IntRange(min=0))
@log_target
@JSON_OPT
@guarded
def get(
    index: int,
    target: LogTarget,
    as_json: bool,
) -> None:
    """Show one entry (re-verifying its signature)."""
    from glassbox.digest.merkle import leaf_hash
    from glassbox.errors import VerificationError

    with target.open(read_only=True) as lg:
        stored = lg.get(index)
    if leaf_hash(stored.leaf) != stored.leaf_hash:
        raise VerificationError(f"entry {index}: leaf does not match its leaf hash")
    summary = stored.entry().summary() if stored.body is not None else None
    if summary is not None and stored.entry().leaf != stored.leaf:
        raise VerificationError(f"entry {index}: body does not match its leaf")
    out = {"index": index, "leaf_hash": stored.leaf_hash.hex(), "entry": summary}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"entry {index}  leaf {stored.leaf_hash.hex()}")
        if summary:
            click.echo(f"  {summary['kind']} signed by key {summary['key_id'][:16]}")
            click.echo(f"  predicate {summary['predicate_type']}")
            for s in summary["subjects"]:
                click.echo(f"  subject {s.get('name')} {s.get('digest')}")


@log.command()
@click.argument("index", type=click.IntRange(min=0))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option(
    "--since",
    type=click.IntRange(min=1),
    help="Include a consistency proof from this earlier tree size (default: the last"
    " checkpoint this machine remembers for the log, if smaller).",
)
@click.option("--no-since", is_flag=True, help="Include no consistency proof.")
@log_target
@JSON_OPT
@guarded
def prove(
    index: int,
    output: str,
    since: int | None,
    no_since: bool,
    target: LogTarget,
    as_json: bool,
) -> None:
    """Write an offline proof bundle (entry, inclusion proof, cosigned checkpoint, and a
    consistency proof from an earlier checkpoint, so verifiers relate the two offline)."""
    from glassbox.tlog import SeenCheckpoints

    if since is not None and no_since:
        raise InputError("give --since SIZE or --no-since, not both")
    with target.open(read_only=True) as lg:
        if since is None and not no_since:
            with closing(SeenCheckpoints()) as seen:
                prev = seen.get(lg.origin)
            if prev is not None and 0 < prev.size < _checkpoint_size(lg, target.log_url):
                since = prev.size
        bundle = lg.proof_bundle(index, since)
        vkey = lg.vkey
    result = bundle.verify(vkey)  # never hand out a bundle that does not verify
    bundle.write(output)
    out = {"output": output, **result.to_dict(), "log_vkey": vkey, "since": since}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"wrote {output}: entry {index} in tree of size {result.tree_size}")
        if since is not None:
            click.echo(f"  with a consistency proof from size {since}")
        click.echo(f"log key: {vkey}")


def _checkpoint_size(lg: Any, log_url: str | None) -> int:
    """The size the bundle's checkpoint will have (the embedded log issues one if it grew)."""
    cp = lg.latest_checkpoint() if log_url else _issue_or_latest(lg, warn=False)
    return 0 if cp is None else int(cp.checkpoint.size)


@log.command("verify-proof")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option("--log-key", "log_vkey", required=True, help="Trusted log verifier key (vkey).")
@click.option("--witness", "witnesses", multiple=True, help="Trusted witness vkey (repeat).")
@click.option("-k", "k", type=click.IntRange(min=0), help="Witness cosignatures required.")
@click.option("--remember", is_flag=True, help="Relate to the last checkpoint seen for the log.")
@JSON_OPT
@guarded
def verify_proof(
    bundle: str,
    log_vkey: str,
    witnesses: tuple[str, ...],
    k: int | None,
    remember: bool,
    as_json: bool,
) -> None:
    """Check a proof bundle offline against a log key and a k-of-n witness policy."""
    from glassbox.tlog import ProofBundle, SeenCheckpoints, WitnessPolicy, verify_proof_bundle

    policy = WitnessPolicy.from_vkeys(list(witnesses), k) if witnesses or k else None
    seen = SeenCheckpoints() if remember else None
    result, status = verify_proof_bundle(ProofBundle.read(bundle), log_vkey, policy, seen)
    out = {**result.to_dict(), "seen": status}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"OK: entry {result.index} is in {result.origin} at size {result.tree_size}")
        if result.witnesses:
            click.echo(f"  cosigned by {', '.join(result.witnesses)}")
        if result.entry:
            click.echo(f"  signed by key {result.entry.key_id}")
        if result.consistent_from is not None:
            click.echo(f"  consistent with the log's checkpoint at size {result.consistent_from}")
        if remember:
            click.echo(f"  relation to the checkpoint remembered here: {status}")


@log.command()
@log_target
@JSON_OPT
@guarded
def checkpoint(
    target: LogTarget,
    as_json: bool,
) -> None:
    """Print the latest signed checkpoint (the embedded log issues one if it grew)."""
    from glassbox.tlog import SeenCheckpoints, remember_checkpoint

    with target.open(read_only=True) as lg:
        cp = lg.latest_checkpoint() if target.log_url else _issue_or_latest(lg)
        vkey = lg.vkey
        if cp is None:
            raise InputError("the log has no checkpoint yet")
        with closing(SeenCheckpoints()) as seen:
            status = remember_checkpoint(seen, lg, cp)  # a rewritten history fails here
    if as_json:
        c = cp.checkpoint
        emit_json(
            {
                "origin": c.origin,
                "size": c.size,
                "root": c.root.hex(),
                "vkey": vkey,
                "note": cp.serialize(),
                "seen": status,
            }
        )
    else:
        click.echo(cp.serialize(), nl=False)


def _issue_or_latest(lg: Any, *, warn: bool = True) -> Any:
    """The embedded log's checkpoint over all its entries; on a read-only copy that cannot
    sign one, its latest signed checkpoint, with a warning saying what it does not cover."""
    from glassbox.tlog.faults import READ_ONLY, StoreError

    try:
        return lg.issue_checkpoint()
    except StoreError as exc:
        if exc.kind != READ_ONLY:
            raise
        cp = lg.latest_checkpoint()
        if cp is None:
            raise
        if warn:
            click.echo(f"warning: {exc}; showing the latest signed checkpoint", err=True)
        return cp


@log.command()
@click.option("--digest", help="Subject digest: ALG:HEX or bare HEX (a prefix of 8+ digits works).")
@click.option("--signer", "key", help="Signer key id: the 16 hex digits verify prints, or all 64.")
@click.option("--name", help="Release name (as its recipe gives it), model or file name.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100)
@log_target
@JSON_OPT
@guarded
def search(
    digest: str | None,
    key: str | None,
    name: str | None,
    limit: int,
    target: LogTarget,
    as_json: bool,
) -> None:
    """Find entries by subject digest, signer key or name; one index per line.

    Exit 0 when something matches, 1 when nothing does (as grep), 2 on bad input.
    """
    given = [(k, v) for k, v in (("digest", digest), ("key", key), ("name", name)) if v]
    if len(given) != 1:
        raise InputError("give exactly one of --digest, --signer, --name")
    with target.open(read_only=True) as lg:
        indexes = lg.search(given[0][0], given[0][1], limit)
    if as_json:
        emit_json({"indexes": indexes})
    else:
        for i in indexes:
            click.echo(i)
    if not indexes:
        # Exit 1, as grep does: a script can test for "found", and a person is told why.
        option = {"key": "--signer"}.get(given[0][0], f"--{given[0][0]}")
        click.echo(f"no entries match {option} {given[0][1]}", err=True)
        sys.exit(1)


@log.command()
@STORE_OPT
@KEY_OPT
@click.option("--origin", help="Origin (log name) for a new log key.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--checkpoint-interval", type=click.FloatRange(0.05), default=5.0, show_default=True)
@click.option(
    "--busy-timeout",
    type=click.FloatRange(0.0),
    default=60.0,
    show_default=True,
    help="Seconds a write waits for a lock held elsewhere before the request gets 503.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the store (each has its own sequencer).",
)
@click.option(
    "--witness", "witnesses", multiple=True, help="Witness as VKEY=http(s)://URL (repeat)."
)
@guarded
def serve(
    store: str | None,
    key_path: str | None,
    origin: str | None,
    host: str,
    port: int,
    checkpoint_interval: float,
    busy_timeout: float,
    workers: int,
    witnesses: tuple[str, ...],
) -> None:
    """Serve the log over HTTP (OpenAPI docs at /docs, tiles at /tile/...)."""
    import uvicorn

    from glassbox.tlog import WitnessCosigner, open_log, parse_vkey
    from glassbox.tlog.log import Cosigner
    from glassbox.tlog.server import create_app, log_to_stderr

    log_to_stderr()
    cosigners: list[Cosigner] = []
    for spec in witnesses:
        vkey, sep, rest = spec.partition("=http")  # base64 in the vkey may itself hold '='
        if not sep:
            raise InputError(f"--witness {spec!r}: expected VKEY=http(s)://URL")
        cosigners.append(WitnessCosigner.http(parse_vkey(vkey), "http" + rest))
    lg = open_log(store, key_path, origin=origin, cosigners=cosigners, busy_timeout=busy_timeout)
    click.echo(f"log {lg.origin} key {lg.vkey}", err=True)
    if workers > 1:  # each worker process opens the log itself (server.app_from_env)
        import os

        from glassbox.tlog import local_log_dir

        lg.close()
        os.environ.update(
            GLASSBOX_TLOG_STORE=store or "",
            GLASSBOX_TLOG_KEY=key_path or str(local_log_dir() / "log.skey"),
            GLASSBOX_TLOG_CHECKPOINT_INTERVAL=str(checkpoint_interval),
            GLASSBOX_TLOG_BUSY_TIMEOUT=str(busy_timeout),
            GLASSBOX_TLOG_WITNESSES=" ".join(witnesses),
        )
        uvicorn.run(
            "glassbox.tlog.server:app_from_env",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
        )
        return
    app = create_app(lg, checkpoint_interval=checkpoint_interval, close_log=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@log.command()
@log_target
@click.option("--state", type=click.Path(dir_okay=False), help="Monitor state file.")
@click.option("--watch-key", "watch_keys", multiple=True, help="Signer key id to report.")
@click.option("--watch-name", "watch_names", multiple=True, help="Model name to report.")
@click.option("--interval", type=click.FloatRange(0.1), help="Keep following, every N seconds.")
@JSON_OPT
@guarded
def monitor(
    target: LogTarget,
    state: str | None,
    watch_keys: tuple[str, ...],
    watch_names: tuple[str, ...],
    interval: float | None,
    as_json: bool,
) -> None:
    """Follow a log: prove each checkpoint consistent, report entries for watched keys/names."""
    from glassbox.paths import data_dir
    from glassbox.tlog.monitor import Monitor

    state_path = Path(state) if state else data_dir() / "monitor.db"
    with (
        target.open(read_only=True) as lg,
        closing(
            Monitor(lg, state_path, watch_keys=list(watch_keys), watch_names=list(watch_names))
        ) as mon,
    ):
        while True:
            report = mon.poll()
            if as_json:
                emit_json(report.to_dict())
            else:
                click.echo(
                    f"{report.origin}: size {report.size} (was {report.previous_size}),"
                    f" {report.new_entries} new entries, consistent"
                )
                for m in report.matches:
                    click.echo(f"  ALERT entry {m.index}: {m.reason} {m.summary['subjects']}")
            if interval is None:
                break
            time.sleep(interval)


@log.command("export")
@click.argument("output", type=click.Path(dir_okay=False))
@STORE_OPT
@JSON_OPT
@guarded
def export_cmd(output: str, store: str | None, as_json: bool) -> None:
    """Export a log store to a file (gzipped JSON lines)."""
    from glassbox.tlog.transfer import export_log

    with _open_store(store) as st:
        header = export_log(st, output)
    if as_json:
        emit_json(header)
    else:
        click.echo(f"exported {header['size']} entries to {output}")


@log.command("import")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--store", required=True, help="Empty target store (SQLite path or PostgreSQL DSN).")
@JSON_OPT
@guarded
def import_cmd(archive: str, store: str, as_json: bool) -> None:
    """Import an exported log into an empty store, verifying the rebuilt tree."""
    from glassbox.tlog import open_store
    from glassbox.tlog.transfer import import_log

    with closing(open_store(store)) as st:  # the target is always named: no default here
        result = import_log(st, archive)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"imported {result['size']} entries, root {result['root']}")


@log.command("verify-store")
@STORE_OPT
@JSON_OPT
@guarded
def verify_store(store: str | None, as_json: bool) -> None:
    """Recheck a whole store: every stored hash against the leaves, every checkpoint against
    the tree (after a crash, a restore, or a suspected edit)."""
    from glassbox.errors import VerificationError
    from glassbox.tlog import audit_store, open_checkpoint, parse_vkey
    from glassbox.tlog.tree import StoredTree

    with _open_store(store) as st:
        root = audit_store(st)
        vkey = st.get_meta("vkey")
        checked = 0
        if vkey is not None:
            verifier, tree = parse_vkey(vkey), StoredTree(st)
            for size, note in st.checkpoints():
                cp = open_checkpoint(note, verifier).checkpoint
                if cp.size != size or tree.root(size) != cp.root:
                    raise VerificationError(f"checkpoint at size {size} does not match the tree")
                checked += 1
        size = st.size()
    if as_json:
        emit_json({"size": size, "root": root.hex(), "checkpoints": checked, "ok": True})
    else:
        click.echo(f"OK: {size} entries, root {root.hex()}, {checked} checkpoints verified")
