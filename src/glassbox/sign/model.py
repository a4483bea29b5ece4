"""Sign and verify models in the OpenSSF model-signing (OMS) format.

A model signature is a Sigstore bundle (see ``bundle``) over an in-toto statement whose one
subject is the model (name, ``manifest.root_digest``) and whose predicate is the manifest:
``{"serialization": ..., "resources": [...]}`` under ``https://model_signing/signature/v1.0``.

Verification never trusts the signer's choice of files beyond what the signature says: it
re-hashes the model with the method the signature records (files or shards, SHA-256 or BLAKE3,
ignore paths, symlink policy) and compares file by file, so a failure names exactly what was
modified, added or removed. The digest cache is used on verify only when asked: anyone who can
change the model's files can usually change the cache as well.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.digest import DEFAULT_SIGNATURE_NAME, HashMethod, Manifest, ManifestDiff, hash_model
from glassbox.digest.manifest import ALGORITHMS, ManifestItem
from glassbox.errors import InputError, VerificationError
from glassbox.sign.bundle import read_bundle, sign_statement, verify_bundle, write_bundle
from glassbox.sign.keys import PrivateKey, PublicKey
from glassbox.sign.statement import make_statement, subject

if TYPE_CHECKING:
    from cryptography import x509

OMS_PREDICATE_TYPE = "https://model_signing/signature/v1.0"
_DECIMAL = re.compile(r"[0-9]+")
# model_signing 0.2 wrote this; it records neither the hash method nor the model's full file
# list, so it cannot prove a file was not added. Refused with a clear message.
_OMS_LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"


class ModelVerificationError(VerificationError):
    """The signature is genuine but the model's files are not what was signed."""

    def __init__(self, message: str, diff: ManifestDiff) -> None:
        super().__init__(message)
        self.diff = diff


@dataclass(frozen=True)
class SignedModel:
    signature_path: Path
    manifest: Manifest
    bundle: dict[str, Any]


def default_signature_path(model_path: str | os.PathLike[str]) -> Path:
    """``MODEL/model.sig`` for a directory, ``FILE.sig`` beside a single-file model."""
    path = Path(model_path)
    if path.is_dir():
        return path / DEFAULT_SIGNATURE_NAME
    return path.with_name(path.name + ".sig")


def _signature_ignore(model_path: Path, signature_path: Path) -> list[str]:
    """Signature files to leave out of a directory model: the default ``model.sig`` always (so
    ``glassbox digest`` and ``sign`` agree on the root digest), and ``signature_path`` when it
    lies inside the model. A signature can never be part of what it signs; OMS records these
    in ``ignore_paths``, so any verifier leaves them out too.
    """
    if not model_path.is_dir():
        return []
    ignores = [DEFAULT_SIGNATURE_NAME]
    try:
        rel = signature_path.resolve().relative_to(model_path.resolve())
    except (ValueError, OSError):
        return ignores
    return [*ignores, rel.as_posix()]


def sign_model(
    model_path: str | os.PathLike[str],
    key: PrivateKey,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    method: HashMethod | None = None,
    use_cache: bool = True,
    progress: Callable[[int], None] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    certificate: x509.Certificate | None = None,
    chain: Sequence[x509.Certificate] = (),
) -> SignedModel:
    """Hash the model, sign its manifest, and write the OMS bundle (default: beside/inside it).

    With ``certificate`` (the key's X.509 signing certificate) and ``chain`` (the CAs above it),
    the bundle uses OMS's certificate method instead of a key hint.
    """
    model = Path(model_path)
    if not model.exists():
        raise InputError(f"model path {model} does not exist")
    sig_path = Path(signature_path) if signature_path is not None else default_signature_path(model)
    if model.is_file() and sig_path.absolute() == model.absolute():
        raise InputError(f"{sig_path}: the signature cannot overwrite the model file itself")
    if sig_path.is_dir():
        raise InputError(f"{sig_path}: is a directory; give a file name for the signature")
    if not sig_path.absolute().parent.is_dir():
        # Checked before hashing: failing after an hour of hashing would waste the hour.
        raise InputError(f"{sig_path}: directory {sig_path.parent} does not exist")
    ignores = [*ignore_paths, *_signature_ignore(model, sig_path)]
    manifest = hash_model(
        model, method or HashMethod(), ignore_paths=ignores, use_cache=use_cache, progress=progress
    )
    statement = make_statement(
        [subject(manifest.model_name, manifest.root_digest)],
        OMS_PREDICATE_TYPE,
        {"serialization": manifest.serialization(), "resources": manifest.resources()},
    )
    if certificate is not None:
        from glassbox.sign.certificates import sign_statement_with_certificate

        bundle = sign_statement_with_certificate(statement, key, certificate, chain)
    else:
        bundle = sign_statement(statement, key)
    write_bundle(bundle, sig_path)
    return SignedModel(sig_path, manifest, bundle)


