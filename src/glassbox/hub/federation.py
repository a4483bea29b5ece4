"""Federation: hubs mirror each other's logs from C2SP tiles, witness them, and gossip.

A log is fully described by its signed checkpoint and its tiles (``tlog-tiles``): hash tiles
give every subtree hash a proof needs, entry tiles give the leaves, and ``bodies/<N>`` (the
same index encoding) gives each leaf's full signed statement, so a proof bundle with its body
can be made from them alone. ``export_tiles`` writes a hub's log that way into a directory any
static file server (nginx, an object store) can serve; a hub also serves the same paths itself.

``mirror_log`` copies another hub's log from such a source into this hub's database, but only
after checking that the tiles hash to the signed checkpoint and that the new checkpoint extends
the one mirrored before (RFC 9162 consistency). A source that shows a history which does not
extend what this hub saw is a split view: both signed checkpoints are kept as evidence and the
mirror refuses to move. With a witness key, the mirror cosigns each checkpoint it accepted
(``glassbox.tlog.Witness``, with its own append-only state), so a client can require the
mirror's cosignature. ``compare_checkpoints`` is the gossip check: two signed checkpoints of one
log, from anywhere, either lie on one history or prove the log forked.

Releases published on hub A then verify from mirror B with no access to A: B answers
``mirror_proof_bundle`` from its copy, and the client checks it against A's log key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glassbox.digest.merkle import ProofError, verify_consistency
from glassbox.errors import InputError, VerificationError
from glassbox.hub.db import HubDB
from glassbox.tlog.checkpoint import SignedCheckpoint, open_checkpoint
from glassbox.tlog.entries import entry_from_body
from glassbox.tlog.note import parse_vkey
from glassbox.tlog.proofbundle import ProofBundle
from glassbox.tlog.store import decode_entries
from glassbox.tlog.tiles import TILE_HEIGHT, TILE_WIDTH, encode_index, read_tile, tile_path
from glassbox.tlog.tree import StoredTree

Fetch = Callable[[str], bytes]
MAX_TILE = TILE_WIDTH * 32


def tile_paths(size: int) -> list[tuple[int | None, int, int]]:
    """Every (level or None for entries, index, width) tile a tree of ``size`` has."""
    out: list[tuple[int | None, int, int]] = []
    level = 0
    while (count := size >> (level * TILE_HEIGHT)) > 0:
        for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, count - index * TILE_WIDTH)
            out.append((level, index, width))
            if level == 0:
                out.append((None, index, width))
        level += 1
    return out


def _path(level: int | None, index: int, width: int) -> str:
    return tile_path("entries" if level is None else level, index, width)


def body_path(index: int) -> str:
    return "bodies/" + encode_index(index)


def export_tiles(log: Any, out: str | Path) -> dict[str, Any]:
    """Write ``checkpoint``, every tile and every body of ``log`` under ``out``."""
    root = Path(out)
    cp = log.latest_checkpoint()
    if cp is None or cp.checkpoint.size < log.size():
        cp = log.issue_checkpoint()
    size = cp.checkpoint.size
    written = 0
    for level, index, width in tile_paths(size):
        target = root / _path(level, index, width)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_tile(log.store, size, level, index, width))
        written += 1
    for start in range(0, size, TILE_WIDTH):
        for stored in log.entries(start, min(size, start + TILE_WIDTH)):
            if stored.body is not None:
                target = root / body_path(stored.index)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(stored.body)
    (root / "checkpoint").write_text(cp.serialize())
    return {"origin": log.origin, "size": size, "tiles": written, "path": str(root)}


def http_source(base: str, timeout: float = 30.0) -> Fetch:
    """Fetch paths from a hub or any static server (``base`` + ``/`` + path)."""
    import httpx

    client = httpx.Client(timeout=timeout)

    def fetch(path: str) -> bytes:
        resp = client.get(base.rstrip("/") + "/" + path)
        if resp.status_code != 200:
            raise InputError(f"{base}/{path}: HTTP {resp.status_code}")
        return bytes(resp.content)

    return fetch


def dir_source(root: str | Path) -> Fetch:
    base = Path(root).resolve()

    def fetch(path: str) -> bytes:
        target = (base / path).resolve()
        if base not in target.parents:
            raise InputError(f"{path!r} is outside the tile directory")
        try:
            return target.read_bytes()
        except OSError as exc:
            raise InputError(f"{target}: {exc.strerror}") from None

    return fetch


class TileTree:
    """The minimal store interface ``StoredTree`` needs (``size``, ``get_nodes``), answered
    from tiles, so roots and proofs come from the same code the log itself uses."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch = fetch
        self._size = size
        self._tiles: dict[str, list[bytes]] = {}

    def size(self) -> int:
        return self._size

    def tile(self, level: int, index: int) -> list[bytes]:
        count = self._size >> (level * TILE_HEIGHT)
        width = min(TILE_WIDTH, count - index * TILE_WIDTH)
        if width <= 0:
            raise VerificationError(f"tile {level}/{index} is beyond the tree of size {self._size}")
        path = tile_path(level, index, width)
        if path not in self._tiles:
            data = self.fetch(path)
            if len(data) != 32 * width:
                raise VerificationError(f"tile {path} holds {len(data)} bytes, not {32 * width}")
            self._tiles[path] = [data[i : i + 32] for i in range(0, len(data), 32)]
        return self._tiles[path]

    def get_nodes(self, nodes: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        from glassbox.digest.merkle import node_hash

        out = {}
        for level, index in nodes:
            tlevel, rest = divmod(level, TILE_HEIGHT)
            first = index << rest
            hashes = self.tile(tlevel, first // TILE_WIDTH)
            offset = first % TILE_WIDTH
            layer = hashes[offset : offset + (1 << rest)]
            while len(layer) > 1:
                layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
            out[(level, index)] = layer[0]
        return out

    def leaf(self, index: int) -> bytes:
        tile_index = index // TILE_WIDTH
        width = min(TILE_WIDTH, self._size - tile_index * TILE_WIDTH)
        data = self.fetch(tile_path("entries", tile_index, width))
        return decode_entries(data, width)[index % TILE_WIDTH]


def _open(note: str | bytes, vkey: str) -> SignedCheckpoint:
    return open_checkpoint(note, parse_vkey(vkey))


def tile_proof_bundle(
    fetch: Fetch, vkey: str, index: int, note: str | None = None, since: int | None = None
) -> ProofBundle:
    """An offline proof bundle for entry ``index`` made from tiles alone (a mirror, a static
    file server), checked against the signed checkpoint before it is handed out; with
    ``since`` (the checkpoint size the client remembers), a consistency proof from it."""
    from glassbox.digest.merkle import leaf_hash
    from glassbox.tlog.proofbundle import ConsistencyProof

    text = note if note is not None else fetch("checkpoint").decode()
    cp = _open(text, vkey)
    size = cp.checkpoint.size
    tree = TileTree(fetch, size)
    stored = StoredTree(tree)  # type: ignore[arg-type]
    if stored.root(size) != cp.checkpoint.root:
        raise VerificationError(f"the tiles do not hash to the signed checkpoint of size {size}")
    if not 0 <= index < size:
        raise InputError(f"no entry {index} in a log of size {size}")
    leaf = tree.leaf(index)
    body = fetch(body_path(index))
    if entry_from_body(body, where=f"entry {index}").leaf != leaf:
        raise VerificationError(f"entry {index}: the body does not match the logged leaf")
    hashes = stored.inclusion_proof(index, size)
    if leaf_hash(leaf) != tree.get_nodes([(0, index)])[(0, index)]:
        raise VerificationError(f"entry {index}: the entry tile does not match the hash tile")
    consistency = None
    if since is not None and 0 < since < size:
        consistency = ConsistencyProof(since, stored.consistency_proof(since, size))
    return ProofBundle(
        log_vkey=vkey,
        index=index,
        leaf=leaf,
        body=body,
        tree_size=size,
        inclusion=hashes,
        checkpoint=text,
        consistency=consistency,
    )


def compare_checkpoints(
    first: str, second: str, vkey: str, fetch_larger: Fetch | None = None
) -> str:
    """Gossip: do two signed checkpoints of one log lie on one history?

    Returns ``same`` or ``consistent``; raises ``VerificationError`` naming the fork when
    they cannot (same size, different roots; or the larger tree's tiles do not extend the
    smaller). Without ``fetch_larger`` two different sizes are ``unverified``.
    """
    a, b = _open(first, vkey), _open(second, vkey)
    small, large = sorted((a.checkpoint, b.checkpoint), key=lambda c: c.size)
    if small.size == large.size:
        if small.root != large.root:
            raise VerificationError(
                f"split view: {small.origin} signed two different trees of size {small.size}"
            )
        return "same"
    if fetch_larger is None:
        return "unverified"
    tree = StoredTree(TileTree(fetch_larger, large.size))  # type: ignore[arg-type]
    proof = tree.consistency_proof(small.size, large.size)
    try:
        verify_consistency(small.size, large.size, proof, small.root, large.root)
    except ProofError:
        raise VerificationError(
            f"split view: {small.origin}'s tree of size {large.size} does not extend its "
            f"tree of size {small.size}"
        ) from None
    return "consistent"


# -- mirrors kept in a hub's database ------------------------------------------------------
def mirrors(db: HubDB) -> list[dict[str, Any]]:
    rows = db.query("SELECT origin, vkey, source, size, updated FROM hub_mirror ORDER BY origin")
    return [
        {"origin": r[0], "vkey": r[1], "source": r[2], "size": int(r[3]), "updated": float(r[4])}
        for r in rows
    ]


def _mirror_row(db: HubDB, origin: str) -> tuple[str, int, str] | None:
    rows = db.query("SELECT vkey, size, checkpoint FROM hub_mirror WHERE origin = ?", (origin,))
    return (rows[0][0], int(rows[0][1]), rows[0][2]) if rows else None


def db_source(db: HubDB, origin: str) -> Fetch:
    """Read a mirrored log's tiles and bodies back from this hub's database."""

    def fetch(path: str) -> bytes:
        if path == "checkpoint":
            row = _mirror_row(db, origin)
            if row is None:
                raise LookupError(f"this hub does not mirror {origin!r}")
            return row[2].encode()
        if path.startswith("bodies/"):
            index = int("".join(p.lstrip("x") for p in path[len("bodies/") :].split("/")))
            rows = db.query(
                "SELECT body FROM hub_mirror_body WHERE origin = ? AND idx = ?", (origin, index)
            )
        else:
            rows = db.query(
                "SELECT data FROM hub_mirror_tile WHERE origin = ? AND path = ?", (origin, path)
            )
        if not rows:
            raise LookupError(f"mirror of {origin}: no {path}")
        return bytes(rows[0][0])

    return fetch


def mirror_log(
    db: HubDB,
    fetch: Fetch,
    vkey: str,
    *,
    source: str = "",
    witness: Any = None,
) -> dict[str, Any]:
    """Bring this hub's mirror of the log with key ``vkey`` up to ``fetch``'s checkpoint.

    Refuses (``VerificationError``) tiles that do not hash to the signed checkpoint and a
    checkpoint that does not extend the mirrored one (recorded as a fork)."""
    from glassbox.tlog.witness import WitnessError, format_add_checkpoint

    note = fetch("checkpoint").decode()
    signed = _open(note, vkey)
    cp = signed.checkpoint
    previous = _mirror_row(db, cp.origin)
    tree = TileTree(fetch, cp.size)
    stored = StoredTree(tree)  # type: ignore[arg-type]
    if stored.root(cp.size) != cp.root:
        raise VerificationError(
            f"{source or cp.origin}: the tiles do not hash to the signed checkpoint"
        )
    old_size = 0
    proof: list[bytes] = []
    if previous is not None:
        old = _open(previous[2], vkey).checkpoint
        old_size = old.size
        try:
            if cp.size < old.size:
                raise ProofError(f"the log shrank from {old.size} to {cp.size}")
            proof = stored.consistency_proof(old.size, cp.size)
            if cp.size == old.size:
                if cp.root != old.root:
                    raise ProofError("a different root for the same size")
            else:
                verify_consistency(old.size, cp.size, proof, old.root, cp.root)
        except (ProofError, VerificationError) as exc:
            where = source or cp.origin
            detail = f"{where} shows a history that does not extend the mirrored one ({exc})"
            db.record_fork(cp.origin, previous[2], note, detail)
            raise VerificationError("split view: " + detail) from None
    # Copy what is new: tiles (partial ones are replaced), then bodies.
    first_new = old_size
    rows: list[tuple[str, bytes]] = []
    for level, index, width in tile_paths(cp.size):
        span = TILE_WIDTH << ((level or 0) * TILE_HEIGHT)
        if (index + 1) * span <= first_new and width == TILE_WIDTH:
            continue  # a full tile mirrored before
        path = _path(level, index, width)
        rows.append((path, fetch(path)))
    bodies: list[tuple[int, bytes]] = []
    for index in range(first_new, cp.size):
        body = fetch(body_path(index))
        if entry_from_body(body, where=f"entry {index}").leaf != tree.leaf(index):
            raise VerificationError(f"{source}: entry {index}'s body does not match its leaf")
        bodies.append((index, body))
    if witness is not None:
        try:
            line = witness.add_checkpoint(format_add_checkpoint(old_size, proof, note))
        except WitnessError as exc:
            raise VerificationError(f"the mirror's witness refused: {exc}") from None
        note = note + line
    with db.transaction() as cur:
        for path, data in rows:
            cur.execute(
                "DELETE FROM hub_mirror_tile WHERE origin = ? AND path = ?", (cp.origin, path)
            )
            cur.execute(
                "INSERT INTO hub_mirror_tile (origin, path, data) VALUES (?, ?, ?)",
                (cp.origin, path, data),
            )
        for index, body in bodies:
            cur.execute(
                "INSERT INTO hub_mirror_body (origin, idx, body) VALUES (?, ?, ?)",
                (cp.origin, index, body),
            )
        cur.execute("DELETE FROM hub_mirror WHERE origin = ?", (cp.origin,))
        cur.execute(
            "INSERT INTO hub_mirror (origin, vkey, source, size, checkpoint, updated)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (cp.origin, vkey, source, cp.size, note, time.time()),
        )
    return {"origin": cp.origin, "size": cp.size, "previous": old_size, "new_tiles": len(rows)}


def mirrored_checkpoint(db: HubDB, origin: str) -> str:
    return db_source(db, origin)("checkpoint").decode()


def mirror_proof_bundle(
    db: HubDB, origin: str, index: int, since: int | None = None
) -> ProofBundle:
    row = _mirror_row(db, origin)
    if row is None:
        raise LookupError(f"this hub does not mirror {origin!r}")
    return tile_proof_bundle(db_source(db, origin), row[0], index, row[2], since)
