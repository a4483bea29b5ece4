"""A signed in-toto attestation of a lineage result: "this model (by digest) was compared with
that base (by digest) and found derived / not derived, with this evidence"."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError
from glassbox.lm.lineage import DERIVED, INCONCLUSIVE, NOT_DERIVED, LineageResult

if TYPE_CHECKING:
    from glassbox.sign import PrivateKey, PublicKey

LINEAGE_PREDICATE_TYPE = "https://glassbox.dev/lineage/v1"


def _sig(path: str) -> list[str]:
    """Leave a model directory's own ``model.sig`` out: the digest is the OMS root digest."""
    from glassbox.digest.manifest import DEFAULT_SIGNATURE_NAME

    return [DEFAULT_SIGNATURE_NAME] if Path(path).is_dir() else []


def lineage_statement(result: LineageResult) -> dict[str, Any]:
    """The unsigned Statement. Subjects are the candidate's files, hashed now; the base is
    named by its OMS manifest root digest (the digest a recipe's ``base_model`` declares)."""
    from glassbox.digest import hash_model
    from glassbox.sign import make_statement, subject

    candidate = hash_model(
        Path(result.candidate), ignore_paths=_sig(result.candidate), use_cache=False
    )
    base = hash_model(Path(result.base), ignore_paths=_sig(result.base), use_cache=False)
    subjects = [subject(item.name, item.digest) for item in candidate.items]
    body = result.to_dict()
    body.pop("candidate")
    body["candidateRoot"] = {"sha256": candidate.root_digest.hex()}
    body["base"] = {
        "name": Path(result.base).name,
        "digest": {"sha256": base.root_digest.hex()},
    }
    return make_statement(subjects, LINEAGE_PREDICATE_TYPE, body)


def attest_lineage(result: LineageResult, key: PrivateKey) -> dict[str, Any]:
    """Sign the lineage statement; a Sigstore bundle (write it with ``write_bundle``)."""
    from glassbox.sign import sign_statement

    return sign_statement(lineage_statement(result), key)


def lineage_predicate_of(statement: dict[str, Any], where: str) -> dict[str, Any]:
    """The predicate of a lineage statement, after checking it is one this version reads:
    a known verdict, a numeric score, and the candidate's and base's root digests."""
    if statement.get("predicateType") != LINEAGE_PREDICATE_TYPE:
        raise InputError(
            f"{where}: not a lineage attestation (predicateType "
            f"{statement.get('predicateType')!r}, expected {LINEAGE_PREDICATE_TYPE!r})"
        )
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise InputError(f"{where}: lineage predicate is not an object")
    if predicate.get("verdict") not in (DERIVED, NOT_DERIVED, INCONCLUSIVE):
        raise InputError(f"{where}: lineage verdict {predicate.get('verdict')!r} is not known")
    score = predicate.get("score")
    if not isinstance(score, (int, float)) or isinstance(score, bool):
        raise InputError(f"{where}: lineage score is not a number")
    base = predicate.get("base")
    candidate = predicate.get("candidateRoot")
    for what, value in (
        ("base digest", base.get("digest") if isinstance(base, dict) else None),
        ("candidateRoot", candidate),
    ):
        digest = value.get("sha256") if isinstance(value, dict) else None
        if not isinstance(digest, str) or len(digest) != 64:
            raise InputError(f"{where}: lineage predicate has no SHA-256 {what}")
    return predicate


def verify_lineage_bundle(
    bundle: dict[str, Any], pub: PublicKey, *, where: str = "lineage attestation"
) -> dict[str, Any]:
    """The verified predicate of a lineage attestation bundle (``VerificationError`` if the
    signature does not hold with ``pub``)."""
    from glassbox.sign import verify_bundle

    return lineage_predicate_of(verify_bundle(bundle, pub, where=where), where)


def verify_lineage_attestation(path: Path, pub: PublicKey) -> dict[str, Any]:
    """The verified predicate of a lineage attestation file."""
    from glassbox.sign import read_bundle

    return verify_lineage_bundle(read_bundle(path), pub, where=str(path))


def read_lineage_attestation(path: Path) -> dict[str, Any]:
    """The predicate of a lineage attestation file, without checking its signature."""
    from glassbox.sign import bundle_envelope, parse_statement, read_bundle

    envelope = bundle_envelope(read_bundle(path), where=str(path))
    statement = parse_statement(envelope.payload, where=f"{path} payload")
    return lineage_predicate_of(statement, str(path))
