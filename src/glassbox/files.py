"""Reading the small files the tool takes as input (keys, signature bundles, recipes, audit
evidence, dataset and log proofs), and the JSON in them.

One place for the bounded read, the JSON decode and their error wording, so a missing ``--key``
and a missing ``--signature`` fail the same way (one line naming the file and the problem), and
a path that names ``/dev/zero`` or a huge file by mistake is refused after ``limit + 1`` bytes,
never read to the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from glassbox.errors import InputError


def read_small_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, refusing files over ``limit`` bytes (they cannot be a ``what``).

    Reads at most ``limit + 1`` bytes, so a huge file or a device passed by mistake costs
    nothing before it is refused.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a {what} file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"{path}: too large to be a {what} file (over {_size(limit)})")
    return data


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"


def parse_json(data: bytes, where: str) -> Any:
    """``data`` decoded as UTF-8 JSON, or one ``InputError`` naming ``where`` and saying why
    (hostile nesting included: it is a ``RecursionError`` inside ``json``)."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"{where}: not valid JSON ({exc})") from None


def read_json_file(path: Path, limit: int, what: str) -> Any:
    """``read_small_file`` then ``parse_json``: a JSON input file, bounded and checked."""
    return parse_json(read_small_file(path, limit, what), str(path))


def check_output_file(path: Path, what: str) -> None:
    """Refuse an output path that cannot be written, before any work is done: its directory
    must already exist (a typo must not silently create directories) and be a directory, and
    the path itself must not be a directory. The error names the part of the path in the way
    (``/etc/passwd`` in ``/etc/passwd/x.html``), not the OS's "File exists"."""
    parent = path.absolute().parent
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name for the {what}")
    if parent.is_dir():
        return
    existing = parent
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputError(f"{path}: {existing} is not a directory")
    raise InputError(f"{path}: directory {parent} does not exist")
