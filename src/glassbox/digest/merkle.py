"""RFC 9162 Merkle tree hashing and proofs: the one implementation every part shares.

Dataset commitments (``glassbox.digest.dataset``) and the transparency log (``glassbox.tlog``)
both commit to ordered lists of leaves; using one audited implementation of RFC 9162 section 2
(leaf ``SHA-256(0x00 || data)``, node ``SHA-256(0x01 || left || right)``) means a record proof and
a log proof are checked by the same code, and the known-answer vectors cover both.

Generation here works on an in-memory list of leaf hashes (fine for a dataset commitment, a
proof is O(n) hashing); the log keeps subtree hashes in storage and generates proofs from those,
then verifies them with the functions below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from glassbox.errors import VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(VerificationError):
    """An inclusion or consistency proof does not verify (or is malformed)."""


# Hashers primed with the domain-separation byte: ``copy()`` of one is cheaper than a new
# hasher, which is what the log's and the dataset commitments' hot loops use.
LEAF_PREFIX = hashlib.sha256(b"\x00")
_NODE_PREFIX = hashlib.sha256(b"\x01")


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def leaf_hashes(records: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each record: one list comprehension, so the per-record cost is one
    ``sha256`` call and no Python frame (the dataset commitment's hot loop)."""
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + record).digest() for record in records]


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree over ``hashes`` (a power of two of them), level by level: each
    level is one list comprehension over the one below, no per-node Python frame."""
    width = len(hashes)
    if width == 0 or width & (width - 1):
        raise ValueError(f"a perfect subtree has a power-of-two width, not {width}")
    sha256 = hashlib.sha256
    level = list(hashes)
    while len(level) > 1:
        pairs = iter(level)
        level = [
            sha256(b"\x01" + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
    return level[0]


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (RFC 9162 ``k``), for n >= 2."""
    return 1 << ((n - 1).bit_length() - 1)


ABSORB_BLOCK = 4096  # leaves hashed as one perfect subtree by ``Frontier.absorb``


