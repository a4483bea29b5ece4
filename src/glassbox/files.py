"""Reading the small files the tool takes as input (keys, signature bundles, recipes, audit
evidence, dataset proofs).

One place for the bounded read and its error wording, so a missing ``--key`` and a missing
``--signature`` fail the same way (one line naming the file and the problem), and a path that
names ``/dev/zero`` or a huge file by mistake is refused after ``limit + 1`` bytes, never read
to the end.
"""

from __future__ import annotations

from pathlib import Path

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
