"""The build environment: what a rebuild has to match to expect the same bytes.

Bit-identical training needs the same torch build, the same CPU kernel path and the same thread
count (measured: one torch build differs at the 1e-7 level across thread counts or kernel
paths). ``determinism_key`` is the part of the environment that decides that; the rest (CPU
model, every installed package) is recorded so a difference can be explained.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

DETERMINISM_FIELDS = (
    "python",
    "machine",
    "torch",
    "torch_config_sha256",
    "numpy",
    "cpu_capability",
    "threads",
)


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "cpu model"):
            return value.strip()
    return platform.processor() or "unknown"


def installed_packages() -> dict[str, str]:
    """Every distribution the interpreter sees, ``name -> version`` (lower-case names).

    Only the header of each METADATA file is read: ``dist.metadata`` runs the e-mail parser
    over the whole file, long description included, and ``dist.version`` parses it again;
    that was a quarter of a pipeline step child's time (~200 packages). A header this cannot
    read takes the parser's way.
    """
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name, version = _name_and_version(dist)
        if name:
            packages[name.lower()] = version
    return dict(sorted(packages.items()))


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str]:
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.split("\n\n", 1)[0].splitlines():
        if name is None and line.startswith("Name:"):
            name = line[5:].strip()
        elif version is None and line.startswith("Version:"):
            version = line[8:].strip()
        if name is not None and version is not None:
            return name, version
    # Asked with ``get_all``: where ``importlib_metadata`` (the backport) is installed and has
    # put its finder first, a missing header raises KeyError instead of giving None.
    meta = dist.metadata
    found = _header(meta, "Name")
    version = _header(meta, "Version")
    return (str(found) if found else None), str(version)


def _header(meta: importlib.metadata.PackageMetadata, name: str) -> str | None:
    values = meta.get_all(name)
    return str(values[0]) if values else None


def capture(threads: int) -> dict[str, Any]:
    """Describe the current process's environment (call it in the training process)."""
    import numpy as np
    import torch

    config = torch.__config__.show()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_config": config,
        "torch_config_sha256": hashlib.sha256(config.encode()).hexdigest(),
        "torch_parallel": torch.__config__.parallel_info(),
        "numpy": np.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "requested_threads": threads,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "packages": installed_packages(),
    }
    return env


def capture_basic() -> dict[str, Any]:
    """``capture`` without torch and numpy: the environment of a pipeline data step."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": _cpu_model(),
        "packages": installed_packages(),
    }


def determinism_key(env: dict[str, Any]) -> dict[str, Any]:
    return {name: env.get(name) for name in DETERMINISM_FIELDS}


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Determinism-relevant fields that differ, as ``field: recorded -> current``."""
    out = []
    for name in DETERMINISM_FIELDS:
        a, b = recorded.get(name), current.get(name)
        if a != b:
            out.append(f"{name}: {json.dumps(a)} -> {json.dumps(b)}")
    return out
