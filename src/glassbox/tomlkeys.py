"""Reading a user's TOML file (a recipe, a pipeline, a trust policy, a probe suite): a
bounded read, one error type per kind of file, and line numbers for keys, so an error names
the line to fix (``tomllib`` keeps no positions); and ``TomlValidator``, the base every one of
those files' validators builds on.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeGuard

from glassbox.errors import GlassboxError, InputError
from glassbox.files import read_small_file


def read_toml(
    source: Path, limit: int, what: str, error: type[InputError]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Read ``source`` (at most ``limit`` bytes) as UTF-8 TOML: its data and ``key_lines``.

    Every failure is one ``error`` (the caller's own ``InputError`` subclass) naming the file.
    """
    try:
        raw = read_small_file(source, limit, what)
    except GlassboxError as exc:
        raise error(str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{source}: {what} is not UTF-8 (byte {exc.start})") from None
    return parse_toml(text, source, what, error)


def parse_toml(
    text: str, source: Path, what: str, error: type[InputError]
) -> tuple[dict[str, Any], dict[str, int]]:
    """``text`` as TOML: its data and ``key_lines``, or one ``error`` naming ``source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{source}: {what} nests arrays or tables too deeply") from None
    return data, key_lines(text)


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


def is_integer(value: object) -> TypeGuard[int]:
    """A TOML integer (``true`` is a ``bool``, which Python also counts as an ``int``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_string_list(value: object) -> TypeGuard[list[str]]:
    """A TOML array of non-empty strings."""
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


class TomlValidator:
    """What the validators of recipe, pipeline, trust policy and probe suite files share: the
    file, its data and key lines; errors of the file kind's own type that name the file and
    the line (``fail``); and unknown keys refused with the closest allowed key as a hint
    (``unknown``). Each kind words its messages itself (``unknown_message``, ``name_key``),
    so a user sees the same text as before the validators shared this base."""

    #: The file kind's error (an ``InputError``: exit code 2).
    error: ClassVar[type[InputError]] = InputError
    #: Start each message with the dotted key it is about (``log.keys: ...``).
    name_key: ClassVar[bool] = False

    def __init__(self, source: Path, data: dict[str, Any], lines: dict[str, int]) -> None:
        self.source = source
        self.data = data
        self.lines = lines

    def fail(self, path: Sequence[str | int], message: str) -> InputError:
        """The error to raise about the key at ``path``: ``FILE:LINE: message``."""
        where = f"{self.source}:{line_for(self.lines, path)}"
        key = ".".join(str(p) for p in path) if self.name_key else ""
        return self.error(f"{where}: {key}: {message}" if key else f"{where}: {message}")

    def unknown(
        self, table: Mapping[str, Any], allowed: set[str], path: Sequence[str | int]
    ) -> None:
        """Refuse the first key of ``table`` (at ``path``) that is not ``allowed``."""
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                message = self.unknown_message(key, close[0] if close else None, allowed, path)
                raise self.fail([*path, key], message)

    def unknown_message(
        self, key: str, close: str | None, allowed: set[str], path: Sequence[str | int]
    ) -> str:
        hint = f"did you mean '{close}'?" if close else f"allowed: {', '.join(sorted(allowed))}"
        return f"unknown key '{key}' ({hint})"
