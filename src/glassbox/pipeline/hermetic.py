"""Hermeticity: see every file the training opens, and refuse the network and child processes.

A Python audit hook (PEP 578) sees each ``open`` (built-in ``open``, ``io.open_code`` for
imports, ``os.open``) and each socket creation. Reads are classified afterwards:

* *declared*: a file of the code manifest, a declared dataset, the base model;
* *internal*: the build's own scratch and output directories;
* *environment*: the interpreter, the standard library, installed packages (recorded with the
  environment, not a hermeticity violation: they are pinned by the package list instead);
* *system*: ``/proc``, ``/sys``, ``/dev``;
* everything else is *undeclared*: the build is not hermetic, and the files are listed.

Network and process creation are refused outright by raising from the hook; the attempt is also
recorded, so training code that catches the exception still fails the build. Audit hooks see
what Python opens. Native code that calls ``open(2)`` itself is invisible to them; that limit is
stated in the provenance rather than papered over.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NETWORK_EVENTS = frozenset(
    {
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.sendto",
    }
)
PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "pty.spawn",
    }
)
WATCHED_EVENTS = frozenset({"open"}) | NETWORK_EVENTS | PROCESS_EVENTS
SYSTEM_ROOTS = ("/proc", "/sys", "/dev")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
HOOK_LIMITS = (
    "an audit hook sees files opened through Python; native code calling open(2) directly "
    "is not observed"
)


class RefusedError(PermissionError):
    """Raised inside the build when training tries to use the network or start a process."""


@dataclass
class Recorder:
    """Collects what the audit hook saw. One per child process; never shared across threads."""

    opened: dict[str, bool] = field(default_factory=dict)  # path -> written
    refused: list[str] = field(default_factory=list)
    active: bool = True

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        # Called for every audit event in the process (torch raises ``builtins.id`` several
        # times per training step), so anything not watched leaves after one set look-up.
        if event not in WATCHED_EVENTS or not self.active:
            return
        if event == "open":
            path = args[0]
            if isinstance(path, int) or path is None:
                return
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 else 0
            written = bool(
                (isinstance(mode, str) and any(c in mode for c in "wax+"))
                or (isinstance(flags, int) and flags & _WRITE_FLAGS)
            )
            key = os.path.abspath(os.fsdecode(path))  # noqa: PTH100 - no symlink resolution here
            self.opened[key] = self.opened.get(key, False) or written
        elif event in NETWORK_EVENTS:
            self.refused.append(f"network: {event}{_describe(args)}")
            raise RefusedError(f"glassbox build: network access is refused ({event})")
        else:
            self.refused.append(f"process: {event}{_describe(args)}")
            raise RefusedError(f"glassbox build: starting processes is refused ({event})")

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop recording and refusing: Glassbox's own environment probe (which runs ``uname``
        and reads package metadata) is not the training's doing."""
        before = self.active
        self.active = False
        try:
            yield
        finally:
            self.active = before


def _describe(args: tuple[Any, ...]) -> str:
    text = ", ".join(repr(a) for a in args[:3])
    return f" ({text[:200]})"


def install(recorder: Recorder) -> None:
    """Install the hook for the rest of this process (audit hooks cannot be removed).

    The installed hook is a plain function with its look-ups bound as defaults: CPython calls
    it for every audit event, and a bound method costs about three times as much per call
    (measured ~700 ns against ~250 ns), which was most of the recording overhead.
    """

    def hook(
        event: str,
        args: tuple[Any, ...],
        _watched: frozenset[str] = WATCHED_EVENTS,
        _handle: Any = recorder.hook,
    ) -> None:
        if event in _watched:
            _handle(event, args)

    sys.addaudithook(hook)


def environment_roots() -> list[str]:
    """Directories whose files are "the environment": the standard library and installed packages.

    Deliberately not the interpreter's whole prefix: with a system Python that is ``/usr``, and
    a training reading ``/usr/share/...`` must not pass as environment.
    """
    roots: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            roots.add(sysconfig.get_path(key))
        except KeyError:
            continue
    roots.update(site.getsitepackages())
    # The interpreter's own import path entries (``python311.zip``, ``lib-dynload``).
    own = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    roots.update(entry for entry in sys.path if entry and _under(entry, own))
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if isinstance(user_site, str):
        roots.add(user_site)
    import glassbox

    roots.add(str(Path(glassbox.__file__).resolve().parent))
    return sorted(os.path.realpath(r) for r in roots if r)


@dataclass(frozen=True)
class Hermeticity:
    """The verdict on what a run touched; goes into the provenance byproducts."""

    hermetic: bool
    undeclared_reads: tuple[str, ...]
    undeclared_writes: tuple[str, ...]
    refused: tuple[str, ...]
    declared_reads: int
    environment_reads: int
    system_reads: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "hermetic": self.hermetic,
            "undeclared_reads": list(self.undeclared_reads),
            "undeclared_writes": list(self.undeclared_writes),
            "refused": list(self.refused),
            "declared_reads": self.declared_reads,
            "environment_reads": self.environment_reads,
            "system_reads": self.system_reads,
            "network": "refused",
            "method": "python audit hook (PEP 578)",
            "limits": HOOK_LIMITS,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hermeticity:
        return cls(
            hermetic=bool(data["hermetic"]),
            undeclared_reads=tuple(data["undeclared_reads"]),
            undeclared_writes=tuple(data["undeclared_writes"]),
            refused=tuple(data["refused"]),
            declared_reads=int(data["declared_reads"]),
            environment_reads=int(data["environment_reads"]),
            system_reads=int(data["system_reads"]),
        )


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def classify(
    opened: dict[str, bool],
    refused: Iterable[str],
    *,
    declared_files: Iterable[str],
    declared_roots: Iterable[str],
    internal_roots: Iterable[str],
    environment: Iterable[str],
) -> Hermeticity:
    """Sort every opened path into declared / internal / environment / system / undeclared.

    ``declared_files`` are exact files (the code manifest), ``declared_roots`` whole trees
    (a dataset or base model directory). Paths are compared after resolving symlinks, so a
    link inside the code directory pointing elsewhere is judged by its target.
    """
    files = {os.path.realpath(p) for p in declared_files}
    roots = [os.path.realpath(p) for p in declared_roots]
    internal = [os.path.realpath(p) for p in internal_roots]
    env = list(environment)
    undeclared_reads: list[str] = []
    undeclared_writes: list[str] = []
    declared = env_count = system = 0
    resolved: dict[str, bool] = {}
    for raw, written in opened.items():
        path = os.path.realpath(raw)
        resolved[path] = resolved.get(path, False) or written
    for path, written in sorted(resolved.items()):
        if _under(path, internal):
            continue
        if written:
            undeclared_writes.append(path)
        elif path in files or _under(path, roots):
            declared += 1
        elif _under(path, env):
            env_count += 1
        elif _under(path, SYSTEM_ROOTS):
            system += 1
        else:
            undeclared_reads.append(path)
    refused_t = tuple(refused)
    return Hermeticity(
        hermetic=not (undeclared_reads or undeclared_writes or refused_t),
        undeclared_reads=tuple(undeclared_reads),
        undeclared_writes=tuple(undeclared_writes),
        refused=refused_t,
        declared_reads=declared,
        environment_reads=env_count,
        system_reads=system,
    )
