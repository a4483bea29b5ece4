"""A signed in-toto attestation of a lineage result: "this model (by digest) was compared with
that base (by digest) and found derived / not derived, with this evidence"."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.lm.lineage import LineageResult

if TYPE_CHECKING:
    from glassbox.sign import PrivateKey

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
