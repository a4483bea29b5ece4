"""Streaming digests of whole files and byte ranges, with bounded memory.

Every read goes into a per-thread reusable buffer (``readinto``), so hashing a 500 GB model
needs ``workers x CHUNK_SIZE`` bytes of memory, not the model's size. ``hashlib`` and ``blake3``
release the GIL while hashing a buffer and ``FileIO.readinto`` releases it while reading, so a
plain thread pool keeps every core busy.

mmap (``blake3.update_mmap``) is deliberately not used: a file truncated while mapped kills the
process with SIGBUS, and mapped pages count towards the process's resident size, which would
make a bounded-memory promise hard to check. One large BLAKE3 file is instead read by several
threads at once (``_blake3_parallel``), so reading scales with the cores as hashing does.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glassbox.digest.manifest import Algorithm
from glassbox.errors import InputError

# Reads small enough that the bytes are still in the CPU cache when the hash reads them:
# measured on this project's 2-core AMD EPYC box, 1 MiB reads cost ~4% less CPU per GiB for
# SHA-256 than 8 MiB reads, and BLAKE3 (which outruns memory) gains more.
CHUNK_SIZE = 1024 * 1024
# One large BLAKE3 file is read and hashed in rounds of ``threads x BLAKE3_SLICE`` bytes: big
# enough that the per-round hand-over between reader threads and BLAKE3's threads is a few
# percent of the work, small enough to stay bounded (64 MiB at most).
BLAKE3_SLICE = 4 * 1024 * 1024
BLAKE3_MAX_CHUNK = 64 * 1024 * 1024

ProgressFn = Callable[[int], None]

_local = threading.local()


def _buffer(size: int) -> memoryview:
    """This thread's reusable read buffer of at least ``size`` bytes."""
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None or len(buf) < size:
        buf = bytearray(size)
        _local.buf = buf
    return memoryview(buf)[:size]


def new_hasher(algorithm: Algorithm, *, threads: int = 1) -> Any:
    """A fresh streaming hasher; ``threads > 1`` lets BLAKE3 split large updates across cores."""
    if algorithm == "sha256":
        return hashlib.sha256()
    import blake3  # imported lazily: SHA-256-only runs never pay for it

    return blake3.blake3(max_threads=threads if threads > 1 else 1)


def _open_checked(path: str | os.PathLike[str], expect: os.stat_result | None) -> int:
    """Open ``path`` for reading and make sure it is still the file the walk saw.

    Comparing device and inode after opening closes the window in which a file could be
    swapped for a symlink to somewhere else between listing and hashing.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if expect is not None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (expect.st_dev, expect.st_ino):
            os.close(fd)
            raise InputError(f"{path} was replaced while the model was being hashed")
    return fd


def _check_unchanged(fd: int, path: str | os.PathLike[str], expect: os.stat_result | None) -> None:
    if expect is None:
        return
    st = os.fstat(fd)
    if (st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (
        expect.st_size,
        expect.st_mtime_ns,
        expect.st_ctime_ns,
    ):
        raise InputError(f"{path} changed while it was being hashed; hash it again")


def hash_range(
    path: str | os.PathLike[str],
    start: int,
    end: int,
    algorithm: Algorithm = "sha256",
    *,
    expect: os.stat_result | None = None,
    progress: ProgressFn | None = None,
    threads: int = 1,
    chunk_size: int = CHUNK_SIZE,
) -> bytes:
    """Digest of bytes ``[start, end)`` of ``path`` (an OMS shard, or a whole file).

    ``expect`` is the ``stat`` the caller decided on; the file must still match it afterwards,
    otherwise the digest would describe bytes that no longer exist (and a cache would keep it).
    A file shorter than ``end`` is an error, never a silently shorter digest.
    """
    fd = _open_checked(path, expect)
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_SEQUENTIAL)
        if algorithm == "blake3" and threads > 1 and hasattr(os, "preadv"):
            digest = _blake3_parallel(fd, path, start, end, threads, progress)
        else:
            digest = _sequential(fd, path, start, end, algorithm, progress, chunk_size, threads)
        _check_unchanged(fd, path, expect)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return digest


def _short(path: str | os.PathLike[str], done: int, end: int) -> InputError:
    return InputError(f"{path} is shorter than expected ({done} of {end} bytes)")


def _sequential(
    fd: int,
    path: str | os.PathLike[str],
    start: int,
    end: int,
    algorithm: Algorithm,
    progress: ProgressFn | None,
    chunk_size: int,
    threads: int = 1,
) -> bytes:
    hasher = new_hasher(algorithm, threads=threads)
    if threads > 1:
        chunk_size = min(max(chunk_size, threads * BLAKE3_SLICE), BLAKE3_MAX_CHUNK)
    with open(fd, "rb", buffering=0, closefd=False) as raw:
        if start:
            raw.seek(start)
        remaining = end - start
        view = _buffer(min(chunk_size, max(remaining, 1)))
        while remaining > 0:
            got = raw.readinto(view[: min(remaining, len(view))])
            if not got:
                raise _short(path, end - remaining, end)
            hasher.update(view[:got])
            remaining -= got
            if progress is not None:
                progress(got)
    digest: bytes = hasher.digest()
    return digest


def _pread_into(fd: int, buf: memoryview, offset: int) -> int:
    """Fill ``buf`` from ``offset`` (fewer bytes only at end of file)."""
    done = 0
    while done < len(buf):
        got = os.preadv(fd, [buf[done:]], offset + done)
        if not got:
            break
        done += got
    return done


def _blake3_parallel(
    fd: int,
    path: str | os.PathLike[str],
    start: int,
    end: int,
    threads: int,
    progress: ProgressFn | None,
) -> bytes:
    """BLAKE3 of one large range with every core in both halves of the work.

    Copying from the page cache costs about half as much CPU as BLAKE3 itself, so a single
    reader thread would leave the other cores idle a third of the time. Here ``threads`` readers
    fill one slice each of a shared buffer (``preadv`` releases the GIL), then BLAKE3 hashes the
    whole buffer on ``threads`` threads; memory stays ``threads x BLAKE3_SLICE``.
    """
    from concurrent.futures import ThreadPoolExecutor  # with logging, ~10 ms of start-up

    import blake3

    hasher = blake3.blake3(max_threads=threads)
    chunk = min(threads * BLAKE3_SLICE, BLAKE3_MAX_CHUNK)
    slice_size = max(1, chunk // threads)
    view = memoryview(bytearray(min(chunk, max(end - start, 1))))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="glassbox-read") as readers:
        pos = start
        while pos < end:
            length = min(len(view), end - pos)
            parts = [(i, min(slice_size, length - i)) for i in range(0, length, slice_size)]
            reads = [readers.submit(_pread_into, fd, view[i : i + n], pos + i) for i, n in parts]
            for (i, n), read in zip(parts, reads, strict=True):
                if read.result() < n:
                    raise _short(path, pos + i, end)
            hasher.update(view[:length])
            pos += length
            if progress is not None:
                progress(length)
    digest: bytes = hasher.digest()
    return digest


def hash_file(path: str | os.PathLike[str], algorithm: Algorithm = "sha256") -> bytes:
    """Digest of a whole file, streamed; BLAKE3 uses every core for one large file."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p} is not a regular file")
    threads = (os.cpu_count() or 1) if algorithm == "blake3" else 1
    return hash_range(p, 0, st.st_size, algorithm, expect=st, threads=threads)
