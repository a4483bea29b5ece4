"""Manifests from digests someone else computed: sign a model without having its bytes.

A hub reports each file's path, size and SHA-256 (for large files, from the LFS pointer), so a
publisher can sign a multi-gigabyte release without downloading it. The manifest built here is
the one ``hash_model`` would build from the files themselves (method ``sha256``, files; the
same ignore paths a directory signature records), so the OMS statement is byte for byte the one
signing the files gives, and the signature verifies on the files later, with Glassbox or with
``model_signing``.

Two input forms (JSON, at most ``MAX_MANIFEST_BYTES``):

* a file list::

      {"model_name": "tiny-bert",
       "files": [{"path": "config.json", "size": 661, "sha256": "8ab7...3617"}, ...],
       "ignore_paths": ["notes"]}            # optional, extra paths the signer left out

  ``model_name`` is the OMS subject name (the model directory's name when signing files);
  a bare list of file objects is accepted too, with the name given separately. A single-file
  model is one entry with path ``"."``.
* the output of ``glassbox digest --json`` (any method: files or shards, SHA-256 or BLAKE3),
  recognised by its ``items`` and ``method`` keys; its root digest must match its items.

Everything is checked before anything is signed, and each problem is one line naming the entry:
names that escape the model or are not normalised, duplicates, a path that is also a directory
of another, a path the signature would leave out anyway (``.git*``, ``model.sig``), digests
that are not 64 hex digits, sizes that are not non-negative integers, unknown keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from glassbox.digest.manifest import (
    DEFAULT_IGNORES,
    DEFAULT_SIGNATURE_NAME,
    HashMethod,
    Manifest,
    ManifestItem,
    check_resource_name,
)
from glassbox.errors import InputError

MAX_MANIFEST_BYTES = 64 << 20
MAX_FILE_SIZE = 1 << 62
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_FILE_KEYS = frozenset({"path", "size", "sha256"})
_LIST_KEYS = frozenset({"model_name", "files", "ignore_paths"})


def read_manifest_file(path: Path, *, model_name: str | None = None) -> Manifest:
    """The manifest described by the JSON file at ``path`` (either form above).

    ``model_name`` overrides the file's ``model_name``; one of the two is required for a file
    list (the ``digest --json`` form always carries one).
    """
    from glassbox.files import read_json_file

    data = read_json_file(path, MAX_MANIFEST_BYTES, "manifest")
    return manifest_from_json(data, str(path), model_name=model_name)


def manifest_from_json(data: Any, where: str, *, model_name: str | None = None) -> Manifest:
    """``read_manifest_file`` for already-parsed JSON; ``where`` names it in errors."""
    if isinstance(data, dict) and "items" in data and "method" in data:
        manifest = _from_digest_output(data, where)
        if model_name is not None:
            manifest = Manifest(model_name, manifest.method, manifest.items, manifest.ignore_paths)
        return manifest
    if isinstance(data, list):
        data = {"files": data}
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object with 'files' (or a list of files)")
    unknown = sorted(set(data) - _LIST_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (expected {sorted(_LIST_KEYS)})")
    name = model_name if model_name is not None else data.get("model_name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: no model name: give 'model_name' in the file or --name")
    files = data.get("files")
    if not isinstance(files, list) or not files:
        raise InputError(f"{where}: 'files' must be a non-empty list of {{path, size, sha256}}")
    extra = data.get("ignore_paths", [])
    if not isinstance(extra, list) or not all(isinstance(p, str) for p in extra):
        raise InputError(f"{where}: 'ignore_paths' must be a list of strings")
    items = [_file_item(entry, index, where) for index, entry in enumerate(files)]
    single = any(item.name == "." for item in items)
    if single and len(items) > 1:
        raise InputError(f"{where}: a single-file model ('.') cannot list other files")
    if single:
        ignores: tuple[str, ...] = tuple(sorted(set(DEFAULT_IGNORES)))
    else:
        for path in extra:
            check_resource_name(path, f"{where}: ignore_paths")
        # What signing the directory records: the defaults, model.sig, and the signer's own.
        ignores = tuple(sorted({*DEFAULT_IGNORES, DEFAULT_SIGNATURE_NAME, *extra}))
    _check_paths([item.path for item in items if item.path != "."], ignores, where)
    return Manifest(name, HashMethod(), tuple(items), ignores)


def _file_item(entry: Any, index: int, where: str) -> ManifestItem:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: file {index} is not an object with path, size and sha256")
    path = entry.get("path")
    label = f"file {index}" if not isinstance(path, str) else f"file {path!r}"
    missing = sorted(_FILE_KEYS - set(entry))
    if missing:
        raise InputError(f"{where}: {label} has no {missing[0]!r}")
    unknown = sorted(set(entry) - _FILE_KEYS)
    if unknown:
        raise InputError(f"{where}: {label} has unknown key {unknown[0]!r}")
    if not isinstance(path, str):
        raise InputError(f"{where}: {label}: path must be a string")
    _check_name(path, where)
    return ManifestItem(
        path, _digest(entry["sha256"], label, where), _size(entry["size"], label, where)
    )


def _check_name(name: str, where: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{where}: file name {name!r} is not valid UTF-8") from None
    check_resource_name(name, where)


def _digest(value: Any, label: str, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InputError(f"{where}: {label}: sha256 must be 64 hex digits, got {value!r:.80}")
    return bytes.fromhex(value)


def _size(value: Any, label: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: {label}: size must be an integer, got {value!r:.40}")
    if value < 0 or value > MAX_FILE_SIZE:
        raise InputError(f"{where}: {label}: size {value} is out of range")
    return value


def _check_paths(paths: list[str], ignores: tuple[str, ...], where: str) -> None:
    """No duplicates, no file that is also a directory, nothing signing would leave out."""
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise InputError(f"{where}: {path!r} is listed twice")
        seen.add(path)
    prefixes: dict[str, str] = {}  # every directory prefix -> a file below it
    for path in seen:
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefixes.setdefault("/".join(parts[:i]), path)
    clash = sorted(seen & prefixes.keys())
    if clash:
        raise InputError(
            f"{where}: {clash[0]!r} is listed as a file and as a directory "
            f"(of {prefixes[clash[0]]!r})"
        )
    ignored = set(ignores)
    for path in sorted(seen):
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in ignored:
                raise InputError(
                    f"{where}: {path!r} lies under ignore path {prefix!r}; a signature of the "
                    "files would leave it out, so it cannot be signed"
                )


def _from_digest_output(data: dict[str, Any], where: str) -> Manifest:
    """``glassbox digest --json`` output, every field checked as a signature's would be."""
    method_name = data.get("method")
    if not isinstance(method_name, str):
        raise InputError(f"{where}: 'method' must be a string")
    parsed = HashMethod.parse(method_name)
    allow_symlinks = data.get("allow_symlinks", False)
    if not isinstance(allow_symlinks, bool):
        raise InputError(f"{where}: 'allow_symlinks' must be true or false")
    method = HashMethod(parsed.algorithm, parsed.shard_size, allow_symlinks)
    name = data.get("model_name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: 'model_name' must be a non-empty string")
    ignores = data.get("ignore_paths", [])
    if not isinstance(ignores, list) or not all(isinstance(p, str) for p in ignores):
        raise InputError(f"{where}: 'ignore_paths' must be a list of strings")
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise InputError(f"{where}: 'items' must be a non-empty list")
    sharded = method.shard_size is not None
    items: list[ManifestItem] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw_items):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InputError(f"{where}: item {index} needs a string 'name'")
        item_name = entry["name"]
        label = f"item {item_name!r}"
        if sharded:
            check_resource_name(item_name, where, sharded=True)
        else:
            _check_name(item_name, where)
        if item_name in seen:
            raise InputError(f"{where}: {item_name!r} is listed twice")
        seen.add(item_name)
        size = _size(entry.get("size"), label, where)
        item = ManifestItem(item_name, _digest(entry.get("digest"), label, where), size)
        if sharded:
            _, start, end = item.sort_key()
            if end - start != size or size <= 0 or size > (method.shard_size or 0):
                raise InputError(f"{where}: shard {item_name!r} does not fit its size")
        items.append(item)
    if any(i.path == "." for i in items) and any(i.path != "." for i in items):
        raise InputError(f"{where}: a single-file model ('.') cannot list other files")
    _check_paths(sorted({i.path for i in items} - {"."}), tuple(ignores), where)
    manifest = Manifest(name, method, tuple(items), tuple(sorted(set(ignores))))
    root = data.get("root_digest")
    want = root.get("sha256") if isinstance(root, dict) else None
    if not isinstance(want, str) or want.lower() != manifest.root_digest.hex():
        raise InputError(f"{where}: root_digest does not match the items (or is missing)")
    return manifest
