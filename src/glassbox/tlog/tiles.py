"""c2sp.org/tlog-tiles: tile paths and tile contents read straight from the stored tree.

Because the store keys interior nodes as ``(level, index)``, a level-L hash tile (the hashes of
the level-8L subtrees) is one range scan, and a log can be mirrored to any static file server
or object store by writing these paths out.
"""

from __future__ import annotations

import re

from glassbox.errors import InputError
from glassbox.tlog.store import Store

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
_ELEMENT = re.compile(r"x\d{3}")


def encode_index(index: int) -> str:
    """``1234067`` -> ``x001/x234/067`` (three-digit groups, all but the last prefixed x)."""
    if index < 0:
        raise ValueError("tile index must be non-negative")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    base = f"tile/{level}/{encode_index(index)}"
    return base if width == TILE_WIDTH else f"{base}.p/{width}"


def parse_tile_path(path: str) -> tuple[int | None, int, int]:
    """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` -> (level or None, N, W)."""
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise InputError(f"not a tile path: {path[:100]!r}")
    level: int | None
    if parts[1] == "entries":
        level = None
    elif parts[1].isdigit() and len(parts[1]) <= 2 and int(parts[1]) < 64:
        level = int(parts[1])
    else:
        raise InputError(f"bad tile level in {path[:100]!r}")
    rest = parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not w.isdigit() or w[0] == "0" or not 1 <= int(w) < TILE_WIDTH:
            raise InputError(f"bad partial tile width in {path[:100]!r}")
        width = int(w)
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or any(not _ELEMENT.fullmatch(p) for p in rest[:-1]):
        raise InputError(f"bad tile index in {path[:100]!r}")
    last = rest[-1]
    if len(last) != 3 or not last.isdigit():
        raise InputError(f"bad tile index in {path[:100]!r}")
    index = int("".join(p.lstrip("x") for p in rest))
    if len(rest) > 1 and rest[0] == "x000":
        raise InputError(f"tile index has a leading zero group in {path[:100]!r}")
    return level, index, width


def read_tile(store: Store, size: int, level: int | None, index: int, width: int) -> bytes:
    """The bytes of a hash tile (``level``) or entry bundle (``None``) for a tree of ``size``."""
    tree_level = 0 if level is None else level * TILE_HEIGHT
    available = size >> tree_level
    start = index * TILE_WIDTH
    if start + width > available:
        raise LookupError(
            f"tile {tile_path(level if level is not None else 'entries', index, width)}"
            f" is beyond the tree of size {size}"
        )
    if level is None:
        out = bytearray()
        for row in store.leaves(start, start + width):
            out += len(row.leaf).to_bytes(2, "big") + row.leaf
        return bytes(out)
    return b"".join(store.node_range(tree_level, start, start + width))
