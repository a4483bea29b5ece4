"""Build hook: compile the scanner's hot path with mypyc.

The scanner is Python, typed strictly enough for mypy; mypyc turns the same source into C
extension modules, which run the pickle interpreter about three times faster (the opcode loop
is the scanner's whole cost on a large pickle). Nothing changes in the source or its behaviour,
and the pure-Python modules remain the fallback:

* ``GLASSBOX_PURE_PYTHON=1`` skips compilation;
* any failure of the compile step (no C compiler, no headers, a type error, mypy's
  ``SystemExit``) gives one warning and the pure-Python install.

The build environment holds only the build requirements (hatchling, mypy, setuptools), never
the project's own dependencies, so mypy type-checks the scanner package alone: every other module
(``glassbox.sign`` through ``glassbox.scan.attest``, ``cryptography``, numpy) is skipped and
seen as ``Any``. The compiled modules import nothing outside ``glassbox.scan`` on their hot
path, so nothing is lost, and what happens to be installed never changes the outcome.

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
    # Chat templates (the AST walk), Keras/JSON configs and the name-vs-content check: jinja2,
    # h5py and the rest are imported inside functions, only when such a file is met.
    "glassbox/scan/templates.py",
    "glassbox/scan/keras.py",
    "glassbox/scan/claims.py",
]
GROUP = "glassbox_native"
# Type-check the scanner package only: the build environment has none of the project's
# dependencies, so anything else mypy followed into (cryptography through glassbox.sign) would be
# unresolved and fail the build.
MYPY_CONFIG = """\
[mypy]
ignore_missing_imports = True
follow_imports = skip
[mypy-glassbox.scan.*]
follow_imports = normal
"""  # the shared runtime library: src/glassbox_native__mypyc*.so


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
        except (Exception, SystemExit) as exc:  # mypy ends with SystemExit on a type error
            _remove_compiled(src)  # a half-finished build must not shadow the source
            reason = str(exc) or type(exc).__name__
            self.app.display_warning(
                f"glassbox: compiling the scanner with mypyc failed ({reason}); installing the"
                " pure-Python modules (slower scans, same results)"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version == "editable":
            return
        for path in built:
            build_data["force_include"][str(path)] = str(path.relative_to(src))

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        # A wheel has taken its copies of the extension modules: leaving them in src/ would
        # shadow the source in this checkout (an editable install finds them first).
        if self.target_name == "wheel" and version != "editable":
            _remove_compiled(Path(self.root) / "src")


def _compile(src: Path, work: Path) -> list[Path]:
    from mypyc.build import mypycify
    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    if os.environ.get("GLASSBOX_TEST_BREAK_MYPYC"):  # lets a test prove the fallback
        raise SystemExit("GLASSBOX_TEST_BREAK_MYPYC is set")
    work.mkdir(parents=True, exist_ok=True)
    config = work / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    cwd = Path.cwd()
    os.chdir(src)  # module names come from the paths: glassbox/scan/x.py -> glassbox.scan.x
    try:
        extensions = mypycify(
            ["--config-file", str(config), "--python-version", "3.11", *COMPILED],
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
