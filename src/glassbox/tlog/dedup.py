"""The writer's duplicate index: 64-bit leaf-hash prefix -> leaf index, in memory.

Identical entries must get the same index back. A database index on the leaf hash does that,
but every append then writes into random pages of a B-tree that grows with the log: at a
million entries each 4096-entry batch rewrote megabytes of index pages and appends ran at a
tenth of the storage ceiling. This table is derived state instead: rebuilt from the stored
``hkey`` column (a sequential scan) when a writer opens the log, and topped up under the
tree-head lock with whatever other writers appended since, so it is never the source of truth
and a crash loses nothing. Candidates are confirmed against the full leaf hash by the caller.

Open addressing over two ``array('q')`` columns: 32 bytes per entry at the 50% load it keeps,
about a third of a ``dict`` of Python ints.
"""

from __future__ import annotations

from array import array

_EMPTY = 0  # slots hold index + 1, so 0 means empty
_MIN_CAPACITY = 1 << 10


class LeafIndex:
    __slots__ = ("_idx", "_keys", "_mask", "_used", "covered")

    def __init__(self, capacity: int = _MIN_CAPACITY) -> None:
        size = _MIN_CAPACITY
        while size < capacity * 2:
            size <<= 1
        self._keys = array("q", bytes(8 * size))
        self._idx = array("q", bytes(8 * size))
        self._mask = size - 1
        self._used = 0
        self.covered = 0  # leaves [0, covered) have been added

    def _grow(self) -> None:
        old_keys, old_idx = self._keys, self._idx
        size = (self._mask + 1) * 2
        self._keys = array("q", bytes(8 * size))
        self._idx = array("q", bytes(8 * size))
        self._mask = size - 1
        self._used = 0
        for key, slot in zip(old_keys, old_idx, strict=True):
            if slot != _EMPTY:
                self._put(key, slot)

    def _put(self, key: int, slot: int) -> None:
        mask, keys, idx = self._mask, self._keys, self._idx
        i = key & mask
        while idx[i] != _EMPTY:
            i = (i + 1) & mask
        keys[i] = key
        idx[i] = slot
        self._used += 1

    def add(self, key: int, index: int) -> None:
        if (self._used + 1) * 2 > self._mask + 1:
            self._grow()
        self._put(key, index + 1)

    def candidates(self, key: int) -> list[int]:
        """Leaf indexes whose hash prefix is ``key`` (usually none, or the one duplicate)."""
        mask, keys, idx = self._mask, self._keys, self._idx
        i = key & mask
        out = []
        while idx[i] != _EMPTY:
            if keys[i] == key:
                out.append(idx[i] - 1)
            i = (i + 1) & mask
        return out
