"""Upgrading a log written in the pre-release layout (one row per leaf, table ``tlog_leaf``).

A user's embedded log outlives upgrades of the tool, so opening one in the old layout moves it
into bundles (see ``store``) instead of refusing it. The leaves are re-appended through the
normal batch path, so every hash is recomputed from the leaves, never copied; the rebuilt tree
must reproduce the root of every stored checkpoint before the old table is dropped; and all of
it is one write transaction, so any failure leaves the old log exactly as it was. Bodies,
search terms, checkpoints and settings live in tables both layouts share and are not touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glassbox.errors import VerificationError

if TYPE_CHECKING:
    from glassbox.tlog.store import SQLStore

OLD_TABLE = "tlog_leaf"
OBSOLETE_TABLES = ("tlog_node",)  # interior hashes of an even earlier layout: recomputed now
CHUNK = 4096


def upgrade_per_leaf_layout(store: SQLStore) -> int:
    """Move a pre-release log into bundles; returns the leaves moved (0: nothing to do)."""
    from glassbox.tlog.checkpoint import Checkpoint
    from glassbox.tlog.dedup import LeafIndex
    from glassbox.tlog.note import NoteError
    from glassbox.tlog.sequencer import Pending, WriterState, prepare, write_prepared
    from glassbox.tlog.tree import RightEdge

    with store.write_lock:
        size = store.begin_append()
        try:
            if not store._table_exists(store._writer(), OLD_TABLE):
                store.rollback()
                return 0
            if store._wexec("SELECT count(*) FROM tlog_bundle")[0][0]:
                raise VerificationError(
                    f"{store.description}: the log holds leaves in both the old and the new"
                    " layout; refusing to guess which is right"
                )
            roots: dict[int, bytes] = {}
            for cp_size, note in store._wexec("SELECT size, note FROM tlog_checkpoint"):
                try:
                    body = str(note).split("\n\n", 1)[0] + "\n"
                    roots[int(cp_size)] = Checkpoint.parse(body).root
                except (NoteError, ValueError) as exc:
                    raise VerificationError(
                        f"{store.description}: stored checkpoint at size {cp_size} is unreadable"
                        f" ({exc}); not upgrading"
                    ) from None
            # Chunks end at every checkpoint size, so each root is checked as the tree passes it.
            ends = sorted({s for s in roots if 0 < s <= size} | set(range(CHUNK, size, CHUNK)))
            if size and (not ends or ends[-1] != size):
                ends.append(size)
            state = WriterState(RightEdge(0, []), LeafIndex())
            start = 0
            for end in ends:
                rows = store._wexec(
                    f"SELECT idx, leaf, body_digest FROM {OLD_TABLE}"  # noqa: S608 (constant)
                    " WHERE idx >= ? AND idx < ? ORDER BY idx",
                    (start, end),
                )
                if [int(r[0]) for r in rows] != list(range(start, end)):
                    raise VerificationError(
                        f"{store.description}: old log is missing leaves in [{start}, {end})"
                    )
                items = [
                    Pending(bytes(leaf), None, None if d is None else bytes(d))
                    for _i, leaf, d in rows
                ]
                prepared = prepare(state, items)
                if any(r.duplicate for r in prepared.results):
                    raise VerificationError(f"{store.description}: old log has a duplicate leaf")
                write_prepared(store, prepared)
                if end in roots and state.edge.root() != roots[end]:
                    raise VerificationError(
                        f"{store.description}: the leaves do not reproduce the signed checkpoint"
                        f" at size {end}; the old log was edited, not upgrading"
                    )
                start = end
            if any(s > size for s in roots):
                raise VerificationError(f"{store.description}: a checkpoint is beyond the log")
            for table in (OLD_TABLE, *OBSOLETE_TABLES):
                store._wexec(f"DROP TABLE IF EXISTS {table}")
            store.set_size(size)
            store.commit()
        except BaseException:
            store.rollback()
            raise
    return size
