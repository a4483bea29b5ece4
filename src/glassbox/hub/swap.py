"""Put a verified directory where another one is, with no moment where neither is there.

On Linux, ``renameat2(RENAME_EXCHANGE)`` (called through ``ctypes``; glibc 2.28+, most local
filesystems) swaps the two paths in one atomic step: every reader sees the old tree or the new
one, never a missing path. Where it is unavailable (another OS, an old libc, a filesystem that
refuses it), the old tree is renamed aside and the new one renamed into place: each rename is
atomic, but between the two the path does not exist; if the second rename fails, the first is
undone. A process killed in that window leaves the old tree aside, and ``restore_aside`` (run
by the next pull) puts it back. ``swap_into_place`` says which way it went.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
from pathlib import Path

RENAME_EXCHANGE = 2
AT_FDCWD = -100
ASIDE = ".glassbox-old-"
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}

# The rename the fallback uses (a module attribute, so a test can make it fail).
_rename = os.rename


def _renameat2() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_EXCHANGE = _renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap paths ``a`` and ``b``; ``False`` where this system cannot."""
    if _EXCHANGE is None:
        return False
    rc = _EXCHANGE(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)  # type: ignore[operator]
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(b))


def aside_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}{ASIDE}{os.getpid()}")


def swap_into_place(new: Path, dest: Path) -> str:
    """Move ``new`` to ``dest``, replacing what is there; returns ``"rename"`` (nothing was
    there: one atomic rename), ``"exchange"`` (atomic swap) or ``"aside"`` (the fallback,
    with a short window where ``dest`` does not exist). The old tree is deleted afterwards."""
    if not os.path.lexists(dest):
        _rename(new, dest)
        return "rename"
    if exchange(new, dest):
        _remove(new)  # ``new`` now names the old tree
        return "exchange"
    old = aside_path(dest)
    _rename(dest, old)
    try:
        _rename(new, dest)
    except BaseException:
        _rename(old, dest)  # roll back: the old tree returns
        raise
    _remove(old)
    return "aside"


def restore_aside(dest: Path) -> Path | None:
    """After a crash between the fallback's two renames: put the old tree back (if ``dest``
    is missing and one was left aside). Returns what was restored."""
    if os.path.lexists(dest):
        return None
    for candidate in sorted(dest.parent.glob(f".{dest.name}{ASIDE}*")):
        with contextlib.suppress(OSError):
            candidate.rename(dest)
            return candidate
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
