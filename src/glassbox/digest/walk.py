"""Which files make up a model, named as OMS names them.

This reproduces what ``model_signing`` 1.1 (on Python 3.11) puts in a manifest, so the root
digests agree, and is stricter where it would silently trust something outside the model:

* a directory model lists every regular file below it (hidden files included), named by its
  POSIX path relative to the model; a single-file model has one resource named ``.``;
* an ignore path drops that path and everything below it (matched by whole path components);
  ignored directories are never entered;
* a symlink is an error unless ``allow_symlinks``; with it, a symlink to a file is hashed under
  the link's name and a symlink to a directory is skipped (not followed), as ``model_signing``
  does. A symlink whose target leaves the model directory is always refused, whatever the flag:
  a model's digest must describe the model, not whatever the link points at today;
* sockets, FIFOs and devices are refused (opening a FIFO would hang).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from glassbox.digest.manifest import DEFAULT_IGNORES
from glassbox.errors import InputError


@dataclass(frozen=True)
class ModelFile:
    """One file to hash: its manifest name, where to read it, and the ``stat`` it was seen with."""

    name: str
    path: str
    stat: os.stat_result

    @property
    def size(self) -> int:
        return self.stat.st_size


def model_name_of(path: Path) -> str:
    """OMS ``model_name``: the last path component (resolved when it is ``..`` or empty)."""
    name = path.name
    if not name or name == "..":
        name = path.resolve().name
    return name


def normalize_ignores(
    root: Path, ignore_paths: Iterable[str | os.PathLike[str]]
) -> tuple[str, ...]:
    """Ignore paths relative to the model, POSIX-style, sorted, with the defaults.

    Absolute paths (e.g. a signature file inside the model) are made relative; paths that lie
    outside the model are dropped, as ``model_signing`` drops them, because they cannot match.
    """
    found: set[str] = set(DEFAULT_IGNORES)
    for raw in ignore_paths:
        p = Path(raw)
        # As in OMS, paths resolve against the model path itself, so for a single-file model a
        # sibling such as ``FILE.sig`` becomes ``../FILE.sig`` and is dropped.
        rel = os.path.relpath(p.absolute(), root.absolute()) if p.is_absolute() else str(p)
        rel = posixpath.normpath(rel.replace(os.sep, "/"))
        if rel == ".." or rel.startswith(("../", "/")):
            continue
        found.add(rel)
    return tuple(sorted(found))


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _inside(target: str, root_real: str) -> bool:
    return target == root_real or target.startswith(root_real.rstrip(os.sep) + os.sep)


def list_model_files(
    root: Path, ignores: tuple[str, ...], *, allow_symlinks: bool = False
) -> list[ModelFile]:
    """Every file of the model at ``root`` (a directory or a single file), in walk order."""
    try:
        st = root.stat()
    except FileNotFoundError:
        raise InputError(f"model path {root} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {root}: {exc.strerror or exc}") from exc
    if stat.S_ISREG(st.st_mode):
        return [ModelFile(".", str(root), st)]
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{root} is neither a regular file nor a directory")
    root_real = os.path.realpath(root)
    if "." in ignores:
        return []
    # An ignored directory is never entered, so matching whole relative paths is enough to
    # drop it and everything below it.
    ignored = frozenset(ignores)
    found: list[ModelFile] = []
    pending: list[tuple[str, str]] = [(str(root), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            raise InputError(f"cannot read directory {directory}: {exc.strerror or exc}") from exc
        for entry in entries:
            rel = prefix + entry.name
            if rel in ignored:
                continue
            path = entry.path
            if not entry.name.isprintable() and not _utf8(entry.name):
                # A name that is not UTF-8 cannot be written into a signature; say so here
                # rather than fail later while serialising.
                raise InputError(f"{path!r}: file name is not valid UTF-8")
            try:
                # Regular files first: they are nearly every entry, and without following
                # links neither this test nor is_dir can match a symlink.
                if entry.is_file(follow_symlinks=False):
                    found.append(ModelFile(rel, path, entry.stat(follow_symlinks=False)))
                elif entry.is_symlink():
                    _add_symlink(found, entry, rel, root_real, allow_symlinks)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((path, rel + "/"))
                else:
                    raise InputError(
                        f"{path} is not a regular file or directory (socket, FIFO or device)"
                    )
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return found


def _add_symlink(
    found: list[ModelFile], entry: os.DirEntry[str], rel: str, root_real: str, allow_symlinks: bool
) -> None:
    path = entry.path
    target = os.path.realpath(path)
    if not _inside(target, root_real):
        raise InputError(f"symlink {path} points outside the model directory (to {target})")
    if not allow_symlinks:
        raise InputError(
            f"{path} is a symlink; symlinks are refused unless allowed (--allow-symlinks)"
        )
    try:
        st = entry.stat(follow_symlinks=True)
    except FileNotFoundError:
        raise InputError(f"symlink {path} is broken (its target {target} does not exist)") from None
    if stat.S_ISREG(st.st_mode):
        found.append(ModelFile(rel, path, st))
    elif not stat.S_ISDIR(st.st_mode):
        raise InputError(f"symlink {path} points at something that is not a regular file")
    # A symlink to a directory inside the model is skipped, exactly as model_signing skips it.
