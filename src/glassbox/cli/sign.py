"""``glassbox sign`` and ``glassbox verify``: OMS model signatures from the command line.

The library (``glassbox.sign``) is imported inside the commands, so ``glassbox --help`` and other
commands never pay for ``cryptography``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from glassbox.cli._common import MODEL_PATH, emit_json, guarded, progress
from glassbox.cli.keys import passphrase_from_env
from glassbox.errors import InputError, VerificationError

F = TypeVar("F", bound=Callable[..., Any])

_model_argument = click.argument("model", type=MODEL_PATH)
_signature_option = click.option(
    "--signature",
    "signature",
    type=click.Path(path_type=Path),
    help="The signature bundle (default: MODEL/model.sig for a directory, FILE.sig beside a "
    "single file).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _model_key_signature(key_help: str, *, required: bool = True) -> Callable[[F], F]:
    """MODEL, ``--key`` and ``--signature``, in that order: sign and verify take the same three
    and differ only in which half of the key pair ``--key`` names."""
    key_option = click.option(
        "--key", "key_path", required=required, type=click.Path(path_type=Path), help=key_help
    )

    def decorate(func: F) -> F:
        return _model_argument(key_option(_signature_option(func)))

    return decorate


@click.command()
@click.argument("model", type=MODEL_PATH, required=False)
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Private key (PEM; ECDSA P-256/384/521 for OMS, or Ed25519).",
)
@_signature_option
@click.option(
    "--from-manifest",
    "from_manifest",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Sign the files listed in this JSON manifest (path, size, sha256 of each, e.g. as a "
    "hub reports them; or `glassbox digest --json` output) without reading the files. Gives "
    "the signature that signing the files would. Takes no MODEL; needs --signature.",
)
@click.option(
    "--name",
    "model_name",
    metavar="NAME",
    help="With --from-manifest: the model name to sign (the model directory's name), "
    "overriding the manifest's model_name.",
)
@click.option(
    "--method",
    default="sha256",
    show_default=True,
    metavar="METHOD",
    help="sha256, blake3, or sha256-sharded-N (N bytes per shard, so one huge file is hashed "
    "on every core). Recorded in the signature; verify follows it.",
)
@click.option(
    "--ignore",
    "ignore_paths",
    multiple=True,
    metavar="PATH",
    help="Leave PATH (relative to MODEL) out of the signature; recorded in it. Repeatable. "
    ".git*, model.sig and the signature itself are always left out.",
)
@click.option(
    "--allow-symlinks",
    is_flag=True,
    help="Hash symlinks that stay inside the model (recorded; links leaving it are refused).",
)
@click.option("--no-cache", is_flag=True, help="Re-read every byte instead of reusing digests.")
@click.option(
    "--passphrase-env",
    metavar="VAR",
    help="Read the private key's passphrase from environment variable VAR.",
)
@click.option("--force", is_flag=True, help="Replace an existing signature.")
@click.option(
    "--certificate",
    "certificate",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The key's X.509 signing certificate (PEM): sign with OMS's certificate method, so "
    "verifiers trust a CA instead of this one key.",
)
@click.option(
    "--certificate-chain",
    "certificate_chain",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --certificate: the intermediate CA certificates (PEM) above it. Repeatable.",
)
@_json_option
@guarded
def sign(
    model: Path | None,
    key_path: Path,
    signature: Path | None,
    from_manifest: Path | None,
    model_name: str | None,
    method: str,
    ignore_paths: tuple[str, ...],
    allow_symlinks: bool,
    no_cache: bool,
    passphrase_env: str | None,
    force: bool,
    certificate: Path | None,
    certificate_chain: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Sign MODEL (a directory, one file, or hf:org/name[@REV]) in the OpenSSF model-signing
    (OMS) format; or, with --from-manifest, sign known digests without the files."""
    from glassbox.cli.digest import progress_total
    from glassbox.digest import HashMethod
    from glassbox.sign import load_private_key, public_key_id, sign_model

    if certificate_chain and certificate is None:
        raise click.UsageError("--certificate-chain needs --certificate")
    if from_manifest is not None:
        if certificate is not None:
            raise click.UsageError("--certificate does not apply to --from-manifest")
        if model is not None:
            raise click.UsageError("give MODEL or --from-manifest, not both")
        if method != "sha256" or ignore_paths or allow_symlinks or no_cache:
            raise click.UsageError(
                "--method, --ignore, --allow-symlinks and --no-cache do not apply to "
                "--from-manifest (the manifest says what was hashed and how)"
            )
        _sign_from_manifest(from_manifest, key_path, signature, model_name, passphrase_env, as_json)
        return
    if model is None:
        raise click.UsageError("missing MODEL (or --from-manifest FILE)")
    if model_name is not None:
        raise click.UsageError("--name applies to --from-manifest only")
    if model.is_dir() and key_path.resolve().is_relative_to(model.resolve()):
        raise InputError(
            f"{key_path}: the private key is inside the model directory {model}; it would be "
            "published with the model. Move it out first"
        )
    parsed = HashMethod.parse(method)
    hash_method = HashMethod(parsed.algorithm, parsed.shard_size, allow_symlinks)
    key = load_private_key(key_path, passphrase_from_env(passphrase_env))
    leaf = chain = None
    if certificate is not None:
        from glassbox.sign import read_certificates

        leaf = read_certificates(certificate)[0]
        chain = [c for path in certificate_chain for c in read_certificates(path)]
    total = progress_total(model, ignore_paths, allow_symlinks)
    with progress(f"hashing {model.name or model}", total) as bar:
        signed = sign_model(
            model,
            key,
            signature_path=signature,
            method=hash_method,
            use_cache=not no_cache,
            progress=bar.advance,
            ignore_paths=ignore_paths,
            overwrite=force,
            certificate=leaf,
            chain=chain or (),
        )
    _report_signed(signed, public_key_id(key), str(model), as_json)


