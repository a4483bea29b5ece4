"""Start the training process with everything pinned that decides its bytes.

The child gets a scrubbed environment: a fixed hash seed, thread counts for every pool torch may
use, the ATEN CPU kernel path, its own HOME and TMPDIR inside the build's scratch directory (so
stray caches are internal, not reads of the user's files), and no proxy settings. ``-P`` keeps
the working directory off ``sys.path``: the only importable code is the environment's and the
recipe's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import glassbox
from glassbox.errors import GlassboxError, InputError

LOG_TAIL = 2000


class BuildFailed(GlassboxError):
    """The training process failed (exception, refused network or process, crash)."""

    exit_code = 1

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class ChildSettings:
    threads: int
    cpu_capability: str
    timeout: float | None = None


def child_environment(settings: ChildSettings, scratch: Path) -> dict[str, str]:
    home = scratch / "home"
    tmp = scratch / "tmp"
    home.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    threads = str(settings.threads)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": str(Path(glassbox.__file__).resolve().parent.parent),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "ATEN_CPU_CAPABILITY": settings.cpu_capability,
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "CUDA_VISIBLE_DEVICES": "",
        "GLASSBOX_HOME": str(scratch / "glassbox-home"),
    }
    for keep in ("LD_LIBRARY_PATH", "SYSTEMROOT"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    return env


def run_child(job: dict[str, Any], settings: ChildSettings, scratch: Path) -> dict[str, Any]:
    """Run one training process for ``job``; returns its result dict or raises ``BuildFailed``."""
    scratch = scratch.absolute()
    scratch.mkdir(parents=True, exist_ok=True)
    job = dict(job)
    job["threads"] = settings.threads
    job["result"] = str(scratch / "result.json")
    job_path = scratch / "job.json"
    job_path.write_text(json.dumps(job, default=str))
    log_path = scratch / "train.log"
    with log_path.open("wb") as log:
        try:
            proc = subprocess.run(
                [sys.executable, "-P", "-m", "glassbox.pipeline.child", str(job_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=scratch,
                env=child_environment(settings, scratch),
                timeout=settings.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BuildFailed(f"training did not finish within {settings.timeout} s") from None
    text = log_path.read_text(errors="replace")
    result_path = Path(job["result"])
    if not result_path.exists():
        raise BuildFailed(
            f"training process exited with status {proc.returncode} and no result", text[-LOG_TAIL:]
        )
    try:
        result: dict[str, Any] = json.loads(result_path.read_text())
    except ValueError as exc:
        raise InputError(f"{result_path}: unreadable training result: {exc}") from None
    if "error" in result:
        detail = result.get("traceback", "")
        raise BuildFailed(f"training failed: {result['error']}", (text + detail)[-LOG_TAIL:])
    return result
