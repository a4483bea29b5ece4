"""The verified store: a private, content-addressed directory whose files a loader maps lazily.

A loader must load the bytes it verified. Handing ``from_pretrained`` the user's own directory
would not do: other tools (``huggingface_hub`` downloads, the user's scripts) may rewrite it
between the check and the read. Reading every byte into private memory
(``glassbox.trust.memory``) closes that gap, but costs a full read on every load, while a plain
``from_pretrained`` maps the file and reads nothing. The store closes the gap and still maps
lazily: Glassbox copies each signed file, once, into a directory only Glassbox writes, hashes
exactly the bytes it wrote there, and from then on loads *that* file.

Layout (``root`` is 0700 and owned by this user)::

    root/trees/<key>/<name as in the manifest>    files 0444, written only by Glassbox
    root/tmp/                                     nothing is left here

``<key>`` is SHA-256 over the hash method and the signed manifest's root digest: one tree per
signed release, named by what was signed. A file enters a tree only after it was copied from
one descriptor of the user's file (``FICLONE`` reflink where the file system shares blocks,
else a streamed copy that hashes the very buffer it writes), hashed from the store file's own
bytes, compared with the signature, made read-only, and renamed into place; its identity
(device, inode, size, mtime, ctime, taken after the ``chmod`` and the rename) is then recorded
in the digest cache with its digests.

A warm load re-checks, per file: the store file is a regular file owned by this user, with no
write bit, reached through no symbolic link, and its identity is the one recorded with the
signed digests; the user's file still has the identity its own cache record vouches for (so a
changed model is still refused by name). Then the loader maps the store file: no byte is read.

What the store protects against, precisely:

* a rewrite of the user's directory after verification (a download replacing a file, an
  in-place write, a rename over it): the loader never reads that directory's weights;
* an accidental change to a store file (a ``chmod``, ``touch``, an editor): its identity moves,
  so it is re-verified from the user's file (copied and hashed again), never loaded as is;
* a symbolic link planted in the store, or a store directory that other users can write to:
  refused with a ``store`` reason (or an ``InputError`` for the root itself), never followed;
* other users: the root is 0700.

What it cannot protect against: a process running with the user's own rights can rewrite a
store file and the digest cache alike (it can also patch Glassbox or the Python it runs in).
Only a kernel-held guarantee would stop that: fs-verity (the kernel checks every page against a
Merkle tree that a ``chmod`` cannot switch off) would, where the file system offers it; ext4
without the ``verity`` feature (the machines this was measured on) does not. ``use_cache=False``
trusts no recorded identity: every file is copied and hashed again.

The price is one copy of each loaded model on the store's disk (none with a reflink on btrfs
or XFS). The directory is a cache: deleting it only makes the next load cold.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from glassbox.digest.cache import DigestCache, FileKey
from glassbox.errors import InputError
from glassbox.trust.copy import open_listed
from glassbox.trust.errors import Reason
from glassbox.trust.memory import ShardHasher

if TYPE_CHECKING:
    from glassbox.digest import HashMethod
    from glassbox.digest.walk import ModelFile

STORE_ENV = "GLASSBOX_VERIFIED_STORE"
OFF = frozenset({"off", "0", "no", "none", "false"})
CHUNK = 4 << 20
FICLONE = 0x40049409  # _IOW(0x94, 9, int): share the source's blocks (btrfs, XFS)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_PREADV = hasattr(os, "preadv")


def store_root(store: str | os.PathLike[str] | bool | None) -> Path | None:
    """Where the store is: ``store`` (a path), else ``$GLASSBOX_VERIFIED_STORE``, else
    ``verified-store`` in Glassbox's cache directory; ``None`` when turned off (``store=False``
    or the variable set to ``off``)."""
    if store is False:
        return None
    if store is not None and store is not True:
        return Path(store)
    env = os.environ.get(STORE_ENV)
    if env is not None and env.strip():
        return None if env.strip().lower() in OFF else Path(env)
    from glassbox import paths

    return paths.cache_dir() / "verified-store"


def open_root(root: Path) -> Path:
    """Create the store root (0700) or check an existing one: a real directory, ours, private.

    An ``InputError`` otherwise: a store other users can write into, or one reached through a
    symbolic link, would let someone else choose what is loaded.
    """
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(root)
    except OSError as exc:
        raise InputError(f"cannot use the verified store {root}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise InputError(f"verified store {root} is not a directory (a symbolic link?)")
    if st.st_uid != os.getuid():
        raise InputError(f"verified store {root} belongs to another user")
    if st.st_mode & 0o077:
        raise InputError(
            f"verified store {root} is open to other users (mode {stat.S_IMODE(st.st_mode):o}); "
            "chmod 700 it"
        )
    return root


def tree_key(method: HashMethod, root_digest: bytes) -> str:
    """The tree of one signed release: named by the hash method and the signed root digest."""
    return hashlib.sha256(method.name.encode() + b"\0" + root_digest).hexdigest()


@dataclass
class StoreTree:
    """The store files of one load, named as in the manifest; ``reasons`` when any failed."""

    directory: Path
    files: dict[str, Path] = field(default_factory=dict)
    hashed_bytes: int = 0
    cached_files: int = 0
    reasons: list[Reason] = field(default_factory=list)
    #: Seconds spent copying and hashing into the store, and hashing the user's files.
    copy_s: float = 0.0


def _entry(tree: Path, name: str) -> tuple[FileKey | None, str | None]:
    """The identity of the store file for ``name``, checked on the way: every component under
    the tree a real directory (no symbolic link), the file regular, ours, not writable.

    ``(None, None)`` when it is missing, ``(None, problem)`` when it must not be used, ``(key,
    None)`` when it may be, provided the digest cache vouches for ``key``.
    """
    parts = name.split("/")
    path = tree.parent.parent  # the root, checked by open_root
    parts = [tree.parent.name, tree.name, *parts]
    for i, part in enumerate(parts):
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"cannot read store entry {path}: {exc.strerror or exc}"
        if stat.S_ISLNK(st.st_mode):
            return None, f"store entry {path} is a symbolic link (not written by Glassbox)"
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(st.st_mode):
            return None, f"store entry {path} is not a directory"
    if not stat.S_ISREG(st.st_mode):
        return None, f"store entry {path} is not a regular file"
    if st.st_uid != os.getuid() or st.st_mode & 0o222:
        return None, None  # not as Glassbox left it: re-verified (copied again)
    return FileKey.of(st), None


def materialize(
    root: Path,
    files: list[ModelFile],
    want: dict[str, tuple[bytes, ...]],
    method: HashMethod,
    root_digest: bytes,
    *,
    use_cache: bool = True,
    on_file: Callable[[str, Path, bool], None] | None = None,
) -> StoreTree:
    """Make sure the store holds each of ``files`` as signed (``want``), and say where.

    Warm, nothing is read: identities are checked against the digest cache. A store file that
    is missing, or whose identity the cache does not vouch for (or ``use_cache=False``), is
    copied again from the user's file and hashed; a user's file the cache does not vouch for is
    hashed (read, not copied) when its store file is good. Mismatches are ``files`` reasons,
    tampering in the store ``store`` reasons; the caller refuses the load on any.

    ``on_file(name, path, cached)`` is called for each file once it is verified in the store
    (``cached``: vouched for without a read), smallest
    first (so a caller can scan the small files while the large ones are still hashed).
    """
    tree = open_root(root) / "trees" / tree_key(method, root_digest)
    out = StoreTree(tree)
    names = {f.name: (Path(f.path).name if f.name == "." else f.name) for f in files}
    entries: dict[str, FileKey] = {}
    for f in files:
        key, problem = _entry(tree, names[f.name])
        if problem is not None:
            out.reasons.append(Reason("store", problem))
        elif key is not None:
            entries[f.name] = key
    if out.reasons:
        return out
    sources = {f.name: FileKey.of(f.stat) for f in files}
    cache = DigestCache(shared=True)
    try:
        cached = (
            cache.lookup([*sources.values(), *entries.values()], method.name) if use_cache else {}
        )
        started = time.time_ns()
        fresh: list[tuple[FileKey, tuple[bytes, ...]]] = []
        for f in sorted(files, key=lambda f: (f.stat.st_size, f.name)):
            dest = tree / names[f.name]
            source_ok = cached.get(sources[f.name]) == want[f.name]
            entry = entries.get(f.name)
            failed = len(out.reasons)
            cached_before = out.cached_files
            clock = time.perf_counter()
            if entry is not None and cached.get(entry) == want[f.name]:
                if source_ok:
                    out.cached_files += 1
                else:
                    # The store is good; is the user's file still what was signed?
                    digests, key = _hash_source(f, method)
                    out.hashed_bytes += f.stat.st_size
                    if digests is None:
                        out.reasons.append(
                            Reason("files", f"{f.name} was written to while being read; try again")
                        )
                    elif digests != want[f.name]:
                        out.reasons.append(
                            Reason("files", f"{f.name} differs from what the publisher signed")
                        )
                    elif key.settled(started):
                        fresh.append((key, digests))
            else:
                written = None
                if entry is not None:
                    # Present but not vouched for (cold, or its identity moved): if its bytes
                    # are the user's file's and hash as signed, it stays; reading both is
                    # cheaper than writing a new copy.
                    written = _reverify_entry(f, dest, entry, method, want[f.name], out, started)
                if written is None and len(out.reasons) == failed:
                    written = _write_entry(f, dest, method, want[f.name], out)
                if written is not None:
                    (store_key, digests), source_key = written
                    if store_key is not None:
                        cache.store([(store_key, digests)], method.name)
                    if source_key.settled(started):
                        fresh.append((source_key, digests))
            out.copy_s += time.perf_counter() - clock
            if len(out.reasons) == failed:
                out.files[f.name] = dest
                if on_file is not None and not out.reasons:
                    on_file(f.name, dest, out.cached_files > cached_before)
        cache.store(fresh, method.name)
    finally:
        cache.close()
    return out


def _hash_source(f: ModelFile, method: HashMethod) -> tuple[tuple[bytes, ...] | None, FileKey]:
    """The digests of the user's file (None if it changed while read) and its identity."""
    fd = open_listed(f)
    try:
        before = os.fstat(fd)
        digests = _hash_fd(fd, before.st_size, method)
        after = os.fstat(fd)
    except OSError as exc:
        raise InputError(f"cannot read {f.path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    key = FileKey.of(before)
    return (digests if FileKey.of(after) == key else None), key


def _hash_fd(fd: int, size: int, method: HashMethod) -> tuple[bytes, ...]:
    """The digests of ``size`` bytes read from ``fd`` (from its start), pipelined."""
    return _pipelined(size, method, lambda view, offset: _pread_all(fd, view, offset))


def _write_entry(
    f: ModelFile,
    dest: Path,
    method: HashMethod,
    want: tuple[bytes, ...],
    out: StoreTree,
) -> tuple[tuple[FileKey, tuple[bytes, ...]], FileKey] | None:
    """Copy ``f`` into the store as ``dest``: ((store identity, digests), source identity), or
    None with a reason in ``out``. The digests are of the store file's own bytes."""
    parent = dest.parent
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InputError(
            f"cannot write the verified store {parent}: {exc.strerror or exc}"
        ) from None
    tmp = parent / f".{dest.name}.{os.getpid()}-{os.urandom(6).hex()}.tmp"
    src = open_listed(f)
    try:
        try:
            before = os.fstat(src)
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
            dst = os.open(tmp, flags, 0o600)
        except OSError as exc:
            raise InputError(f"cannot write the verified store: {exc.strerror or exc}") from None
        try:
            digests = _copy_and_hash(src, dst, before.st_size, method)
            os.fchmod(dst, 0o444)
            written = os.fstat(dst)
            after = os.fstat(src)
        except OSError as exc:
            raise InputError(
                f"cannot copy {f.path} into the store: {exc.strerror or exc}"
            ) from None
        finally:
            os.close(dst)
        if FileKey.of(after) != FileKey.of(before) or written.st_size != before.st_size:
            out.reasons.append(
                Reason("files", f"{f.name} was written to while being read; try again")
            )
            tmp.unlink()
            return None
        if digests != want:
            out.reasons.append(Reason("files", f"{f.name} differs from what the publisher signed"))
            out.hashed_bytes += before.st_size
            tmp.unlink()
            return None
        out.hashed_bytes += before.st_size
        tmp.replace(dest)
        # A rename moves the inode's ctime: the identity recorded is the one after it, for the
        # very inode that was written and hashed (same inode, size and mtime).
        placed = os.lstat(dest)
        if (placed.st_ino, placed.st_size, placed.st_mtime_ns) != (
            written.st_ino,
            written.st_size,
            written.st_mtime_ns,
        ):
            raise InputError(f"verified store entry {dest} changed while it was written")
        written = placed
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        os.close(src)
    return (FileKey.of(written), digests), FileKey.of(before)


def _reverify_entry(
    f: ModelFile,
    dest: Path,
    entry: FileKey,
    method: HashMethod,
    want: tuple[bytes, ...],
    out: StoreTree,
    started: int,
) -> tuple[tuple[FileKey | None, tuple[bytes, ...]], FileKey] | None:
    """Check an existing store file against the user's file without rewriting it: the store
    file's bytes are hashed (they are what will be loaded) and compared with the user's, chunk
    by chunk. None (nothing recorded) when they differ or either changed meanwhile: the caller
    then writes a fresh copy. The store identity is recorded only when settled (an entry last
    changed by someone else, moments ago, could be changed again within the same clock tick)."""
    try:
        dst = os.open(dest, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError:
        return None
    try:
        held = os.fstat(dst)
        if (held.st_dev, held.st_ino, held.st_size) != (entry.dev, entry.ino, entry.size):
            return None
        src = open_listed(f)
        try:
            before = os.fstat(src)
            if before.st_size != held.st_size:
                return None
            same = _verify_pair(dst, src, before.st_size, method)
            after = os.fstat(src)
        finally:
            os.close(src)
        if same is None or FileKey.of(after) != FileKey.of(before):
            return None
        if FileKey.of(os.fstat(dst)) != FileKey.of(held):
            return None
    except OSError as exc:
        raise InputError(f"cannot read {f.path}: {exc.strerror or exc}") from None
    finally:
        os.close(dst)
    out.hashed_bytes += before.st_size
    if same != want:
        out.reasons.append(Reason("files", f"{f.name} differs from what the publisher signed"))
        return None
    store_key = FileKey.of(held)
    return (store_key if store_key.settled(started) else None, same), FileKey.of(before)


def _pipelined(
    size: int,
    method: HashMethod,
    fill: Callable[[memoryview, int], None],
) -> tuple[bytes, ...]:
    """Digests of ``size`` bytes that ``fill(view, offset)`` puts into each chunk buffer in
    turn; a second thread hashes chunk *n* while this one fills chunk *n + 1* (``os`` calls
    and ``hashlib`` release the GIL), so the cost approaches max(fill, hash)."""
    hasher = ShardHasher(method)
    if size <= 2 * CHUNK:
        buf = memoryview(bytearray(max(size, 1)))[:size]
        fill(buf, 0)
        hasher.feed(buf)
        return hasher.finish()
    buffers = [memoryview(bytearray(CHUNK)) for _ in range(3)]
    free: queue.SimpleQueue[int] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    for i in range(len(buffers)):
        free.put(i)
    failed: list[BaseException] = []

    def hash_chunks() -> None:
        try:
            while (item := full.get()) is not None:
                hasher.feed(buffers[item[0]][: item[1]])
                free.put(item[0])
        except BaseException as exc:  # handed to the filling thread, raised there
            failed.append(exc)
            free.put(-1)

    thread = threading.Thread(target=hash_chunks, name="glassbox-store-hash", daemon=True)
    thread.start()
    try:
        done = 0
        while done < size:
            i = free.get()
            if i < 0:
                break
            n = min(CHUNK, size - done)
            fill(buffers[i][:n], done)
            full.put((i, n))
            done += n
    finally:
        full.put(None)
        thread.join()
    if failed:
        raise failed[0]
    return hasher.finish()


class _Differs(Exception):
    pass


def _verify_pair(store: int, src: int, size: int, method: HashMethod) -> tuple[bytes, ...] | None:
    """The digests of the store file's bytes when they equal the user's file's, else None."""
    scratch = bytearray(max(size, 1) if size <= 2 * CHUNK else CHUNK)

    def fill(view: memoryview, offset: int) -> None:
        _pread_all(store, view, offset)
        n = len(view)
        mine = memoryview(scratch)[:n]
        _pread_all(src, mine, offset)
        whole = view.obj
        # bytearray == bytearray is one memcmp; memoryview == memoryview goes item by item.
        if isinstance(whole, bytearray) and len(whole) == n == len(scratch):
            equal = whole == scratch
        else:
            equal = view.tobytes() == mine.tobytes()
        if not equal:
            raise _Differs

    try:
        return _pipelined(size, method, fill)
    except _Differs:
        return None


def _pread_all(fd: int, view: memoryview, offset: int) -> None:
    """Fill ``view`` from ``fd`` at ``offset`` (``preadv`` into it where the OS has it)."""
    done = 0
    while done < len(view):
        if _PREADV:
            got = os.preadv(fd, [view[done:]], offset + done)
        else:  # macOS: no preadv
            data = os.pread(fd, len(view) - done, offset + done)
            got = len(data)
            view[done : done + got] = data
        if not got:
            raise InputError(f"file shrank while being read ({offset + done} bytes in)")
        done += got


def _copy_and_hash(src: int, dst: int, size: int, method: HashMethod) -> tuple[bytes, ...]:
    """Fill ``dst`` from ``src`` and return the digests of what ``dst`` holds.

    A reflink (``FICLONE``) shares the blocks and the store file is then hashed from its own
    descriptor; otherwise one buffer is read, hashed and written, so the digests describe
    exactly the bytes written.
    """
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.ioctl(dst, FICLONE, src)
        if os.fstat(dst).st_size == size:
            return _hash_fd(dst, size, method)
        os.ftruncate(dst, 0)

    def fill(view: memoryview, offset: int) -> None:
        _pread_all(src, view, offset)
        written = 0
        while written < len(view):
            written += os.pwrite(dst, view[written:], offset + written)

    return _pipelined(size, method, fill)
