"""Build hook: compile the scanner's hot path with mypyc.

The scanner is Python, typed strictly enough for mypy; mypyc turns the same source into C
extension modules, which run the pickle interpreter about three times faster (the opcode loop
is the scanner's whole cost on a large pickle). Nothing changes in the source or its behaviour,
and the pure-Python modules remain the fallback:

* ``GLASSBOX_PURE_PYTHON=1`` skips compilation;
* a machine without a C compiler gets a warning and the pure-Python install.

Editable installs compile in place (``src/glassbox/scan/*.so``, found through the editable
``.pth``); after editing a compiled module, re-run ``pip install -e .`` (the test suite refuses
to run against a compiled module older than its source). Wheels carry the extension modules.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# The modules on the per-file and per-opcode path, all stdlib-only at import time.
COMPILED = [
    "glassbox/scan/pickle_ops.py",
    "glassbox/scan/pickle_scan.py",
    "glassbox/scan/detect.py",
    "glassbox/scan/dispatch.py",
    "glassbox/scan/containers.py",
    "glassbox/scan/context.py",
    "glassbox/scan/gguf_scan.py",
    "glassbox/scan/numpy_scan.py",
    "glassbox/scan/callables.py",
    "glassbox/scan/safetensors_scan.py",
    "glassbox/scan/torch_legacy.py",
]
GROUP = "glassbox_native"  # the shared runtime library: src/glassbox_native__mypyc*.so


class MypycBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        src = Path(self.root) / "src"
        _remove_compiled(src)  # never leave an old build shadowing the source
        if os.environ.get("GLASSBOX_PURE_PYTHON"):
            return
        try:
            built = _compile(src, Path(self.root) / "build" / "mypyc")
        except Exception as exc:  # no compiler, no headers: the pure-Python install still works
            self.app.display_warning(
                f"glassbox: compiling the scanner with mypyc failed ({exc}); installing the"
                " pure-Python modules (slower scans, same results)"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version == "editable":
            return
        for path in built:
            build_data["force_include"][str(path)] = str(path.relative_to(src))


def _compile(src: Path, work: Path) -> list[Path]:
    from mypyc.build import mypycify
    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    cwd = Path.cwd()
    os.chdir(src)  # module names come from the paths: glassbox/scan/x.py -> glassbox.scan.x
    try:
        extensions = mypycify(
            ["--ignore-missing-imports", "--python-version", "3.11", *COMPILED],
            opt_level="3",
            group_name=GROUP,
            target_dir=str(work / "c"),
        )
        dist = Distribution({"name": "glassbox", "ext_modules": extensions})
        cmd = build_ext(dist)
        cmd.inplace = True
        # Always recompile: mypyc rewrites only the C files whose text changed, so an up-to-date
        # check would keep old per-module shims (and their old times, which the stale-module
        # test reads) beside a rebuilt shared library.
        cmd.force = True
        cmd.build_temp = str(work / "temp")
        cmd.ensure_finalized()
        cmd.run()
    finally:
        os.chdir(cwd)
    built = _compiled_files(src)
    if len(built) < len(COMPILED) + 1:
        raise RuntimeError(f"expected {len(COMPILED) + 1} extension modules, built {len(built)}")
    shutil.rmtree(work / "temp", ignore_errors=True)
    print(f"glassbox: compiled {len(COMPILED)} scanner modules with mypyc", file=sys.stderr)
    return built


def _compiled_files(src: Path) -> list[Path]:
    scan = src / "glassbox" / "scan"
    return [*src.glob(f"{GROUP}__mypyc*"), *scan.glob("*.so"), *scan.glob("*.pyd")]


def _remove_compiled(src: Path) -> None:
    for path in _compiled_files(src):
        path.unlink()