def _check_resource_name(name: str, method: str, where: str) -> None:
    """Refuse names that could point outside the model (``../x``, ``/etc/x``) or are not
    names ``model_signing`` could have produced."""
    path = name
    if method == "shards":
        parts = name.rsplit(":", 2)
        if len(parts) != 3 or not (_DECIMAL.fullmatch(parts[1]) and _DECIMAL.fullmatch(parts[2])):
            raise InputError(f"{where}: shard resource {name!r} is not 'PATH:START:END'")
        path = parts[0]
    if path == ".":
        return
    if not path or "\x00" in path:
        raise InputError(f"{where}: resource name {name!r} is empty or contains NUL")
    # On POSIX a leading "/" is exactly what makes a path absolute; a Path object per resource
    # (once for every file on every verify) is only needed for Windows drive paths.
    if path.startswith("/") or (os.name == "nt" and Path(path).is_absolute()):
        raise InputError(f"{where}: resource {name!r} is an absolute path; refusing it")
    components = path.split("/")
    if ".." in components:
        raise InputError(f"{where}: resource {name!r} escapes the model directory; refusing it")
    if any(c in ("", ".") for c in components):
        raise InputError(f"{where}: resource name {name!r} is not a normalized relative path")


def manifest_from_statement(statement: dict[str, Any], *, where: str = "signature") -> Manifest:
    """The manifest an OMS statement signs, with every field checked.

    Items carry sizes only for shards (``end - start``); OMS does not record file sizes, so file
    items have size 0 here. Raises ``InputError`` for anything that is not a well-formed OMS v1.0
    model signature, including resource names that escape the model directory.
    """
    if not isinstance(statement, dict):
        raise InputError(f"{where}: statement is not a JSON object")
    predicate_type = statement.get("predicateType")
    if predicate_type == _OMS_LEGACY_PREDICATE_TYPE:
        raise InputError(
            f"{where}: model_signing 0.2 signature format ({predicate_type}) is not supported; "
            "re-sign the model"
        )
    if predicate_type != OMS_PREDICATE_TYPE:
        raise InputError(
            f"{where}: not a model signature (predicateType {predicate_type!r}, "
            f"expected {OMS_PREDICATE_TYPE!r})"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        count = len(subjects) if isinstance(subjects, list) else 0
        raise InputError(f"{where}: a model signature has exactly one subject, found {count}")
    subj = subjects[0]
    digests = subj.get("digest") if isinstance(subj, dict) else None
    model_name = subj.get("name") if isinstance(subj, dict) else None
    root_hex = digests.get("sha256") if isinstance(digests, dict) else None
    if not isinstance(model_name, str) or not isinstance(root_hex, str):
        raise InputError(f"{where}: subject needs a name and a sha256 digest")

    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise InputError(f"{where}: predicate is missing")
    serialization = predicate.get("serialization")
    resources = predicate.get("resources")
    if not isinstance(serialization, dict) or not isinstance(resources, list):
        raise InputError(f"{where}: predicate needs 'serialization' and 'resources'")
    method = _method_of(serialization, where)
    ignore_paths = serialization.get("ignore_paths", [])
    if not isinstance(ignore_paths, list) or not all(isinstance(p, str) for p in ignore_paths):
        raise InputError(f"{where}: serialization.ignore_paths must be a list of strings")
    if not resources:
        raise InputError(f"{where}: signature lists no files (an empty model is not signable)")

    items = []
    method_name = str(serialization["method"])
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict):
            raise InputError(f"{where}: resource {index} is not an object")
        name, algorithm, digest_hex = (
            resource.get("name"),
            resource.get("algorithm"),
            resource.get("digest"),
        )
        if not isinstance(name, str) or not isinstance(digest_hex, str):
            raise InputError(f"{where}: resource {index} needs a name and a digest")
        if algorithm not in (method.algorithm, method.name):
            raise InputError(
                f"{where}: resource {name!r} uses {algorithm!r} but the signature says "
                f"{method.algorithm!r}"
            )
        _check_resource_name(name, method_name, where)
        try:
            digest = bytes.fromhex(digest_hex)
        except ValueError:
            raise InputError(f"{where}: resource {name!r} digest is not hex") from None
        if len(digest) != 32:
            raise InputError(f"{where}: resource {name!r} digest is not 32 bytes")
        size = 0
        if method.shard_size is not None:
            _, start, end = name.rsplit(":", 2)
            size = int(end) - int(start)
            if size <= 0 or size > method.shard_size:
                raise InputError(f"{where}: shard {name!r} does not fit the shard size")
        items.append(ManifestItem(name, digest, size))
    if any(item.path == "." for item in items) and any(item.path != "." for item in items):
        raise InputError(f"{where}: a single-file model ('.') cannot list other files")

    manifest = Manifest(model_name, method, tuple(items), tuple(sorted(set(ignore_paths))))
    if manifest.root_digest.hex() != root_hex.lower():
        raise InputError(
            f"{where}: inconsistent signature: subject digest {root_hex} does not match "
            f"its resources ({manifest.root_digest.hex()})"
        )
    return manifest


