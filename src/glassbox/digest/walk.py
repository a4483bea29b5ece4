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

Hugging Face cache snapshots (``<cache>/models--org--name/snapshots/REV/``) store every file as
a symlink into the repository's ``blobs/``: there the links are storage, not content, so they
are followed under a stricter rule of their own (see ``storage_link_stat``), whatever
``allow_symlinks`` says, and the manifest names files relative to the snapshot exactly as a
plain copy of the same files would be named. A signature made on either verifies on the other.
The boundary such links may not leave (the cached repository, ``link_root``) is detected from
the path's shape or passed in by the caller (``glassbox.trust`` resolves ``hf:`` names).
"""

from __future__ import annotations

import errno
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


# Top-level folders of a Hugging Face hub cache, one per cached repository (``REPO_TYPE``s).
HF_REPO_PREFIXES = ("models--", "datasets--", "spaces--")
# Marker of the cache-wide shared blob store (huggingface_hub >= 1.x with Xet deduplication):
# ``<cache>/blobs/<2 hex>/<hash>`` files, which repository blobs may link to.
HF_SHARED_BLOBS_MARKER = ".huggingface-shared-blobs"


def hf_snapshot_repo(path: str | os.PathLike[str]) -> Path | None:
    """The cached repository directory when ``path`` is (or lies inside) a Hugging Face cache
    snapshot, else None.

    Judged by shape on the real path: ``<repo>/snapshots/<rev>[/...]`` where ``<repo>`` is named
    ``models--*`` (or ``datasets--*``, ``spaces--*``) and has a ``blobs`` directory beside
    ``snapshots``. Only the shape is trusted: it grants nothing but following links that stay
    inside that repository, whose contents are hashed like any file.
    """
    real = Path(os.path.realpath(path))
    for snapshot in (real, *real.parents):
        snapshots = snapshot.parent
        repo = snapshots.parent
        if snapshot == snapshots or snapshots == repo:
            break  # reached the file-system root
        if (
            snapshots.name == "snapshots"
            and repo.name.startswith(HF_REPO_PREFIXES)
            and (repo / "blobs").is_dir()
        ):
            return repo
    return None


def _is_shared_store(directory: Path) -> bool:
    """The cache-wide blob store, recognised as ``huggingface_hub`` recognises it: a real
    directory holding the marker file (a regular file reading ``1``)."""
    marker = directory / HF_SHARED_BLOBS_MARKER
    try:
        if not stat.S_ISDIR(directory.lstat().st_mode):
            return False
        if not stat.S_ISREG(marker.lstat().st_mode):
            return False
        with marker.open("rb") as handle:
            return handle.read(16) == b"1\n"
    except OSError:
        return False


def _hop(link: Path) -> Path:
    """Where ``link`` points, with every directory on the way resolved but the last component
    kept, so the caller can ``lstat`` it and see whether it is itself a link."""
    # No normpath: ``dir/../x`` must be resolved by the file system when ``dir`` is a link.
    target = link.parent / link.readlink()
    if target.name in ("", ".."):
        return Path(os.path.realpath(target))
    return Path(os.path.realpath(target.parent)) / target.name


def storage_link_stat(
    path: str | os.PathLike[str], link_root: str | os.PathLike[str]
) -> os.stat_result:
    """The ``stat`` of the file a storage link (a Hugging Face snapshot entry) stands for, or
    one ``InputError`` saying why the link is refused.

    ``link_root`` is the real path of the cached repository. The rule follows the real
    library's layout and nothing more: the link points at a regular file inside ``link_root``
    (``../../blobs/<etag>``), or at a repository blob that is itself a link to a regular file
    in the cache's shared blob store (``<cache>/blobs/``, recognised by its marker). Any other
    chain, a loop, a dangling link, a link to a directory, FIFO or device, and a link leaving
    the repository (into another cached repository too) are refused.
    """
    link = Path(path)
    root = Path(link_root)
    try:
        link.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"symlink {link} is a symlink loop") from None
        if exc.errno != errno.ENOENT:
            raise InputError(f"cannot read {link}: {exc.strerror or exc}") from None
        # Dangling: said after the containment check, which names where it points.
    target = _hop(link)
    if not _inside(str(target), str(root)):
        raise InputError(
            f"symlink {link} points outside the cached repository {root} (to {target})"
        )
    st = _lstat_target(link, target)
    if stat.S_ISLNK(st.st_mode):
        store = root.parent / "blobs"
        if not (target.parent == root / "blobs" and _is_shared_store(store)):
            raise InputError(
                f"symlink {link} points at another symlink ({target}); only the cache's own "
                "layout (snapshot -> blobs -> shared blob store) is followed"
            )
        final = _hop(target)
        if not _inside(str(final), os.path.realpath(store)):
            raise InputError(
                f"symlink {link}: its blob {target} points outside the shared blob store "
                f"(to {final})"
            )
        st = _lstat_target(link, final)
        if stat.S_ISLNK(st.st_mode):
            raise InputError(f"symlink {link}: shared blob {final} is itself a symlink")
        target = final
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"symlink {link} points at a directory ({target}), not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"symlink {link} points at something that is not a regular file "
            f"(socket, FIFO or device: {target})"
        )
    return st


def _lstat_target(link: Path, target: Path) -> os.stat_result:
    try:
        return target.lstat()
    except FileNotFoundError:
        raise InputError(f"symlink {link} is broken (its target {target} does not exist)") from None
    except OSError as exc:
        raise InputError(f"cannot read {target} (via {link}): {exc.strerror or exc}") from None


def list_model_files(
    root: Path,
    ignores: tuple[str, ...],
    *,
    allow_symlinks: bool = False,
    link_root: str | os.PathLike[str] | None = None,
) -> list[ModelFile]:
    """Every file of the model at ``root`` (a directory or a single file), in walk order.

    ``link_root`` names the directory that storage links may reach (a Hugging Face cached
    repository); ``None`` detects a cache snapshot by its shape (``hf_snapshot_repo``). Pass a
    directory to force the storage-link rule, e.g. for a snapshot found through ``hf:`` names.
    """
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
    if link_root is None:
        repo = hf_snapshot_repo(root)
        storage_root = None if repo is None else str(repo)
    else:
        storage_root = os.path.realpath(link_root)
        if not _inside(root_real, storage_root):
            raise InputError(f"model {root} is not inside {link_root}, the directory it links into")
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
                elif entry.is_symlink() and storage_root is not None:
                    found.append(ModelFile(rel, path, storage_link_stat(path, storage_root)))
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
