"""Keras 3 models saved by the real ``keras`` package with the torch backend (issue 18).

The fixtures in ``tests/scan/keras3/`` were written by ``make_keras3.py``; one test re-runs it
with the installed Keras (skipped without it) so a new Keras release that serialises
differently is noticed here, not by a user whose ordinary model fails the gate.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glassbox.scan import Severity, scan_path
from glassbox.scan.context import ScanContext, Source
from glassbox.scan.keras import check_keras_config

HERE = Path(__file__).resolve().parent / "keras3"
ROOT = Path(__file__).resolve().parents[2]


def _rules(path: Path) -> list[tuple[str, Severity, str | None]]:
    return [(f.rule_id, f.severity, f.subject) for f in scan_path(path, workers=1).findings]


def test_torch_backend_model_with_a_compiled_optimizer_is_clean() -> None:
    report = scan_path(HERE / "torch-backend-adam.keras", workers=1)
    assert report.findings == []
    assert "zip" in report.file_formats["torch-backend-adam.keras"]


def test_torch_backend_lambda_layer_is_still_critical() -> None:
    got = _rules(HERE / "torch-backend-lambda.keras")
    assert ("GBX-KER-001", Severity.CRITICAL, "lambda") in got
    assert scan_path(HERE / "torch-backend-lambda.keras", workers=1).fails(Severity.HIGH)


def test_only_the_torch_optimizer_modules_are_trusted() -> None:
    """The torch backend's optimizer package is trusted, not the backend: its I/O, ``torch``
    itself and keras' file utilities stay findings."""

    def rules(module: str, cls: str) -> list[str]:
        ctx = ScanContext("config.json")
        check_keras_config(ctx, Source.of_bytes(b"", None), {"module": module, "class_name": cls})
        return [f.rule_id for f in ctx.findings]

    assert rules("keras.src.backend.torch.optimizers.torch_adam", "Adam") == []
    assert rules("keras.src.backend.torch.optimizers.torch_sgd", "SGD") == []
    assert rules("keras.src.backend.torch.core", "convert_to_tensor") != []
    assert rules("keras.src.backend.torch", "load") != []
    assert rules("keras.src.backend.torch.optimizersx", "Adam") != []
    assert rules("keras.src.utils.file_utils", "get_file") != []


def test_fixtures_match_what_the_installed_keras_saves(tmp_path: Path) -> None:
    if importlib.util.find_spec("keras") is None:  # not imported here: it picks a backend
        pytest.skip("keras is not installed")
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run(
        [sys.executable, "-m", "tests.scan.keras3.make_keras3", str(tmp_path)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert scan_path(tmp_path / "torch-backend-adam.keras", workers=1).findings == []
    got = _rules(tmp_path / "torch-backend-lambda.keras")
    assert ("GBX-KER-001", Severity.CRITICAL, "lambda") in got
