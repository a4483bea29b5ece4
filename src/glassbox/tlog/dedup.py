"""The writer's duplicate index: 64-bit leaf-hash prefix -> leaf index, in memory.

Identical entries must get the same index back. A database index on the leaf hash does that,
but every append then writes into random pages of a B-tree that grows with the log: at a
million entries each 4096-entry batch rewrote megabytes of index pages and appends ran at a
tenth of the storage ceiling. This map is derived state instead: rebuilt from the stored
``hkey`` column (one sequential scan) when a writer opens the log, and topped up under the
tree-head lock with whatever other writers appended since, so it is never the source of truth
and a crash loses nothing. Candidates are confirmed against the full leaf hash by the caller,
so a crafted prefix collision costs a lookup, never a wrong answer.

A plain ``dict`` (C speed; an open-addressing table in Python cost more per append than the
SQLite insert). Memory is about 100 bytes per entry: 100 MB per million entries in the writer.
"""

from __future__ import annotations


class LeafIndex:
    __slots__ = ("covered", "map")

    def __init__(self) -> None:
        # key -> index, or a list of indexes for a prefix collision. Public because the
        # sequencer's hot loop claims keys with ``map.setdefault`` (one dict operation).
        self.map: dict[int, int | list[int]] = {}
        self.covered = 0  # leaves [0, covered) have been added

    def add(self, key: int, index: int) -> None:
        old = self.map.setdefault(key, index)
        if old is index:
            return
        if isinstance(old, list):
            old.append(index)
        else:
            self.map[key] = [old, index]

    def candidates(self, key: int) -> list[int] | tuple[()]:
        """Leaf indexes whose hash prefix is ``key`` (usually none, or the one duplicate)."""
        found = self.map.get(key)
        if found is None:
            return ()
        return list(found) if isinstance(found, list) else [found]

    def __len__(self) -> int:
        return sum(len(v) if isinstance(v, list) else 1 for v in self.map.values())
