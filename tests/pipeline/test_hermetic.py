"""Hermeticity: classification of opened files and refusal of network and processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from glassbox.pipeline.hermetic import Recorder, RefusedError, classify, environment_roots


def test_classify_sorts_every_kind(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("")
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "train.pyc").write_bytes(b"")
    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0").write_text("")
    work = tmp_path / "work"
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    link = code / "innocent.txt"
    link.symlink_to(secret)
    opened = {
        str(code / "train.py"): False,
        str(code / "__pycache__" / "train.pyc"): False,
        str(data / "part-0"): False,
        str(work / "out.bin"): True,
        str(Path(os.__file__)): False,
        "/proc/cpuinfo": False,
        str(secret): False,
        str(link): False,
        str(tmp_path / "elsewhere.log"): True,
    }
    result = classify(
        opened,
        [],
        declared_files=[str(code / "train.py")],
        declared_roots=[str(data)],
        internal_roots=[str(work)],
        environment=environment_roots(),
    )
    assert not result.hermetic
    # A read through the symlink is judged by its target, which is undeclared.
    assert result.undeclared_reads == (
        str(code / "__pycache__" / "train.pyc"),
        str(secret.resolve()),
    )
    assert result.undeclared_writes == (str((tmp_path / "elsewhere.log").resolve()),)
    assert result.declared_reads == 2
    assert result.environment_reads == 1
    assert result.system_reads == 1


def test_clean_run_is_hermetic(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_text("")
    result = classify(
        {str(f): False},
        [],
        declared_files=[str(f)],
        declared_roots=[],
        internal_roots=[],
        environment=[],
    )
    assert result.hermetic
    assert result.to_dict()["network"] == "refused"


def test_hook_records_opens_and_write_modes() -> None:
    rec = Recorder()
    rec.hook("open", ("/x/read", "r", 0))
    rec.hook("open", ("/x/write", "wb", 0))
    rec.hook("open", ("/x/osopen", None, os.O_WRONLY | os.O_CREAT))
    rec.hook("open", (3, "r", 0))  # a file descriptor: nothing to name
    rec.hook("builtins.id", (1,))
    assert rec.opened == {"/x/read": False, "/x/write": True, "/x/osopen": True}
    with rec.paused():
        rec.hook("open", ("/x/probe", "r", 0))
        rec.hook("subprocess.Popen", ("uname",))
    assert "/x/probe" not in rec.opened and not rec.refused


@pytest.mark.parametrize("event", ["socket.__new__", "socket.connect", "socket.getaddrinfo"])
def test_hook_refuses_network(event: str) -> None:
    rec = Recorder()
    with pytest.raises(RefusedError, match="network access is refused"):
        rec.hook(event, (None,))
    assert rec.refused and rec.refused[0].startswith(f"network: {event}")


@pytest.mark.parametrize("event", ["subprocess.Popen", "os.system", "os.fork", "os.exec"])
def test_hook_refuses_processes(event: str) -> None:
    rec = Recorder()
    with pytest.raises(RefusedError, match="starting processes is refused"):
        rec.hook(event, ("x",))


def test_installed_hook_blocks_real_socket_in_a_fresh_interpreter() -> None:
    # Audit hooks cannot be removed, so prove the real thing in a throwaway interpreter.
    code = (
        "from glassbox.pipeline.hermetic import Recorder, install\n"
        "import socket\n"
        "r = Recorder(); install(r)\n"
        "try:\n"
        "    socket.socket()\n"
        "except PermissionError as e:\n"
        "    print('refused', r.refused[0].split(' ')[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "refused socket.__new__"
    assert socket.socket  # the test process itself is untouched


def test_interpreter_prefix_is_not_a_blanket_exemption() -> None:
    # With a system Python the prefix is /usr: a read of /usr/share/... is not "environment".
    stray = str(Path(sys.base_prefix) / "share" / "not-the-stdlib.txt")
    stdlib = str(Path(os.__file__))
    result = classify(
        {stray: False, stdlib: False},
        [],
        declared_files=[],
        declared_roots=[],
        internal_roots=[],
        environment=environment_roots(),
    )
    assert result.undeclared_reads == (stray,)
    assert result.environment_reads == 1
