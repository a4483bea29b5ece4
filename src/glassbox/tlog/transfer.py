"""``glassbox log export / import``: move a log between stores (SQLite <-> PostgreSQL).

The archive is gzipped JSON lines: a header (log key, size, root), then leaves with their bodies
and search terms in index order, then the signed checkpoints. Import re-appends the leaves
through the normal batched path (so every interior hash is recomputed, never copied) into an
empty store, and refuses the result unless the rebuilt root equals the exported root and every
exported checkpoint verifies against the rebuilt tree.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from glassbox.errors import InputError, VerificationError
from glassbox.tlog.checkpoint import open_checkpoint
from glassbox.tlog.note import NoteError, parse_vkey
from glassbox.tlog.sequencer import Pending, WriterState, append_batch
from glassbox.tlog.store import SQLStore
from glassbox.tlog.tree import StoredTree

FORMAT = "glassbox-tlog-export/v1"
CHUNK = 2000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export_log(store: SQLStore, path: str | Path) -> dict[str, Any]:
    """Write ``store`` to ``path``; returns the header (size, root, key)."""
    size = store.size()
    header = {
        "format": FORMAT,
        "vkey": store.get_meta("vkey"),
        "size": size,
        "root": StoredTree(store).root(size).hex(),
    }
    with gzip.open(Path(path), "wt", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        for start in range(0, size, CHUNK):
            end = min(size, start + CHUNK)
            terms: dict[int, list[list[str]]] = {}
            for kind, value, idx in store.terms(start, end):
                terms.setdefault(idx, []).append([kind, value])
            for row in store.leaves(start, end):
                body = store.get_blob(row.body_digest) if row.body_digest else None
                rec = {
                    "i": row.index,
                    "leaf": _b64(row.leaf),
                    "body": None if body is None else _b64(body),
                    "terms": terms.get(row.index, []),
                }
                out.write(json.dumps(rec) + "\n")
        for cp_size, note in store.checkpoints():
            out.write(json.dumps({"checkpoint": note, "size": cp_size}) + "\n")
    return header


def _records(fh: IO[str]) -> Iterator[dict[str, Any]]:
    for n, line in enumerate(fh, 2):
        try:
            rec = json.loads(line)
        except ValueError:
            raise InputError(f"export line {n} is not JSON") from None
        if not isinstance(rec, dict):
            raise InputError(f"export line {n} is not an object")
        yield rec


def import_log(store: SQLStore, path: str | Path) -> dict[str, Any]:
    """Rebuild the exported log in ``store`` (which must be empty) and verify it."""
    if store.size() != 0:
        raise InputError(f"{store.description}: import needs an empty log store")
    p = Path(path)
    with gzip.open(p, "rt", encoding="utf-8") as fh:
        try:
            header = json.loads(fh.readline())
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{p}: not a Glassbox log export ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InputError(f"{p}: not a Glassbox log export (format {FORMAT})")
        try:
            verifier = parse_vkey(str(header.get("vkey")))
        except NoteError as exc:
            raise InputError(f"{p}: export header has no valid log key ({exc})") from None
        state: WriterState | None = None
        batch: list[Pending] = []
        checkpoints: list[tuple[int, str]] = []
        expected = 0

        def flush() -> None:
            nonlocal state, batch
            if batch:
                state, results = append_batch(store, state, batch)
                if any(r.duplicate for r in results):
                    raise VerificationError(f"{p}: export contains a duplicate leaf")
                batch = []

        import hashlib

        for rec in _records(fh):
            if "checkpoint" in rec:
                checkpoints.append((int(rec["size"]), str(rec["checkpoint"])))
                continue
            try:
                if rec["i"] != expected:
                    raise InputError(f"{p}: leaf {rec['i']} out of order (expected {expected})")
                leaf = base64.b64decode(rec["leaf"], validate=True)
                body = None if rec["body"] is None else base64.b64decode(rec["body"], validate=True)
                terms = tuple((str(k), str(v)) for k, v in rec["terms"])
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{p}: malformed leaf record {expected} ({exc})") from None
            digest = hashlib.sha256(body).digest() if body is not None else None
            batch.append(Pending(leaf, body, digest, terms))
            expected += 1
            if len(batch) >= CHUNK:
                flush()
        flush()
    size = store.size()
    tree = StoredTree(store)
    root = tree.root(size)
    if size != header.get("size") or root.hex() != header.get("root"):
        raise VerificationError(f"{p}: rebuilt tree (size {size}) does not match the export root")
    for cp_size, note in checkpoints:
        cp = open_checkpoint(note, verifier).checkpoint
        if cp.size != cp_size or cp.size > size or tree.root(cp.size) != cp.root:
            raise VerificationError(f"{p}: checkpoint at size {cp_size} does not match the tree")
        store.put_checkpoint(cp_size, note)
    store.set_meta("vkey", verifier.vkey)
    return {
        "size": size,
        "root": root.hex(),
        "checkpoints": len(checkpoints),
        "vkey": verifier.vkey,
    }
