"""``glassbox keygen``: create a PEM key pair for signing models and attestations."""

from __future__ import annotations

import os

import click

from glassbox.cli._common import emit_json, guarded
from glassbox.errors import InputError


def passphrase_from_env(var: str | None) -> str | None:
    """The passphrase held in environment variable ``var`` (never taken on the command line,
    where it would show in ``ps`` and shell history)."""
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise InputError(f"--passphrase-env {var}: environment variable {var} is not set")
    if not value:
        raise InputError(f"--passphrase-env {var}: environment variable {var} is empty")
    return value


@click.command()
@click.option(
    "--type",
    "kind",
    type=click.Choice(["ecdsa-p256", "ed25519"]),
    default="ecdsa-p256",
    show_default=True,
    help="ecdsa-p256 signs models (OMS/model_signing accepts only NIST P-curves); "
    "ed25519 is for log and witness keys.",
)
@click.option(
    "--out",
    "prefix",
    default="glassbox",
    show_default=True,
    metavar="PREFIX",
    help="Write PREFIX.key (private, mode 0600) and PREFIX.pub; existing files are never "
    "overwritten.",
)
@click.option(
    "--passphrase-env",
    metavar="VAR",
    help="Encrypt the private key with the passphrase in environment variable VAR.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@guarded
def keygen(kind: str, prefix: str, passphrase_env: str | None, as_json: bool) -> None:
    """Create a signing key pair (PEM: PKCS#8 private key, SubjectPublicKeyInfo public key)."""
    from glassbox.sign import (
        generate_private_key,
        key_hint,
        public_key_id,
        short_key_id,
        write_keypair,
    )

    passphrase = passphrase_from_env(passphrase_env)
    key = generate_private_key(kind)
    private_path, public_path = write_keypair(key, prefix, passphrase)
    result = {
        "type": kind,
        "private_key": str(private_path),
        "public_key": str(public_path),
        "key_id": public_key_id(key),
        "hint": key_hint(key),
        "encrypted": passphrase is not None,
    }
    if as_json:
        emit_json(result)
        return
    click.echo(f"wrote {private_path} (private, keep it secret) and {public_path} (public)")
    # The short form is what verify, audit, the log and every error show, and what they accept.
    click.echo(f"key id {short_key_id(key)} (in full: {result['key_id']})")
