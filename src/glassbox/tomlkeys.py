"""Line numbers for TOML keys, so an error in a user's TOML file (a recipe, a trust policy)
names the line to fix: ``tomllib`` keeps no positions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence


def key_lines(text: str) -> dict[str, int]:
    """Map dotted key paths (``datasets.0.path``) to the line that defines them.

    ``tomllib`` keeps no positions, so this scans headers and ``key =`` lines. It is only
    used to point error messages at a line, so a multi-line value confusing it costs a less
    precise line number, never a wrong verdict.
    """
    lines: dict[str, int] = {}
    table: list[str] = []
    arrays: dict[str, int] = {}
    in_multiline: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_multiline is not None:
            if in_multiline in line:
                in_multiline = None
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            name = line[2:].split("]]", 1)[0].strip()
            parts = _split_key(name)
            joined = ".".join(parts)
            arrays[joined] = arrays.get(joined, -1) + 1
            table = [*parts, str(arrays[joined])]
            lines.setdefault(joined, number)
            lines[".".join(table)] = number
            continue
        if line.startswith("["):
            name = line[1:].split("]", 1)[0].strip()
            table = _split_key(name)
            lines[".".join(table)] = number
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        full = ".".join([*table, *_split_key(key.strip())])
        lines.setdefault(full, number)
        value = value.strip()
        for quote in ('"""', "'''"):
            if value.startswith(quote) and value.count(quote) == 1:
                in_multiline = quote
    return lines


def _split_key(key: str) -> list[str]:
    parts = []
    for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', key):
        part = part.strip()
        if part[:1] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return parts


def line_for(lines: Mapping[str, int], path: Sequence[str | int]) -> int:
    """The line of the deepest key along ``path`` that ``key_lines`` found (1 if none)."""
    parts = [str(p) for p in path]
    while parts:
        found = lines.get(".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return 1