class Frontier:
    """An append-only compact range: the roots of the perfect subtrees covering [0, size).

    Appending is amortised O(1) and memory is O(log n), so a root over a billion streamed
    records needs no list of leaves. ``root()`` folds the frontier right to left, which is
    exactly the RFC 9162 MTH of the leaves appended so far. The log's sequencer stores the
    interior nodes each append completes, which ``append``/``extend`` return for that reason.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Start empty, or resume a tree of ``size`` leaves from its frontier ``hashes`` (one
        per set bit of ``size``, largest subtree first)."""
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes")
        self._hashes = list(hashes)
        self.size = size

    @property
    def hashes(self) -> list[bytes]:
        return list(self._hashes)

    def append(self, leaf: bytes) -> bytes:
        """Append one leaf *hash*; return the interior nodes it completes, level 1 upward,
        concatenated (``b""`` for the half of all appends that complete none)."""
        return self.extend((leaf,))[0]

    def extend(self, leaves: Iterable[bytes]) -> list[bytes]:
        """``append`` for many leaf hashes; the hot loop of both dataset commitments and the
        log's sequencer, so locals are bound once."""
        out: list[bytes] = []
        add = out.append
        hashes, index = self._hashes, self.size
        push, pop = hashes.append, hashes.pop
        prefix = _NODE_PREFIX.copy  # node_hash, inlined: copying a primed hasher is cheaper
        for leaf in leaves:
            if not index & 1:
                push(leaf)
                add(b"")
                index += 1
                continue
            node, n, new = leaf, index, []
            while n & 1:
                h = prefix()
                h.update(pop())
                h.update(node)
                node = h.digest()
                n >>= 1
                new.append(node)
            push(node)
            add(new[0] if len(new) == 1 else b"".join(new))
            index += 1
        self.size = index
        return out

    def absorb(self, leaves: Sequence[bytes]) -> None:
        """``extend`` without reporting interior nodes, for a root over many leaves.

        Whenever the tree's size is a multiple of ``ABSORB_BLOCK`` and a whole block of leaves
        is at hand, the block's perfect subtree is hashed level by level (``perfect_root``) and
        joined to the frontier as one node, instead of walking the frontier once per leaf. The
        tree, and so the root, is the same: only the order the nodes are hashed in changes.
        """
        block = ABSORB_BLOCK
        at, total = 0, len(leaves)
        while at < total:
            if self.size % block or total - at < block:
                step = min(total - at, block - self.size % block)
                self.extend(leaves[at : at + step])
                at += step
                continue
            self.add_subtree(perfect_root(leaves[at : at + block]), block)
            at += block

    def add_subtree(self, node: bytes, width: int) -> None:
        """Append the root ``node`` of a perfect subtree of ``width`` leaves (a power of two)
        at a size that is a multiple of ``width``: the tree is the one its leaves would make."""
        if width < 1 or width & (width - 1) or self.size % width:
            raise ValueError(f"a subtree of width {width} cannot join a tree of size {self.size}")
        hashes, n = self._hashes, self.size >> (width.bit_length() - 1)
        while n & 1:
            node = node_hash(hashes.pop(), node)
            n >>= 1
        hashes.append(node)
        self.size += width

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        node = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            node = node_hash(left, node)
        return node


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes."""
    frontier = Frontier()
    frontier.absorb(leaves)
    return frontier.root()


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[n]) over leaf hashes; O(n) hashing, O(log n) recursion."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} out of range for tree size {n}")
    proof: list[bytes] = []
    lo, hi = 0, n
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            proof.append(root_of(leaves[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root_of(leaves[lo : lo + k]))
            lo = lo + k
    proof.reverse()
    return proof


def inclusion_proofs(leaves: Sequence[bytes], indices: Iterable[int]) -> list[list[bytes]]:
    """``inclusion_proof`` for many leaves: every level is hashed once (n hashes, O(n) memory),
    then each proof costs O(log n) lookups plus the hashes of the tree's ragged right edge.
    The batch form is what a scanner naming hundreds of suspect records needs."""
    n = len(leaves)
    wanted = list(indices)
    for index in wanted:
        if not 0 <= index < n:
            raise ValueError(f"leaf index {index} out of range for tree size {n}")
    levels = [list(leaves)]  # levels[j][a] = root of the perfect subtree [a*2^j, (a+1)*2^j)
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def range_root(lo: int, hi: int) -> bytes:
        # In RFC 9162's recursion every range starts on a multiple of its largest power of two.
        width = hi - lo
        if width & (width - 1) == 0:
            level = width.bit_length() - 1
            return levels[level][lo >> level]
        k = _split(width)
        return node_hash(range_root(lo, lo + k), range_root(lo + k, hi))

    proofs = []
    for index in wanted:
        proof: list[bytes] = []
        lo, hi = 0, n
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                proof.append(range_root(lo + k, hi))
                hi = lo + k
            else:
                proof.append(range_root(lo, lo + k))
                lo = lo + k
        proof.reverse()
        proofs.append(proof)
    return proofs


def proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[lo, hi)`` whose roots make up PATH(index, D[size]), deepest first.

    Every range is a node of the RFC 9162 tree: either a perfect subtree aligned on its width,
    or a suffix ``[lo, size)`` starting on a boundary of ``size``'s binary decomposition.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} out of range for tree size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def streaming_inclusion_proofs(
    leaves: Iterable[bytes], size: int, indices: Iterable[int]
) -> dict[int, list[bytes]]:
    """``inclusion_proofs`` from one pass over a stream of ``size`` leaf hashes.

    Memory is O(log n) plus O(log n) hashes per wanted index, never the leaves themselves, so
    proofs about a few records of a ten-million-record dataset cost one more streaming read.
    Perfect subtrees are caught as the frontier completes them; the ragged right edge is folded
    from the final frontier. Raises ``ValueError`` if the stream does not hold ``size`` leaves.
    """
    wanted = sorted(set(indices))
    needed: dict[int, list[tuple[int, int]]] = {i: proof_ranges(i, size) for i in wanted}
    aligned: set[tuple[int, int]] = set()
    suffixes: set[int] = set()
    for ranges in needed.values():
        for lo, hi in ranges:
            width = hi - lo
            if width & (width - 1) == 0 and lo % width == 0:
                aligned.add((lo, width))
            else:
                suffixes.add(lo)
    found: dict[tuple[int, int], bytes] = {}
    frontier = Frontier()
    batch: list[bytes] = []
    block = ABSORB_BLOCK
    shift = block.bit_length() - 1
    # The blocks that hold a wanted leaf: only there are nodes narrower than a block needed.
    busy = {index >> shift for index in wanted}

    def flush() -> None:
        start = frontier.size
        if len(batch) == block and not start % block and (start >> shift) not in busy:
            # A block no proof looks inside: hash it level by level, join it as one node.
            node, n, end = perfect_root(batch), start >> shift, start + block
            if (start, block) in aligned:
                found[(start, block)] = node
            hashes, width = frontier._hashes, block
            while n & 1:
                node = node_hash(hashes.pop(), node)
                n >>= 1
                width <<= 1
                if (end - width, width) in aligned:
                    found[(end - width, width)] = node
            hashes.append(node)
            frontier.size = end
            batch.clear()
            return
        completed = frontier.extend(batch)
        for offset, leaf in enumerate(batch):
            at = start + offset
            if (at, 1) in aligned:
                found[(at, 1)] = leaf
            nodes = completed[offset]
            end = at + 1
            for level in range(len(nodes) // HASH_SIZE):
                width = 2 << level
                key = (end - width, width)
                if key in aligned:
                    found[key] = nodes[level * HASH_SIZE : (level + 1) * HASH_SIZE]
        batch.clear()

    for leaf in leaves:
        batch.append(leaf)
        if len(batch) >= block:
            flush()
    flush()
    if frontier.size != size:
        raise ValueError(f"expected {size} leaves, the stream held {frontier.size}")
    if suffixes:
        # Frontier hashes cover [0,p1), [p1,p1+p2), ...: fold each suffix from the right.
        bounds, at = [], 0
        for bit in reversed(range(size.bit_length())):
            if size >> bit & 1:
                bounds.append(at)
                at += 1 << bit
        hashes = frontier.hashes
        node = hashes[-1]
        suffix_root = {bounds[-1]: node}
        for i in range(len(hashes) - 2, -1, -1):
            node = node_hash(hashes[i], node)
            suffix_root[bounds[i]] = node
        for lo in suffixes:
            found[(lo, -1)] = suffix_root[lo]
    out: dict[int, list[bytes]] = {}
    for index, ranges in needed.items():
        path = []
        for lo, hi in ranges:
            width = hi - lo
            if width & (width - 1) == 0 and lo % width == 0:
                path.append(found[(lo, width)])
            else:
                path.append(found[(lo, -1)])
        out[index] = path
    return out


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(m, D[n]) over leaf hashes; recursion depth is O(log n)."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"old size {old_size} out of range for tree size {n}")

    def subproof(lo: int, hi: int, complete: bool) -> list[bytes]:
        # SUBPROOF(m, D[lo:hi], b): the old tree is D[0:old_size]; lo is where this subtree starts.
        if old_size - lo == hi - lo:
            return [] if complete else [root_of(leaves[lo:hi])]
        k = _split(hi - lo)
        if old_size - lo <= k:
            return [*subproof(lo, lo + k, complete), root_of(leaves[lo + k : hi])]
        return [*subproof(lo + k, hi, False), root_of(leaves[lo : lo + k])]

    return subproof(0, n, True)


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, expected {HASH_SIZE}")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Recompute the root that ``proof`` claims for ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not inside a tree of size {size}")
    _check_hash("leaf hash", leaf)
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        _check_hash("proof hash", p)
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2. Raises ``ProofError`` unless ``leaf`` is at ``index`` under ``root``."""
    _check_hash("root", root)
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the tree root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """RFC 9162 2.1.4.2. Raises ``ProofError`` unless tree ``size1`` is a prefix of ``size2``.

    As in transparency-dev/merkle, ``size1 == 0`` is rejected here: an empty tree is trivially
    consistent with anything, and protocols that allow it (tlog-witness) say so themselves.
    """
    if size1 <= 0 or size2 < size1:
        raise ProofError(f"no consistency proof exists from size {size1} to size {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same tree size {size1}")
        return
    _check_hash("old root", root1)
    _check_hash("new root", root2)
    for p in proof:
        _check_hash("proof hash", p)
    if not proof:
        raise ProofError("empty consistency proof between different sizes")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than expected")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than expected")
    if fr != root1:
        raise ProofError(f"consistency proof does not reproduce the old root (size {size1})")
    if sr != root2:
        raise ProofError(f"consistency proof does not reproduce the new root (size {size2})")
