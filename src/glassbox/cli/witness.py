"""``glassbox witness``: run a c2sp.org/tlog-witness that cosigns consistent checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

from glassbox.cli._common import emit_json, guarded


@click.group()
def witness() -> None:
    """Run a witness that cosigns consistent log checkpoints."""


@witness.command()
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option("--json", "as_json", is_flag=True)
@guarded
def keygen(name: str, output: str, as_json: bool) -> None:
    """Create a witness cosigning key (type 0x04); prints its vkey."""
    from glassbox.tlog.local import write_signer
    from glassbox.tlog.note import ALG_COSIGNATURE_V1, Signer

    signer = Signer.generate(name, ALG_COSIGNATURE_V1)
    path = Path(output)
    write_signer(signer, path)
    if as_json:
        emit_json({"vkey": signer.vkey, "key": str(path)})
    else:
        click.echo(signer.vkey)


@witness.command()
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--log-key", "log_vkeys", multiple=True, required=True, help="Log vkey to witness.")
@click.option("--state", type=click.Path(dir_okay=False), help="State database.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8081, show_default=True)
@guarded
def serve(
    key_path: str, log_vkeys: tuple[str, ...], state: str | None, host: str, port: int
) -> None:
    """Serve POST /add-checkpoint for the given logs."""
    import uvicorn

    from glassbox.paths import data_dir
    from glassbox.tlog.note import Signer, parse_vkey
    from glassbox.tlog.server import create_witness_app
    from glassbox.tlog.witness import Witness

    signer = Signer.from_skey(Path(key_path).read_text())
    w = Witness(
        Path(state) if state else data_dir() / "witness.db",
        signer,
        [parse_vkey(v) for v in log_vkeys],
    )
    click.echo(f"witness {signer.name} key {signer.vkey}", err=True)
    try:
        uvicorn.run(create_witness_app(w), host=host, port=port, log_level="warning")
    finally:
        w.close()
