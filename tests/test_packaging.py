"""Packaging: the install paths the README promises.

The full proofs (the README's first command in a fresh clone, a wheel from an sdist in a fresh
venv) run in ``scripts/check-install`` as part of ``scripts/check``; here are the pieces cheap
enough for the test suite: which command CI takes from the README, and the build hook's fallback
to pure Python when compiling fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WARNING = "compiling the scanner with mypyc failed"


def readme_command(which: str) -> str:
    done = subprocess.run(
        [str(ROOT / "scripts" / "readme-command"), which],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_ci_takes_the_readme_commands_verbatim() -> None:
    setup = readme_command("setup")
    readme = (ROOT / "README.md").read_text()
    assert setup in readme.splitlines()
    assert setup.startswith("python3 -m venv .venv")
    assert "pip install torch==2.13.0" in setup
    assert setup.endswith("glassbox quickstart")
    assert readme_command("test") == "scripts/check"
    # .ci/run calls the README's test command and scripts/check proves the first one.
    assert "scripts/check" in (ROOT / ".ci" / "run").read_text()
    assert "check-install readme" in (ROOT / "scripts" / "check").read_text()


def test_readme_command_refuses_a_readme_without_set_up(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "readme-command", tmp_path / "scripts")
    (tmp_path / "README.md").write_text("# Nothing\n\n## Set-up\n\nNo commands here.\n")
    done = subprocess.run(
        [str(tmp_path / "scripts" / "readme-command"), "setup"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "no set-up command 1" in done.stderr


def _tracked_copy(dest: Path) -> Path:
    """The checkout's tracked files (what a clone has), without any compiled modules."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for raw in names:
        if not raw:
            continue
        src = ROOT / raw.decode()
        if src.is_file():
            target = dest / raw.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


@pytest.mark.slow
@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param({"GLASSBOX_TEST_BREAK_MYPYC": "1"}, id="mypy-exits"),
        pytest.param({"CC": "/bin/false", "LDSHARED": "/bin/false"}, id="no-compiler"),
    ],
)
def test_a_failed_compile_installs_pure_python_with_one_warning(
    tmp_path: Path, breakage: dict[str, str]
) -> None:
    pytest.importorskip("hatchling")
    pytest.importorskip("mypyc")
    source = _tracked_copy(tmp_path / "src")
    env = {k: v for k, v in os.environ.items() if k != "GLASSBOX_PURE_PYTHON"}
    env.update(breakage)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert output.count(WARNING) == 1, output[-3000:]
    (wheel,) = (tmp_path / "dist").glob("glassbox-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "glassbox/scan/pickle_ops.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    assert "glassbox/examples/digits/recipe.toml" in names
    # Nothing half-built is left in the source tree to shadow the modules.
    assert not list((source / "src").rglob("*.so"))
