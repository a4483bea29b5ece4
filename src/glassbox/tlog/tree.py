"""The storage-backed Merkle tree: roots and proofs in O(log n) stored-hash reads.

Appending stores every complete subtree hash as it forms (``RightEdge``), so the hash of any
range the RFC 9162 proof recursion asks for is either one stored node or a fold of the O(log n)
stored nodes that tile it. A proof is therefore planned first (which ranges are needed), fetched
in two batched queries (leaf hashes, interior nodes), and assembled; nothing is recomputed from
the leaves. Hashing is ``glassbox.digest.merkle``'s, and every proof this module produces is
checked in the tests with ``merkle.verify_*``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from glassbox.digest.merkle import EMPTY_ROOT, Frontier, node_hash
from glassbox.errors import InputError, VerificationError
from glassbox.tlog.store import HASH, LeafRow, Store

Node = tuple[int, int]  # (level, index): the complete subtree of 2**level leaves at index


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(lo: int, hi: int) -> list[Node]:
    """The complete aligned subtrees tiling [lo, hi), largest first (RFC 9162 MTH order)."""
    nodes: list[Node] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo & ((1 << level) - 1):
            level -= 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The sibling ranges whose hashes form PATH(index, D[0:size]), leaf side first."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def consistency_ranges(old: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PROOF(old, D[0:size]) (RFC 9162 2.1.4.1)."""
    out: list[tuple[int, int]] = []
    lo, hi, complete = 0, size, True
    tail: list[tuple[int, int]] = []
    while True:
        if old - lo == hi - lo:
            if not complete:
                out.append((lo, hi))
            break
        k = _split(hi - lo)
        if old - lo <= k:
            tail.append((lo + k, hi))
            hi = lo + k
        else:
            tail.append((lo, lo + k))
            lo, complete = lo + k, False
    return out + tail[::-1]


class StoredTree:
    """Read access to the tree in a ``Store``: roots and proofs at any committed size."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def fetch(self, nodes: Iterable[Node]) -> dict[Node, bytes]:
        wanted = set(nodes)
        got = self.store.get_nodes(list(wanted)) if wanted else {}
        missing = wanted - got.keys()
        if missing:
            level, index = min(missing)
            raise VerificationError(
                f"log storage is missing the hash of subtree (level {level}, index {index}):"
                " the database is damaged or was edited"
            )
        return got

    def _range_hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        plans = [range_nodes(lo, hi) for lo, hi in ranges]
        got = self.fetch(n for plan in plans for n in plan)
        out = []
        for plan in plans:
            node = got[plan[-1]]
            for left in reversed(plan[:-1]):
                node = node_hash(got[left], node)
            out.append(node)
        return out

    def _check_size(self, size: int) -> None:
        current = self.store.size()
        if not 0 <= size <= current:
            raise InputError(f"tree size {size} is beyond the log's size {current}")

    def root(self, size: int) -> bytes:
        self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        return self._range_hashes([(0, size)])[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= index < size:
            raise InputError(f"leaf index {index} is not inside a tree of size {size}")
        return self._range_hashes(inclusion_ranges(index, size))

    def consistency_proof(self, old: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= old <= size:
            raise InputError(f"no consistency proof from size {old} to size {size}")
        if old in (0, size):
            return []
        return self._range_hashes(consistency_ranges(old, size))


class RightEdge(Frontier):
    """The stored hashes along the right edge of the tree: what the next append combines with.

    A ``merkle.Frontier`` loaded from storage; ``append``/``extend`` return the interior nodes
    each new leaf completes, so the sequencer writes them in the same transaction as the leaf.
    Loading it costs O(log n) reads.
    """

    __slots__ = ()

    @classmethod
    def load(cls, tree: StoredTree, size: int) -> RightEdge:
        plan = range_nodes(0, size)
        got = tree.fetch(plan)
        return cls(size, [got[n] for n in plan])


def audit_store(store: Store, *, chunk: int = 4096) -> bytes:
    """Recompute the whole tree from the stored leaves and compare every stored hash.

    This is the check after a crash or a suspected edit: every stored interior node must be what
    the leaves imply, and none may be missing. (A leaf edited in place changes its own hash, which
    this cannot tell from a genuine leaf; proofs against signed checkpoints and the monitor catch
    that.) Returns the root. O(n) reads and hashing, streamed in chunks.
    """
    size = store.size()
    edge = RightEdge(0, [])
    for start in range(0, size, chunk):
        rows: list[LeafRow] = store.leaves(start, min(size, start + chunk))
        if len(rows) != min(size, start + chunk) - start:
            raise VerificationError(f"log storage is missing leaves in [{start}, {start + chunk})")
        for row in rows:
            if row.index != edge.size:
                raise VerificationError(f"log storage has a gap before leaf {row.index}")
            expected = edge.append(row.leaf_hash)
            if row.nodes != expected:
                for level in range(1, max(len(expected), len(row.nodes)) // HASH + 1):
                    part = slice((level - 1) * HASH, level * HASH)
                    if row.nodes[part] != expected[part]:
                        index = (row.index + 1) >> level
                        index -= 1
                        raise VerificationError(
                            f"stored hash of subtree (level {level}, index {index}) does not"
                            " match the leaves under it"
                        )
    return edge.root()
