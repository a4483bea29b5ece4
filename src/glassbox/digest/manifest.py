"""The manifest of a model: every file (or file shard) with its digest, ordered as OMS orders it.

This is the contract between hashing (``glassbox.digest``) and signing (``glassbox.sign``): a
signature's in-toto predicate is a manifest's ``resources``, and its subject digest is
``root_digest``. Both are computed exactly as the OpenSSF ``model_signing`` package does, so the
same bytes verify with either tool:

* resources are sorted by path *components* (``PurePosixPath`` ordering: ``a/b`` sorts before
  ``a.b``, unlike a plain string sort), and shards by ``(path, start, end)``;
* the root digest is SHA-256 over the concatenated raw item digests in that order, whatever the
  per-item algorithm.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import PureWindowsPath
from typing import Any, Literal

from glassbox.errors import InputError

Algorithm = Literal["sha256", "blake3"]
ALGORITHMS: tuple[Algorithm, ...] = ("sha256", "blake3")

# Files that are never part of a model's content. Recorded in every manifest (OMS
# ``ignore_paths``) so a verifier knows exactly what was left out and why.
DEFAULT_IGNORES: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
DEFAULT_SIGNATURE_NAME = "model.sig"


@dataclass(frozen=True)
class HashMethod:
    """How a manifest was computed; recorded in the signature so verify can redo it.

    ``shard_size=None`` is OMS ``method: files`` (one digest per file); an integer is
    ``method: shards`` (one digest per ``shard_size`` bytes of each file), which lets one huge
    file be hashed on every core.
    """

    algorithm: Algorithm = "sha256"
    shard_size: int | None = None
    allow_symlinks: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise InputError(f"unknown hash algorithm {self.algorithm!r} (use sha256 or blake3)")
        if self.shard_size is not None and self.shard_size <= 0:
            raise InputError(f"shard size must be a positive integer, got {self.shard_size}")

    @property
    def name(self) -> str:
        """Human/CLI name: ``sha256``, ``blake3``, ``sha256-sharded-1073741824``."""
        if self.shard_size is None:
            return self.algorithm
        return f"{self.algorithm}-sharded-{self.shard_size}"

    @classmethod
    def parse(cls, name: str) -> HashMethod:
        """Inverse of ``name``; raises ``InputError`` on anything else."""
        algorithm, sep, rest = name.partition("-sharded-")
        if algorithm not in ALGORITHMS:
            raise InputError(
                f"unknown hash method {name!r}: use sha256, blake3, or ALGO-sharded-BYTES"
            )
        if not sep:
            return cls(algorithm)
        if not rest.isdigit():
            raise InputError(f"hash method {name!r}: shard size must be an integer byte count")
        return cls(algorithm, int(rest))


@dataclass(frozen=True)
class ManifestItem:
    """One resource: a file (``name`` = relative POSIX path) or a shard (``path:start:end``)."""

    name: str
    digest: bytes
    size: int

    @property
    def path(self) -> str:
        """The file this item belongs to (the name without a shard suffix)."""
        return _split_name(self.name)[0]

    def sort_key(self) -> tuple[tuple[str, ...], int, int]:
        path, start, end = _split_name(self.name)
        # Names are normalised relative POSIX paths (hash_model makes them so, verify refuses
        # others), for which split("/") equals PurePosixPath.parts at a fifth of the cost.
        return (tuple(path.split("/")) if path != "." else (), start, end)


_SHARD_NAME = re.compile(r"(?P<path>.*):(?P<start>[0-9]+):(?P<end>[0-9]+)", re.DOTALL)


def _split_name(name: str) -> tuple[str, int, int]:
    # ASCII digits only: str.isdigit() accepts '²', which int() then rejects.
    match = _SHARD_NAME.fullmatch(name)
    if match:
        return match["path"], int(match["start"]), int(match["end"])
    return name, 0, 0


def check_resource_name(name: str, where: str, *, sharded: bool = False) -> None:
    """Refuse names that could point outside the model (``../x``, ``/etc/x``) or are not
    names ``model_signing`` could have produced (``a//b``, ``./a``, NUL); for a sharded
    manifest, names must be ``PATH:START:END``. Shared by every reader of manifests that come
    from elsewhere: signatures (``glassbox.sign``) and files of known digests (``known``)."""
    path = name
    if sharded:
        match = _SHARD_NAME.fullmatch(name)
        if match is None:
            raise InputError(f"{where}: shard resource {name!r} is not 'PATH:START:END'")
        path = match["path"]
    if path == ".":
        return
    if not path or "\x00" in path:
        raise InputError(f"{where}: resource name {name!r} is empty or contains NUL")
    # On POSIX a leading "/" is exactly what makes a path absolute; a Path object per resource
    # (once for every file on every verify) is only needed for Windows drive paths.
    if path.startswith("/") or (os.name == "nt" and PureWindowsPath(path).is_absolute()):
        raise InputError(f"{where}: resource {name!r} is an absolute path; refusing it")
    components = path.split("/")
    if ".." in components:
        raise InputError(f"{where}: resource {name!r} escapes the model directory; refusing it")
    if any(c in ("", ".") for c in components):
        raise InputError(f"{where}: resource name {name!r} is not a normalized relative path")


@dataclass(frozen=True)
class ManifestDiff:
    """What changed between an expected manifest and the files on disk, by file path."""

    modified: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.modified or self.added or self.removed)

    def describe(self) -> str:
        parts = []
        for label, names in (
            ("modified", self.modified),
            ("added", self.added),
            ("removed", self.removed),
        ):
            if names:
                parts.append(f"{label}: {', '.join(names)}")
        return "; ".join(parts) if parts else "no differences"


@dataclass(frozen=True)
class Manifest:
    """A model's content, item by item, in OMS order. Build it with ``hash_model``."""

    model_name: str
    method: HashMethod
    items: tuple[ManifestItem, ...]
    ignore_paths: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.items, key=ManifestItem.sort_key))
        object.__setattr__(self, "items", ordered)
        names = [item.name for item in ordered]
        if len(set(names)) != len(names):
            raise InputError("manifest lists the same resource twice")

    @property
    def root_digest(self) -> bytes:
        """OMS subject digest: SHA-256 over the raw item digests in manifest order."""
        hasher = hashlib.sha256()
        for item in self.items:
            hasher.update(item.digest)
        return hasher.digest()

    @property
    def total_size(self) -> int:
        return sum(item.size for item in self.items)

    def file_digests(self) -> dict[str, tuple[bytes, ...]]:
        """Digests grouped by file path (one for ``files``, one per shard for ``shards``)."""
        grouped: dict[str, list[bytes]] = {}
        for item in self.items:
            grouped.setdefault(item.path, []).append(item.digest)
        return {path: tuple(digests) for path, digests in grouped.items()}

    def diff(self, actual: Manifest) -> ManifestDiff:
        """Files that differ from ``self`` (expected) in ``actual`` (found on disk)."""
        want, got = self.file_digests(), actual.file_digests()
        return ManifestDiff(
            modified=tuple(sorted(p for p in want.keys() & got.keys() if want[p] != got[p])),
            added=tuple(sorted(got.keys() - want.keys())),
            removed=tuple(sorted(want.keys() - got.keys())),
        )

    def serialization(self) -> dict[str, Any]:
        """The OMS predicate ``serialization`` object for this manifest."""
        params: dict[str, Any] = {
            "method": "files" if self.method.shard_size is None else "shards",
            "hash_type": self.method.algorithm,
            "allow_symlinks": self.method.allow_symlinks,
        }
        if self.method.shard_size is not None:
            params["shard_size"] = self.method.shard_size
        if self.ignore_paths:
            params["ignore_paths"] = list(self.ignore_paths)
        return params

    def resources(self) -> list[dict[str, str]]:
        """The OMS predicate ``resources`` list for this manifest.

        A shard's ``algorithm`` is the method name (``sha256-sharded-N``), exactly as
        ``model_signing`` writes it and compares it on verify.
        """
        return [
            {"name": i.name, "algorithm": self.method.name, "digest": i.digest.hex()}
            for i in self.items
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``glassbox digest --json`` and for storing beside provenance."""
        return {
            "model_name": self.model_name,
            "method": self.method.name,
            "allow_symlinks": self.method.allow_symlinks,
            "ignore_paths": list(self.ignore_paths),
            "root_digest": {"sha256": self.root_digest.hex()},
            "total_size": self.total_size,
            "items": [
                {"name": i.name, "digest": i.digest.hex(), "size": i.size} for i in self.items
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            method = HashMethod.parse(data["method"])
            method = HashMethod(
                method.algorithm, method.shard_size, bool(data.get("allow_symlinks", False))
            )
            items = tuple(
                ManifestItem(str(i["name"]), bytes.fromhex(i["digest"]), int(i["size"]))
                for i in data["items"]
            )
            manifest = cls(
                str(data["model_name"]), method, items, tuple(data.get("ignore_paths", ()))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed manifest: {exc}") from exc
        want = data.get("root_digest", {}).get("sha256")
        if want is not None and want != manifest.root_digest.hex():
            raise InputError("malformed manifest: root digest does not match its items")
        return manifest
