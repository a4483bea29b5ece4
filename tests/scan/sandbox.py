"""Run a model file's REAL loader in a throw-away subprocess and record what it reached.

The child installs ``sys.addaudithook`` before loading and records every ``pickle.find_class``
(module, name), every import, and the process/exec/compile events; it works in a temporary
directory with a temporary HOME, and the payloads used in tests only create a marker file.
This executes what it loads, by design: it is the test oracle, never used by the scanner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_CHILD = r"""
import json, sys
events = []
WATCH = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "exec",
         "pickle.find_class", "import", "compile", "builtins.input", "ctypes.dlopen",
         "os.fork", "_xxsubinterpreters.run_string"}
def hook(event, args):
    if event in WATCH or event.startswith("os.exec") or event.startswith("os.spawn"):
        try:
            if event == "pickle.find_class":
                events.append([event, f"{args[0]}.{args[1]}"])
            elif event == "import":
                events.append([event, str(args[0])])
            elif event in ("exec", "compile"):
                events.append([event, ""])
            else:
                events.append([event, repr(args)[:200]])
        except Exception:
            pass
loader, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
def save(status):
    with open(out, "w") as f:
        json.dump({"status": status, "events": events}, f)
import pickle, warnings
warnings.simplefilter("ignore")
if loader == "torch":
    import torch
elif loader == "numpy":
    import numpy
elif loader == "joblib":
    import joblib
elif loader == "zstd-pickle":
    import zstandard
elif loader == "hf-remote-code":
    import transformers
sys.addaudithook(hook)
status = "loaded"
try:
    if loader == "pickle":
        with open(path, "rb") as f:
            pickle.load(f)
    elif loader == "torch":
        torch.load(path, weights_only=False)
    elif loader == "numpy":
        numpy.load(path, allow_pickle=True)
    elif loader == "joblib":
        joblib.load(path)
    elif loader == "zstd-pickle":
        with open(path, "rb") as f:
            pickle.loads(zstandard.ZstdDecompressor().decompress(f.read()))
    elif loader == "gzip-pickle":  # what pandas.read_pickle does for a .gz name
        import gzip
        with gzip.open(path, "rb") as f:
            pickle.load(f)
    elif loader == "hf-remote-code":
        transformers.AutoConfig.from_pretrained(path, trust_remote_code=True)
    else:
        status = "unknown loader"
except BaseException as exc:
    status = f"error: {type(exc).__name__}: {str(exc)[:200]}"
save(status)
"""


@dataclass
class LoadResult:
    status: str
    marker: bool  # the payload ran (the marker file exists afterwards)
    globals: list[str] = field(default_factory=list)  # pickle.find_class, in order
    events: list[tuple[str, str]] = field(default_factory=list)

    @property
    def executed(self) -> bool:
        """The payload ran, or the loader reached a process or exec event."""
        return self.marker or any(
            e.startswith(("os.system", "subprocess", "os.exec", "os.spawn", "os.posix_spawn"))
            or e == "_xxsubinterpreters.run_string"
            for e, _ in self.events
        )


def run_loader(loader: str, path: Path, marker: Path, timeout: float = 60.0) -> LoadResult:
    """Load ``path`` with ``loader`` in a fresh interpreter; report what it reached.

    ``marker`` is the file the payload creates: absolute (attack corpus) or relative to the
    child's throw-away working directory (the fuzzer's payloads, so that a mutated command can
    only ever touch files in that directory)."""
    if marker.is_absolute():
        marker.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="gbx-sandbox-") as work:
        where = marker if marker.is_absolute() else Path(work) / marker
        out = Path(work) / "result.json"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": work,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": work,
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        }
        try:
            subprocess.run(
                [sys.executable, "-c", _CHILD, loader, str(path), str(out)],
                cwd=work,
                env=env,
                timeout=timeout,
                capture_output=True,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return LoadResult("timeout", where.exists())
        ran = where.exists()
        if marker.is_absolute():
            marker.unlink(missing_ok=True)
        if not out.exists():
            return LoadResult("crashed", ran)
        data = json.loads(out.read_text())
    events = [(str(e), str(a)) for e, a in data["events"]]
    found = [a for e, a in events if e == "pickle.find_class"]
    return LoadResult(str(data["status"]), ran, found, events)


# The same loads, many times over: one server process imports the loader's library once (torch
# takes seconds), then forks a child per file. Each child is a copy of that clean server,
# installs the audit hook, works in its own throw-away directory and exits after one load, so
# no load sees another's state; only the import is shared. The fuzzer uses this for volume.
_SERVER = r"""
import json, os, sys, signal, time
loader = sys.argv[1]
os.environ["OMP_NUM_THREADS"] = "1"
import pickle, warnings
warnings.simplefilter("ignore")
if loader == "torch":
    import torch
elif loader == "numpy":
    import numpy
elif loader == "joblib":
    import joblib
CHILD = compile(sys.argv[2], "<loader>", "exec")
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    path, out, work, timeout = line.rstrip("\n").split("\t")
    pid = os.fork()
    if pid == 0:
        os.chdir(work)
        os.environ["HOME"] = work
        sys.argv = ["-c", loader, path, out]
        try:
            exec(CHILD, {"__name__": "__main__"})
        finally:
            os._exit(0)
    deadline = time.monotonic() + float(timeout)
    status = "done"
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = "timeout"
            break
        time.sleep(0.002)
    sys.stdout.write(status + "\n"); sys.stdout.flush()
"""


class ForkLoader:
    """``run_loader`` for many files with one loader: ``with ForkLoader("torch") as load:
    load(path, marker)``. Same result type and the same child code as ``run_loader``."""

    def __init__(self, loader: str) -> None:
        self.loader = loader
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ForkLoader:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, self.loader, _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"loader server for {self.loader} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
            self.proc = None

    def __call__(self, path: Path, marker: Path, timeout: float = 30.0) -> LoadResult:
        assert self.proc is not None and self.proc.stdin is not None
        assert self.proc.stdout is not None
        if marker.is_absolute():
            marker.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="gbx-sandbox-") as work:
            where = marker if marker.is_absolute() else Path(work) / marker
            out = Path(work) / "result.json"
            self.proc.stdin.write(f"{path}\t{out}\t{work}\t{timeout}\n")
            self.proc.stdin.flush()
            status = self.proc.stdout.readline().strip()
            ran = where.exists()
            if marker.is_absolute():
                marker.unlink(missing_ok=True)
            if status == "timeout":
                return LoadResult("timeout", ran)
            if not out.exists():
                return LoadResult("crashed", ran)
            data = json.loads(out.read_text())
        events = [(str(e), str(a)) for e, a in data["events"]]
        found = [a for e, a in events if e == "pickle.find_class"]
        return LoadResult(str(data["status"]), ran, found, events)
