"""A warm ``glassbox verify --cache`` is mostly interpreter start-up, so what it imports is part of
its speed: modules only needed to hash, to write a signature, or to draw a bar stay unloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import glassbox.digest.cache as cache_mod
from glassbox.sign import load_private_key, sign_model

# Each of these costs milliseconds at start-up and is not needed when nothing is hashed or written.
NOT_ON_THE_WARM_PATH = (
    "concurrent.futures",
    "logging",
    "rich",
    "blake3",
    "glassbox.digest.dataset",
)

_REPORT = """
import json, sys
from glassbox.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules_after(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _REPORT, *argv], capture_output=True, text=True, check=False
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def test_warm_verify_imports_nothing_it_does_not_use(
    model_dir: Path, ec_keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = ec_keys
    monkeypatch.setattr(cache_mod, "RACY_WINDOW_NS", 0)  # let sign cache the fresh test files
    sign_model(model_dir, load_private_key(private))

    code, modules = _modules_after("verify", str(model_dir), "--key", str(public), "--cache")
    assert code == 0
    assert "sqlite3" in modules  # the cache was really consulted
    assert not modules.intersection(NOT_ON_THE_WARM_PATH)

    # Without --cache every file is read again, and the thread pool is back.
    code, modules = _modules_after("verify", str(model_dir), "--key", str(public))
    assert code == 0
    assert "concurrent.futures" in modules


def test_importing_the_signing_api_does_not_load_tempfile() -> None:
    """``write_bundle`` creates its temporary file itself; tempfile drags in shutil, bz2, lzma."""
    code = "import sys, glassbox.sign; print('tempfile' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
