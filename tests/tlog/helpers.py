"""Signed statements for log tests, made with the real glassbox.sign API."""

from __future__ import annotations

import hashlib
from typing import Any

from glassbox.sign import (
    IN_TOTO_PAYLOAD_TYPE,
    dsse_sign,
    generate_private_key,
    make_statement,
    sign_statement,
)
from glassbox.sign.statement import statement_bytes
from glassbox.tlog import make_submission
from glassbox.tlog.store import HASH, SQLStore, node_row

OMS = "https://model_signing/signature/v1.0"


def statement(name: str, seed: str, ptype: str = OMS) -> dict[str, Any]:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return make_statement([{"name": name, "digest": {"sha256": digest}}], ptype, {"seed": seed})


def bundle_submission(key: Any, name: str = "model-a", seed: str = "1") -> dict[str, Any]:
    return make_submission(sign_statement(statement(name, seed), key), key.public_key())


def dsse_submission(key: Any, name: str = "prov-a", seed: str = "1") -> dict[str, Any]:
    st = statement(name, seed, "https://slsa.dev/provenance/v1")
    env = dsse_sign(statement_bytes(st), IN_TOTO_PAYLOAD_TYPE, key)
    return make_submission(env.to_dict(), key.public_key())


def new_key(kind: str = "ed25519") -> Any:
    return generate_private_key(kind)


def corrupt_node(store: SQLStore, level: int, index: int, *, truncate: bool = False) -> None:
    """Edit (or cut off) the stored hash of one subtree directly in the database."""
    row = node_row(level, index)
    packed = store.leaves(row, row + 1)[0].nodes
    if truncate:
        new = packed[: (level - 1) * HASH]
    else:
        part = slice((level - 1) * HASH, level * HASH)
        new = packed[: part.start] + bytes(b ^ 0xFF for b in packed[part]) + packed[part.stop :]
    with store.write_lock:
        store.begin_append()
        store._wexec("UPDATE tlog_leaf SET nodes = ? WHERE idx = ?", (new, row))
        store.commit()
