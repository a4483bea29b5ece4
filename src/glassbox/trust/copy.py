"""Verified private copies: the bytes a loader checks are the bytes it loads.

Hashing a file and then handing its *path* to a loader leaves a gap: the file can be swapped
(renamed over, rewritten in place) after it was hashed and before it is read, and every loader
that takes a path (``from_pretrained``, ``safe_open``, ``GGUFReader``) reopens it. So a loader
here never reads the model's own files. Each signed file is opened once, copied from that
descriptor into a fresh private directory (mode 0700, files 0600, created with ``O_EXCL``),
and the *copy* is what is checked and then loaded. Nobody but this user (and root) can change
the copy; the original can change as it likes afterwards, and a swap before the copy is caught
by its digest.

Cold, the copy is made by reading the source into a buffer, hashing that buffer and writing
that same buffer: one pass, and the digest is of exactly the bytes written. Warm, the digest
cache (``glassbox.digest.cache``) can vouch for the source, and the copy is made in the kernel
(``copy_file_range``, a reflink on btrfs/XFS; ``sendfile`` across file systems) without
hashing. The cache's trust rule, precisely: an entry is reused only when the descriptor the
copy is made from has the (device, inode, size, mtime, ctime) recorded when its bytes were
hashed, both before and after the copy. A swap gives another inode; an in-place write moves
ctime, which no unprivileged call can set back; a write during the copy moves it too. What it
cannot rule out is a writer who can change the cache database itself (the user's cache
directory): pass ``use_cache=False`` where that is a concern, and every byte is hashed.

Formats Glassbox parses itself (safetensors) need no copy on disk: ``in_memory`` names the
files that are read into private memory instead (``glassbox.trust.memory``), under the same
trust rule, checked on the descriptor they are read from.

With a verified store (``glassbox.trust.store``, the loaders' default) there is no per-load
copy: the store keeps one verified, read-only copy per signed release, and loaders map it.

The price of a per-load copy is one copy of the model's bytes (into memory-backed ``/dev/shm`` by
default, when it has room, so no disk write; ``workdir`` or ``GLASSBOX_VERIFIED_DIR`` choose
another place).
The copy is removed once loaded: loaders map it, and a mapped file stays readable after it is
unlinked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from glassbox.digest.cache import DigestCache, FileKey
from glassbox.errors import InputError
from glassbox.trust.errors import Reason
from glassbox.trust.memory import ShardHasher, VerifiedBuffer, read_into_memory

if TYPE_CHECKING:
    from glassbox.digest import HashMethod, Manifest
    from glassbox.digest.walk import ModelFile

CHUNK = 4 << 20
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
SHM = Path("/dev/shm")  # noqa: S108 (a private mkdtemp directory is made inside it)


@dataclass
class VerifiedCopy:
    """The private directory holding the verified files, named as in the signed manifest."""

    directory: Path
    files: dict[str, Path]
    hashed_bytes: int = 0
    # Files read into private memory instead (``in_memory``): name -> verified bytes.
    buffers: dict[str, VerifiedBuffer] = field(default_factory=dict)
    single_name: str = ""  # a single-file model's file name
    cached_files: int = 0
    reasons: list[Reason] = field(default_factory=list)
    #: True for a verified store's tree: shared by later loads, never removed by one.
    persistent: bool = False
    #: Seconds spent reading, copying and hashing files (the gate's ``files`` link).
    copy_s: float = 0.0
    #: Files the gate left out of the load (pickles beside safetensors weights).
    left_out: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """What to load: the directory, or the one file of a single-file model."""
        if "." in self.files:
            return self.files["."]
        return self.directory

    def remove(self) -> None:
        if not self.persistent:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.buffers.clear()  # tensors made from a buffer keep it alive; nothing is unmapped

    def in_memory_path(self, name: str) -> Path:
        """The path a file read into memory would have in the directory (its name for the
        scanner; nothing is written there)."""
        return self.directory / name if name != "." else self.directory / self.single_name


def choose_workdir(total_size: int, workdir: str | os.PathLike[str] | None) -> Path:
    """``workdir``, else ``$GLASSBOX_VERIFIED_DIR``, else ``/dev/shm`` when it has room for the
    model twice over, else the temporary directory."""
    chosen = workdir or os.environ.get("GLASSBOX_VERIFIED_DIR")
    if chosen:
        return Path(chosen)
    with contextlib.suppress(OSError):
        if SHM.is_dir() and os.access(SHM, os.W_OK):
            st = os.statvfs(SHM)
            if st.f_bavail * st.f_frsize > 2 * total_size + (64 << 20):
                return SHM
    return Path(tempfile.gettempdir())


def make_verified_copy(
    model: Path,
    expected: Manifest,
    signature_path: Path,
    *,
    link_root: Path | None = None,
    use_cache: bool = True,
    workdir: str | os.PathLike[str] | None = None,
    store: Path | None = None,
    in_memory: Callable[[str], bool] | None = None,
    on_file: Callable[[str, Path, bool], None] | None = None,
) -> VerifiedCopy:
    """Copy every file ``expected`` lists into a private directory, checking each copy.

    Files whose manifest name ``in_memory`` accepts are not copied: they are read once into
    private memory (``glassbox.trust.memory``), hashed as read (cold) or vouched for by the
    digest cache on the open descriptor, before and after the read (warm), and returned in
    ``buffers``.

    ``store`` (a verified store's root, ``glassbox.trust.store``): the files are not copied
    per load but kept in that store's tree for this signed release, and the returned copy
    points there (``persistent``: ``remove`` leaves it). ``in_memory`` and ``workdir`` do not
    apply then.

    Mismatches are returned as ``files`` reasons (the copy is then removed); the caller turns
    them into a refusal. Unreadable input is ``InputError``.
    """
    from glassbox.digest.walk import list_model_files, normalize_ignores
    from glassbox.sign.model import _signature_ignore

    ignores = normalize_ignores(
        model, [*expected.ignore_paths, *_signature_ignore(model, signature_path)]
    )
    files = list_model_files(
        model, ignores, allow_symlinks=expected.method.allow_symlinks, link_root=link_root
    )
    want = expected.file_digests()
    if expected.method.shard_size is not None:
        # An empty file has no shards, so a sharded manifest has no item for it (as in OMS).
        files = [f for f in files if f.stat.st_size or f.name in want]
    on_disk = {f.name: f for f in files}
    reasons: list[Reason] = []
    removed = sorted(set(want) - set(on_disk))
    added = sorted(set(on_disk) - set(want))
    if removed:
        reasons.append(Reason("files", f"removed since signing: {', '.join(removed[:10])}"))
    if added:
        reasons.append(Reason("files", f"not covered by the signature: {', '.join(added[:10])}"))
    if store is not None:
        return _from_store(Path(store), files, want, expected, reasons, use_cache, on_file)
    base = choose_workdir(sum(f.stat.st_size for f in files), workdir)
    try:
        directory = Path(tempfile.mkdtemp(prefix="glassbox-verified-", dir=base))
    except OSError as exc:
        raise InputError(f"cannot create a private copy in {base}: {exc.strerror or exc}") from None
    copy = VerifiedCopy(directory, {}, reasons=reasons)
    if reasons:
        return copy
    started = time.time_ns()
    method = expected.method
    cache = DigestCache(shared=True)
    try:
        keys = {f.name: FileKey.of(f.stat) for f in files}
        cached = cache.lookup(keys.values(), method.name) if use_cache else {}
        fresh: list[tuple[FileKey, tuple[bytes, ...]]] = []
        for f in files:
            dest = directory / (f.name if f.name != "." else Path(f.path).name)
            vouched = cached.get(keys[f.name]) == want[f.name]
            if f.name == ".":
                copy.single_name = Path(f.path).name
            if in_memory is not None and in_memory(f.name):
                settled = _read_verified(f, keys[f.name], vouched, want[f.name], method, copy)
                if settled is not None and settled.settled(started):
                    fresh.append((settled, want[f.name]))
                continue
            target = dest
            try:
                digests, key = _copy_one(f, target, method, hash_it=not vouched)
                if digests is None and key != keys[f.name]:
                    # It changed since it was listed: what the cache said is moot.
                    digests, key = _copy_one(f, target, method, hash_it=True)
            except _ChangedWhileCopied:
                copy.reasons.append(
                    Reason("files", f"{f.name} was written to while being read; try again")
                )
                continue
            if digests is None:
                copy.cached_files += 1
            else:
                copy.hashed_bytes += f.stat.st_size
                if digests != want[f.name]:
                    copy.reasons.append(
                        Reason("files", f"{f.name} differs from what the publisher signed")
                    )
                elif key.settled(started):
                    fresh.append((key, digests))
            copy.files[f.name] = dest
        cache.store(fresh, method.name)
    except BaseException:
        copy.remove()
        raise
    finally:
        cache.close()
    return copy


def _read_verified(
    f: ModelFile,
    listed: FileKey,
    vouched: bool,
    want: tuple[bytes, ...],
    method: HashMethod,
    copy: VerifiedCopy,
) -> FileKey | None:
    """Read ``f`` into private memory and check it (a reason in ``copy`` when it fails); the
    file's identity when its bytes were hashed and matched (for the digest cache)."""
    try:
        buffer, digests, key = _read_one(f, method, hash_it=not vouched)
        if digests is None and key != listed:
            # It changed since it was listed: what the cache said is moot.
            buffer, digests, key = _read_one(f, method, hash_it=True)
    except _ChangedWhileCopied:
        copy.reasons.append(Reason("files", f"{f.name} was written to while being read; try again"))
        return None
    if digests is None:
        copy.cached_files += 1
    else:
        copy.hashed_bytes += buffer.size
        if digests != want:
            copy.reasons.append(Reason("files", f"{f.name} differs from what the publisher signed"))
            return None
    copy.buffers[f.name] = buffer
    return None if digests is None else key


def _read_one(
    f: ModelFile, method: HashMethod, *, hash_it: bool
) -> tuple[VerifiedBuffer, tuple[bytes, ...] | None, FileKey]:
    """Read ``f`` into private memory from one descriptor: the buffer, the digests of its
    bytes (None when not hashed) and the file's identity, the same before and after."""
    src = open_listed(f)
    try:
        before = os.fstat(src)
        buffer, digests = read_into_memory(src, before.st_size, method if hash_it else None)
        after = os.fstat(src)
    except OSError as exc:
        raise InputError(f"cannot read {f.path}: {exc.strerror or exc}") from None
    finally:
        os.close(src)
    key = FileKey.of(before)
    if FileKey.of(after) != key:
        raise _ChangedWhileCopied(f.name)
    return buffer, digests, key


def open_listed(f: ModelFile) -> int:
    """Open the file that was listed, read-only; refuse if it is no longer that file (the
    private copy and the verified store both read the user's file through this)."""
    try:
        src = os.open(f.path, os.O_RDONLY | _O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read {f.path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{f.path} is not a regular file")
        if (st.st_dev, st.st_ino) != (f.stat.st_dev, f.stat.st_ino):
            raise InputError(f"{f.path} was replaced while the model was being verified")
    except BaseException:
        os.close(src)
        raise
    return src


def _copy_one(
    f: ModelFile, dest: Path, method: HashMethod, *, hash_it: bool
) -> tuple[tuple[bytes, ...] | None, FileKey]:
    """Copy ``f`` to ``dest`` from one descriptor; the digests of the bytes written (None when
    not hashed) and the source's identity, the same before and after the copy."""
    src = open_listed(f)
    try:
        before = os.fstat(src)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()  # a retry after the source changed mid-copy
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
        dst = os.open(dest, flags, 0o600)
        try:
            if hash_it:
                digests: tuple[bytes, ...] | None = _hashing_copy(src, dst, before.st_size, method)
            else:
                _kernel_copy(src, dst, before.st_size)
                digests = None
        finally:
            os.close(dst)
        after = os.fstat(src)
    except OSError as exc:
        raise InputError(f"cannot copy {f.path}: {exc.strerror or exc}") from None
    finally:
        os.close(src)
    key = FileKey.of(before)
    if FileKey.of(after) != key:
        # Written to while being copied: the copy matches no single state of the file.
        raise _ChangedWhileCopied(f.name)
    return digests, key


class _ChangedWhileCopied(Exception):
    pass


def _hashing_copy(src: int, dst: int, size: int, method: HashMethod) -> tuple[bytes, ...]:
    """Read, hash and write the same buffer: the digests describe exactly the bytes written."""
    hasher = ShardHasher(method)
    buf = bytearray(min(CHUNK, max(size, 1)))
    view = memoryview(buf)
    done = 0
    while done < size:
        got = os.readv(src, [view[: min(len(buf), size - done)]])
        if not got:
            raise InputError(f"file shrank while being copied ({done} of {size} bytes)")
        chunk = view[:got]
        hasher.feed(chunk)
        written = 0
        while written < got:
            written += os.write(dst, chunk[written:])
        done += got
    return hasher.finish()


def _kernel_copy(src: int, dst: int, size: int) -> None:
    done = 0
    use_range = hasattr(os, "copy_file_range")
    while done < size:
        try:
            if use_range:
                got = os.copy_file_range(src, dst, size - done)
            else:
                got = os.sendfile(dst, src, None, size - done)
        except OSError as exc:
            if use_range:  # EXDEV on older kernels, ENOSYS, EINVAL on some file systems
                use_range = False
                del exc
                continue
            raise
        if not got:
            raise InputError(f"file shrank while being copied ({done} of {size} bytes)")
        done += got


def _from_store(
    root: Path,
    files: list[ModelFile],
    want: dict[str, tuple[bytes, ...]],
    expected: Manifest,
    reasons: list[Reason],
    use_cache: bool,
    on_file: Callable[[str, Path, bool], None] | None,
) -> VerifiedCopy:
    """The verified copy as the store's tree for this release (``glassbox.trust.store``)."""
    from glassbox.trust.store import materialize

    if reasons:
        return VerifiedCopy(root, {}, reasons=reasons, persistent=True)
    tree = materialize(
        root,
        files,
        want,
        expected.method,
        expected.root_digest,
        use_cache=use_cache,
        on_file=on_file,
    )
    copy = VerifiedCopy(
        tree.directory,
        tree.files,
        hashed_bytes=tree.hashed_bytes,
        cached_files=tree.cached_files,
        reasons=tree.reasons,
        persistent=True,
        copy_s=tree.copy_s,
    )
    for f in files:
        if f.name == ".":
            copy.single_name = Path(f.path).name
    return copy
