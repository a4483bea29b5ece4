"""in-toto Statement v1: "these subjects (by digest) have this predicate".

Every Glassbox attestation (model signature, provenance, scan result) is a Statement; parts
differ only in ``predicateType`` and ``predicate``. Parsing is strict about the envelope of the
statement and leaves the predicate to whoever owns its type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from glassbox.errors import InputError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

_HEX = re.compile(r"[0-9a-f]+")
# in-toto DigestSet: these algorithms are always lowercase hex; others (e.g. gitCommit
# variants, custom ones) are only required to be non-empty strings.
_HEX_ALGORITHMS = frozenset(
    {
        "sha256",
        "sha224",
        "sha384",
        "sha512",
        "sha512_224",
        "sha512_256",
        "sha1",
        "md5",
        "sha3_224",
        "sha3_256",
        "sha3_384",
        "sha3_512",
        "blake2b",
        "blake2s",
        "blake3",
    }
)


def subject(name: str, digest: bytes | str, algorithm: str = "sha256") -> dict[str, Any]:
    """A ResourceDescriptor for a statement subject; ``digest`` as raw bytes or lowercase hex."""
    value = digest.hex() if isinstance(digest, bytes) else digest
    return {"name": name, "digest": {algorithm: value}}


def _check_subject(entry: object, index: int) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise InputError(f"statement subject {index}: expected an object")
    name = entry.get("name")
    digest = entry.get("digest")
    if not isinstance(name, str):
        raise InputError(f"statement subject {index}: missing name")
    if not isinstance(digest, Mapping) or not digest:
        raise InputError(f"statement subject {index} ({name!r}): missing digest")
    for algorithm, value in digest.items():
        if not isinstance(algorithm, str) or not isinstance(value, str):
            raise InputError(f"statement subject {index} ({name!r}): digest must map str to str")
        if not value or (algorithm in _HEX_ALGORITHMS and not _HEX.fullmatch(value)):
            raise InputError(
                f"statement subject {index} ({name!r}): {algorithm} digest is not lowercase hex"
            )
    return dict(entry)


def make_statement(
    subjects: Iterable[Mapping[str, Any]], predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """A Statement v1 dict, keys in the order in-toto and model_signing print them.

    ``subjects`` are ``{"name": ..., "digest": {"sha256": hex}}`` (see ``subject``).
    """
    checked = [_check_subject(entry, i) for i, entry in enumerate(subjects)]
    if not checked:
        raise InputError("a statement needs at least one subject")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise InputError("a statement needs a predicateType")
    return {
        "_type": STATEMENT_TYPE,
        "subject": checked,
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """The DSSE payload for a statement: UTF-8 JSON, indented like model_signing's output."""
    return json.dumps(statement, indent=2, ensure_ascii=False).encode("utf-8")


def parse_statement(payload: bytes, *, where: str = "payload") -> dict[str, Any]:
    """Decode and check a DSSE payload as a Statement v1; ``InputError`` on anything else."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{where}: statement is not UTF-8") from None
    except RecursionError:
        raise InputError(f"{where}: statement JSON is nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"{where}: statement is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: statement is not a JSON object")
    kind = data.get("_type")
    if kind != STATEMENT_TYPE:
        raise InputError(f"{where}: expected an in-toto {STATEMENT_TYPE} statement, got {kind!r}")
    subjects = data.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise InputError(f"{where}: statement has no subject")
    data["subject"] = [_check_subject(entry, i) for i, entry in enumerate(subjects)]
    if not isinstance(data.get("predicateType"), str) or not data["predicateType"]:
        raise InputError(f"{where}: statement has no predicateType")
    predicate = data.get("predicate", {})
    if not isinstance(predicate, dict):
        raise InputError(f"{where}: statement predicate is not an object")
    data["predicate"] = predicate
    return data