def _sign_from_manifest(
    manifest_path: Path,
    key_path: Path,
    signature: Path | None,
    model_name: str | None,
    passphrase_env: str | None,
    as_json: bool,
) -> None:
    from glassbox.digest import read_manifest_file
    from glassbox.sign import load_private_key, public_key_id, sign_manifest

    if signature is None:
        raise click.UsageError("--from-manifest needs --signature FILE (there is no model here)")
    manifest = read_manifest_file(manifest_path, model_name=model_name)
    key = load_private_key(key_path, passphrase_from_env(passphrase_env))
    signed = sign_manifest(manifest, key, signature)
    _report_signed(
        signed, public_key_id(key), f"{manifest.model_name} from {manifest_path}", as_json
    )


@click.command()
@_model_key_signature(
    "The signer's public key (PEM). Not needed with --policy, whose publishers say whom to trust.",
    required=False,
)
@click.option(
    "--cache",
    "use_cache",
    is_flag=True,
    help="Trust the local digest cache for files whose inode, size, mtime and ctime are "
    "unchanged. Faster, but anyone who can change the files can usually change the cache "
    "too; without this flag every byte is re-read.",
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path),
    help="Trust policy (TOML): run the whole gate (signature by a trusted publisher, files, "
    "log proof with cosignatures, provenance if required, scan) and name the publisher.",
)
@click.option(
    "--name",
    "model_name",
    metavar="NAME",
    help="With --policy: the model name publisher patterns match (default: the Hugging Face "
    "repository id of a cache snapshot, else the directory or file name).",
)
@click.option(
    "--proof",
    "proofs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="With --policy: an offline log proof bundle (default: MODEL.proof.json beside it).",
)
@click.option(
    "--provenance",
    "provenance",
    multiple=True,
    type=click.Path(path_type=Path),
    help="With --policy: signed SLSA provenance (default: MODEL.provenance.json beside it).",
)
@_json_option
@guarded
def verify(
    model: Path,
    key_path: Path | None,
    signature: Path | None,
    use_cache: bool,
    policy_path: Path | None,
    model_name: str | None,
    proofs: tuple[Path, ...],
    provenance: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Verify MODEL against its OMS signature; on failure name every changed file.

    With --policy, run the trust policy's whole gate and say which publisher signed it.

    Exit status: 0 verified, 1 verification or policy failed, 2 bad usage or unreadable input.
    """
    if policy_path is not None:
        if key_path is not None:
            raise InputError("--key and --policy: the policy names the trusted keys; give one")
        _verify_policy(
            model, policy_path, signature, use_cache, model_name, proofs, provenance, as_json
        )
        return
    if key_path is None:
        raise InputError("verify needs --key (the signer's public key) or --policy FILE")
    if model_name or proofs or provenance:
        raise InputError("--name, --proof and --provenance need --policy")
    from glassbox.cli.digest import progress_total
    from glassbox.sign import (
        ModelVerificationError,
        default_signature_path,
        load_public_key,
        public_key_id,
        short_key_id,
        verify_model,
    )

    pub = load_public_key(key_path)
    sig_path = signature if signature is not None else default_signature_path(model)
    result: dict[str, Any] = {
        "model": str(model),
        "signature": str(sig_path),
        "key_id": public_key_id(pub),
    }
    try:
        # The signature decides symlinks and ignores; for sizing the bar, count all but it.
        total = progress_total(model, [str(sig_path.absolute())], allow_symlinks=True)
        with progress(f"verifying {model.name or model}", total) as bar:
            manifest = verify_model(
                model, pub, signature_path=sig_path, use_cache=use_cache, progress=bar.advance
            )
    except VerificationError as exc:
        # Exit 1 either way; with --json a script also gets the verdict and the changed files.
        if as_json:
            result.update(verified=False, error=str(exc))
            if isinstance(exc, ModelVerificationError):
                result.update(
                    modified=list(exc.diff.modified),
                    added=list(exc.diff.added),
                    removed=list(exc.diff.removed),
                )
            emit_json(result)
        raise
    uncovered = _uncovered(model, sig_path, manifest.ignore_paths)
    if as_json:
        result.update(verified=True, not_covered=uncovered, manifest=manifest.to_dict())
        emit_json(result)
        return
    files = len(manifest.file_digests())
    click.echo(
        f"verified {model}: {files} file{'s' if files != 1 else ''} match {sig_path} "
        f"(signed by key {short_key_id(pub)}, root sha256:{manifest.root_digest.hex()})"
    )
    if uncovered:
        # The signer chose to leave these out; a consumer should know they are unchecked.
        click.echo(f"not covered by the signature: {', '.join(uncovered)}")


def _uncovered(model: Path, sig_path: Path, ignore_paths: tuple[str, ...]) -> list[str]:
    """Ignore paths beyond the standard ones (``.git*``, signature files)."""
    from glassbox.digest import DEFAULT_IGNORES, DEFAULT_SIGNATURE_NAME

    standard = {*DEFAULT_IGNORES, DEFAULT_SIGNATURE_NAME}
    with contextlib.suppress(ValueError, OSError):
        standard.add(
            (sig_path.absolute().parent.resolve() / sig_path.name)
            .relative_to(model.resolve())
            .as_posix()
        )
    return [p for p in ignore_paths if p not in standard]


def _verify_policy(
    model: Path,
    policy_path: Path,
    signature: Path | None,
    use_cache: bool,
    model_name: str | None,
    proofs: tuple[Path, ...],
    provenance: tuple[Path, ...],
    as_json: bool,
) -> None:
    """The gate from the command line: exit 1 with one line per failed link."""
    from glassbox.cli.digest import progress_total
    from glassbox.trust.gate import verify_model_with_policy
    from glassbox.trust.policy import load_policy

    policy = load_policy(policy_path)
    total = progress_total(model, [], allow_symlinks=True) if model.exists() else None
    with progress(f"verifying {model.name or model}", total) as bar:
        result = verify_model_with_policy(
            model,
            policy,
            name=model_name,
            signature=signature,
            proofs=list(proofs) or None,
            provenance=list(provenance) or None,
            use_cache=use_cache,
            progress=bar.advance,
        )
    if as_json:
        emit_json({**result.to_dict(), "policy": policy.to_dict()})
        if not result.ok:
            raise SystemExit(1)
        return
    if not result.ok:
        for reason in result.reasons:
            click.echo(f"refused: {reason}", err=True)
        raise SystemExit(1)
    files = len(result.manifest.file_digests()) if result.manifest else 0
    click.echo(
        f"verified {model} ({result.model_name}): signed by {result.publisher} "
        f"({result.signer}); {files} file{'s' if files != 1 else ''} match, "
        f"root {result.root_digest}"
    )
    if result.log is not None:
        click.echo(f"log: {result.log.summary}")
    if result.scan is not None:
        click.echo(
            f"scan: no finding at or above {result.scan['fail_on']} in "
            f"{result.scan['files_scanned']} file(s)"
        )


def _report_signed(signed: Any, key_id: str, what: str, as_json: bool) -> None:
    """What ``sign`` prints, whether it hashed the files or signed known digests."""
    manifest = signed.manifest
    if as_json:
        emit_json(
            {
                "signature": str(signed.signature_path),
                "key_id": key_id,
                "manifest": manifest.to_dict(),
            }
        )
        return
    files = len(manifest.file_digests())
    click.echo(
        f"signed {what}: {files} file{'s' if files != 1 else ''}, "
        f"{manifest.total_size} bytes, {manifest.method.name}, "
        f"root sha256:{manifest.root_digest.hex()}"
    )
    click.echo(f"signature: {signed.signature_path}")