def _method_of(serialization: dict[str, Any], where: str) -> HashMethod:
    kind = serialization.get("method")
    algorithm = serialization.get("hash_type")
    allow_symlinks = serialization.get("allow_symlinks", False)
    if algorithm not in ALGORITHMS:
        raise InputError(
            f"{where}: hash type {algorithm!r} is not supported (Glassbox verifies "
            f"{' and '.join(ALGORITHMS)})"
        )
    if not isinstance(allow_symlinks, bool):
        raise InputError(f"{where}: serialization.allow_symlinks must be true or false")
    if kind == "files":
        return HashMethod(algorithm, None, allow_symlinks)
    if kind == "shards":
        shard_size = serialization.get("shard_size")
        # model_signing's protobuf JSON writes every number as a double ("shard_size": 2.0).
        if isinstance(shard_size, float) and shard_size.is_integer():
            shard_size = int(shard_size)
        if not isinstance(shard_size, int) or isinstance(shard_size, bool) or shard_size <= 0:
            raise InputError(f"{where}: shards serialization needs a positive integer shard_size")
        return HashMethod(algorithm, shard_size, allow_symlinks)
    raise InputError(f"{where}: unknown serialization method {kind!r} (expected files or shards)")


def _renames(expected: Manifest, actual: Manifest, diff: ManifestDiff) -> list[str]:
    """``old -> new`` for removed files whose exact content reappears under an added name."""
    want, got = expected.file_digests(), actual.file_digests()
    by_content: dict[tuple[bytes, ...], list[str]] = {}
    for path in diff.added:
        by_content.setdefault(got[path], []).append(path)
    renames = []
    for path in diff.removed:
        candidates = by_content.get(want[path])
        if candidates:
            renames.append(f"{path} -> {candidates.pop(0)}")
    return renames


def verify_model(
    model_path: str | os.PathLike[str],
    pub: PublicKey,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    use_cache: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Check the model against its OMS signature; return the manifest of the files on disk.

    Raises ``InputError`` for a missing or malformed signature, ``VerificationError`` when the
    signature does not verify with ``pub``, and ``ModelVerificationError`` (with ``.diff``) when
    it does but the files differ.
    """
    model = Path(model_path)
    if not model.exists():
        raise InputError(f"model path {model} does not exist")
    sig_path = Path(signature_path) if signature_path is not None else default_signature_path(model)
    if not sig_path.exists():
        raise InputError(f"{sig_path}: signature file not found (pass --signature FILE)")
    where = str(sig_path)
    bundle = read_bundle(sig_path)
    statement = verify_bundle(bundle, pub, where=where)
    expected = manifest_from_statement(statement, where=where)
    return check_files(model, expected, sig_path, use_cache=use_cache, progress=progress)


def check_files(
    model_path: str | os.PathLike[str],
    expected: Manifest,
    signature_path: str | os.PathLike[str],
    *,
    use_cache: bool = False,
    progress: Callable[[int], None] | None = None,
    link_root: str | os.PathLike[str] | None = None,
) -> Manifest:
    """Hash the model as ``expected`` (an authenticated manifest) says and compare file by file.

    Returns the manifest of the files on disk; raises ``ModelVerificationError`` naming every
    modified, added, removed or renamed file. ``link_root`` is the cached repository a Hugging
    Face snapshot's links may reach (detected from the path's shape when ``None``).
    """
    model = Path(model_path)
    sig_path = Path(signature_path)
    where = str(sig_path)
    if model.is_dir() and any(item.path == "." for item in expected.items):
        raise InputError(f"{where}: signs a single-file model, but {model} is a directory")
    if model.is_file() and any(item.path != "." for item in expected.items):
        raise InputError(f"{where}: signs a model directory, but {model} is a single file")

    actual = hash_model(
        model,
        expected.method,
        ignore_paths=[*expected.ignore_paths, *_signature_ignore(model, sig_path)],
        use_cache=use_cache,
        progress=progress,
        model_name=expected.model_name,
        link_root=link_root,
    )
    diff = expected.diff(actual)
    if not diff:
        # Equal digests per file imply equal items for one method; check the items themselves
        # anyway, so a verdict never rests on that reasoning alone.
        want = {(i.name, i.digest) for i in expected.items}
        got = {(i.name, i.digest) for i in actual.items}
        if want != got:
            changed = {ManifestItem(n, d, 0).path for n, d in want ^ got}
            diff = ManifestDiff(modified=tuple(sorted(changed)))
    if diff:
        detail = diff.describe()
        renames = _renames(expected, actual, diff)
        if renames:
            detail += f" (renamed: {', '.join(renames)})"
        raise ModelVerificationError(f"{model}: files do not match the signature: {detail}", diff)
    return actual
