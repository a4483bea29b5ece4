"""Signed statements for log tests, made with the real glassbox.sign API."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from glassbox.digest.merkle import leaf_hash
from glassbox.sign import (
    IN_TOTO_PAYLOAD_TYPE,
    dsse_sign,
    generate_private_key,
    make_statement,
    sign_statement,
)
from glassbox.sign.statement import statement_bytes
from glassbox.tlog import make_submission
from glassbox.tlog.store import (
    HASH,
    SQLStore,
    decode_entries,
    encode_entries,
    node_row,
    nodes_before,
)

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


def _bundle_of(store: SQLStore, row: int) -> tuple[int, int, bytes, bytes, bytes]:
    start, width, nodes, hashes, entries = store._wexec(
        "SELECT start, width, nodes, hashes, entries FROM tlog_bundle WHERE start <= ?"
        " ORDER BY start DESC LIMIT 1",
        (row,),
    )[0]
    return int(start), int(width), bytes(nodes), bytes(hashes), bytes(entries)


def corrupt_node(store: SQLStore, level: int, index: int, *, truncate: bool = False) -> None:
    """Edit (or cut off) the stored hash of one subtree directly in the database."""
    row = node_row(level, index)
    with store.write_lock:
        store.begin_append()
        start, _width, nodes, _h, _e = _bundle_of(store, row)
        at = (nodes_before(row) - nodes_before(start) + level - 1) * HASH
        if truncate:
            new = nodes[:at] + nodes[at + HASH :]
        else:
            new = nodes[:at] + bytes(b ^ 0xFF for b in nodes[at : at + HASH]) + nodes[at + HASH :]
        store._wexec("UPDATE tlog_bundle SET nodes = ? WHERE start = ?", (new, start))
        store.commit()


def edit_leaf(store: SQLStore, index: int, leaf: bytes, *, rehash: bool = True) -> None:
    """Replace one stored leaf directly in the database: an operator who knows the layout
    (``rehash``: the stored leaf hash is rewritten to match, so nothing local looks wrong)."""
    with store.write_lock:
        store.begin_append()
        start, width, _n, hashes, entries = _bundle_of(store, index)
        leaves = decode_entries(entries, width)
        leaves[index - start] = leaf
        if rehash:
            at = (index - start) * HASH
            hashes = hashes[:at] + leaf_hash(leaf) + hashes[at + HASH :]
        store._wexec(
            "UPDATE tlog_bundle SET entries = ?, hashes = ? WHERE start = ?",
            (encode_entries(leaves), hashes, start),
        )
        store.commit()


def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free loopback port; yields its base URL (a
    generator, so ``for url in serve(app):`` stops the server when the block ends)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
