"""The three commands: thin layers with --json and the documented exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from tests.pipeline.conftest import Built

pytestmark = pytest.mark.slow


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_undeclared_read_is_reported_and_strict_fails(
    example_copy: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret-labels.txt"
    secret.write_text("7\n")
    recipe = example_copy()
    train = recipe.parent / "train.py"
    train.write_text(
        train.read_text().replace(
            "    params = ctx.params\n",
            f"    params = ctx.params\n    open({str(secret)!r}).read()\n",
        )
    )
    # Relative paths, as typed at a shell: the training child runs in another directory.
    monkeypatch.chdir(tmp_path)
    code, out, _ = invoke("build", "digits/recipe.toml", "--out", "out", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["hermetic"] is False
    assert result["undeclared_reads"] == [str(secret)]
    statement = json.loads((tmp_path / "out" / "provenance.intoto.json").read_text())
    herm = next(
        b for b in statement["predicate"]["runDetails"]["byproducts"] if b["name"] == "hermeticity"
    )
    assert herm["annotations"]["undeclared_reads"] == [str(secret)]

    # A rebuild reproduces the bytes, and says that neither run was hermetic.
    code, out, _ = invoke("rebuild", "out", "--json")
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "bit-identical"
    assert any(n.startswith("the recorded build was not hermetic") for n in report["notes"])
    assert any(n.startswith("the rebuild read or wrote undeclared") for n in report["notes"])

    code, _, err = invoke("build", str(recipe), "--out", str(tmp_path / "strict"), "--strict")
    assert code == 1
    assert "not hermetic" in err and str(secret) in err


def test_rebuild_and_spot_check_json(built: Built) -> None:
    code, out, _ = invoke("rebuild", str(built.out), "--pub", str(built.public_key), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["verdict"] == "bit-identical" and report["exact"] is True
    code, out, _ = invoke("spot-check", str(built.out), "--segments", "1", "--seed", "5", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["passed"] is True and report["seed"] == 5 and report["compute_fraction"] == 0.25


def test_bad_input_exits_2(tmp_path: Path) -> None:
    (tmp_path / "recipe.toml").write_text("name = \n")
    code, _, err = invoke("build", str(tmp_path / "recipe.toml"), "--out", str(tmp_path / "o"))
    assert code == 2 and "not valid TOML" in err
    code, _, err = invoke("rebuild", str(tmp_path / "missing.json"))
    assert code == 2 and "provenance not found" in err
    code, _, err = invoke("spot-check", str(tmp_path / "missing.json"), "--segments", "2")
    assert code == 2


def test_spot_check_text_names_swapped_checkpoints(built: Built, tmp_path: Path) -> None:
    import shutil

    from glassbox.pipeline.spotcheck import choose_segments
    from glassbox.pipeline.trail import checkpoint_name

    out = tmp_path / "swapped"
    shutil.copytree(built.out, out)
    a, b = out / "checkpoints" / checkpoint_name(10), out / "checkpoints" / checkpoint_name(20)
    a.rename(out / "tmp")
    b.rename(a)
    (out / "tmp").rename(b)
    # Seed 1 picks the three segments touching the swapped files: all fail before any replay.
    assert choose_segments(4, 3, 1) == [0, 1, 2]
    code, text, _ = invoke("spot-check", str(out), "--segments", "3", "--seed", "1")
    assert code == 1
    lines = text.splitlines()
    assert (
        lines[0] == "spot-check FAILED: 3 of 4 segments (seed 1), 0.0% of training steps replayed"
    )
    assert sum("FAIL steps" in line and "forged or swapped" in line for line in lines) == 3
