"""Probe results as a signed in-toto attestation: "this model (by OMS root digest), run on
this suite (by digest) with these decoding settings, gave these results".

The statement's subjects are the model's files (so ``glassbox verify``-style tooling can
match it to the model); the predicate names the model's OMS manifest root digest (what a
recipe's ``base_model`` and ``audit`` use) and the suite's SHA-256. A changed result, setting
or digest changes the signed payload and so breaks the signature.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError
from glassbox.lm.probe import ProbeRun

if TYPE_CHECKING:
    from glassbox.sign import PrivateKey, PublicKey

PROBE_PREDICATE_TYPE = "https://glassbox.dev/probe/v1"
PROBE_SCHEMA = 1


def model_root_digest(path: Path) -> tuple[str, list[tuple[str, bytes]]]:
    """The OMS root digest (hex) of a model directory without its ``model.sig``, and its
    files' (name, digest) pairs for the statement's subjects."""
    from glassbox.digest import hash_model
    from glassbox.digest.manifest import DEFAULT_SIGNATURE_NAME

    manifest = hash_model(path, ignore_paths=[DEFAULT_SIGNATURE_NAME], use_cache=False)
    return manifest.root_digest.hex(), [(item.name, item.digest) for item in manifest.items]


def probe_predicate(run: ProbeRun, root: str) -> dict[str, Any]:
    body = run.to_dict()
    model = Path(body.pop("model"))
    suite = body.pop("suite")
    suite.pop("path", None)
    return {
        "schema": PROBE_SCHEMA,
        "model": {"name": model.name, "digest": {"sha256": root}},
        "suite": suite,
        **body,
    }


def probe_statement(run: ProbeRun) -> dict[str, Any]:
    """The unsigned Statement (the model's files are hashed now)."""
    from glassbox.sign import make_statement, subject

    root, items = model_root_digest(Path(run.model))
    subjects = [subject(name, digest) for name, digest in items]
    return make_statement(subjects, PROBE_PREDICATE_TYPE, probe_predicate(run, root))


def attest_probes(run: ProbeRun, key: PrivateKey) -> dict[str, Any]:
    """Sign the probe statement; a Sigstore bundle (write it with ``write_bundle``)."""
    from glassbox.sign import sign_statement

    return sign_statement(probe_statement(run), key)


def probe_predicate_of(statement: dict[str, Any], where: str) -> dict[str, Any]:
    """The predicate of a probe statement, after checking it is one this version reads."""
    if statement.get("predicateType") != PROBE_PREDICATE_TYPE:
        raise InputError(
            f"{where}: not a probe attestation (predicateType "
            f"{statement.get('predicateType')!r}, expected {PROBE_PREDICATE_TYPE!r})"
        )
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict) or predicate.get("schema") != PROBE_SCHEMA:
        raise InputError(f"{where}: probe predicate schema is not {PROBE_SCHEMA}")
    results = predicate.get("results")
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and isinstance(r.get("id"), str) for r in results
    ):
        raise InputError(f"{where}: probe predicate has no valid results list")
    return predicate


def verify_probe_bundle(
    bundle: dict[str, Any], pub: PublicKey, *, where: str = "probe attestation"
) -> dict[str, Any]:
    """The verified predicate of a probe attestation bundle already in memory (a registry
    holds them as rows, not files)."""
    from glassbox.sign import verify_bundle

    return probe_predicate_of(verify_bundle(bundle, pub, where=where), where)


def verify_probe_attestation(path: Path, pub: PublicKey) -> dict[str, Any]:
    """The verified predicate of a probe attestation file (``VerificationError`` if the
    signature does not hold)."""
    from glassbox.sign import read_bundle

    return verify_probe_bundle(read_bundle(path), pub, where=str(path))


def read_probe_attestation(path: Path) -> dict[str, Any]:
    """The predicate of a probe attestation file, without checking its signature."""
    from glassbox.sign import bundle_envelope, parse_statement, read_bundle

    envelope = bundle_envelope(read_bundle(path), where=str(path))
    statement = parse_statement(envelope.payload, where=f"{path} payload")
    return probe_predicate_of(statement, str(path))
