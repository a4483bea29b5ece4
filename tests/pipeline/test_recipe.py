"""Recipe parsing: strict keys, errors that name the line and the fix, digest checks."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.errors import VerificationError
from glassbox.pipeline import RecipeError, load_recipe, parse_recipe
from glassbox.pipeline.inputs import check_declared, resolve_inputs
from glassbox.pipeline.recipe import _is_spdx_expression
from glassbox.tomlkeys import key_lines
from tests.pipeline.conftest import EXAMPLE, change_label, copy_example


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_example_recipe_parses() -> None:
    recipe = load_recipe(EXAMPLE / "recipe.toml")
    assert recipe.name == "digits-mlp"
    assert recipe.entry == "train:train"
    assert recipe.factory == "model:build"
    assert [d.name for d in recipe.datasets] == ["train", "test"]
    assert recipe.threads == 1 and recipe.cpu_capability == "default"
    params = recipe.parameters()
    assert params["hyperparameters"]["steps"] == 400
    assert params["model"] == {"factory": "model:build", "config": {"hidden": 32}}
    assert params["recipe"] == "recipe.toml"


def test_directory_means_recipe_toml() -> None:
    assert load_recipe(EXAMPLE).source == EXAMPLE / "recipe.toml"


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    recipe = copy_example(
        tmp_path / "d",
        {'licence = "BSD-3-Clause"\n\n[[datasets]]': 'licnce = "BSD-3-Clause"\n\n[[datasets]]'},
    )
    text = recipe.read_text()
    with pytest.raises(RecipeError) as err:
        load_recipe(recipe)
    message = str(err.value)
    assert f"recipe.toml:{line_of(text, 'licnce')}:" in message
    assert "unknown key 'licnce'" in message and "did you mean 'licence'" in message


def test_unknown_top_level_table(tmp_path: Path) -> None:
    recipe = copy_example(tmp_path / "d", {"[run]": "[runn]"})
    with pytest.raises(
        RecipeError, match=r"recipe.toml:\d+: unknown key 'runn'.*did you mean 'run'"
    ):
        load_recipe(recipe)


def test_missing_dataset_names_line(tmp_path: Path) -> None:
    recipe = copy_example(tmp_path / "d", {"data/digits-test.jsonl": "data/missing.jsonl"})
    text = recipe.read_text()
    with pytest.raises(RecipeError) as err:
        load_recipe(recipe)
    assert f":{line_of(text, 'missing.jsonl')}:" in str(err.value)
    assert "'test' path 'data/missing.jsonl' not found" in str(err.value)


def test_missing_required_key(tmp_path: Path) -> None:
    recipe = copy_example(tmp_path / "d", {'entry = "train:train"\n': ""})
    with pytest.raises(RecipeError, match=r"missing 'entry' in code: add entry = "):
        load_recipe(recipe)


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ('licence = "Apache-2.0"', 'licence = "Apache licence"', "not an SPDX expression"),
        ('entry = "train:train"', 'entry = "train.py"', "is not 'module:function'"),
        ("seed = 20240601", 'seed = "x"', "'seed' must be an integer"),
        ("threads = 1", "threads = 0", "'threads' must be an integer >= 1"),
        ('cpu_capability = "default"', 'cpu_capability = "fast"', "not an ATEN_CPU_CAPABILITY"),
        (
            'keep = ["model.safetensors", "metrics.json"]',
            'keep = ["../escape"]',
            "inside the output",
        ),
        ('keep = ["model.safetensors", "metrics.json"]', "keep = []", "non-empty list"),
        ("records = 359", "records = 0", "'records' must be an integer >= 1"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    recipe = copy_example(tmp_path / "d", {old: new})
    text = recipe.read_text()
    with pytest.raises(RecipeError, match=pattern) as err:
        load_recipe(recipe)
    assert f"recipe.toml:{line_of(text, new)}:" in str(err.value)


def test_bad_commitment_shape(tmp_path: Path) -> None:
    recipe = copy_example(tmp_path / "d", {'commitment = "00bb': 'commitment = "zz00bb'})
    with pytest.raises(RecipeError, match="64-digit hex root"):
        load_recipe(recipe)


def test_invalid_toml_reports_position(tmp_path: Path) -> None:
    path = tmp_path / "recipe.toml"
    path.write_text('name = "x"\nversion = \n')
    with pytest.raises(RecipeError, match=r"not valid TOML: .*line 2"):
        load_recipe(path)


def test_nesting_bomb_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "recipe.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(RecipeError, match="too deeply"):
        load_recipe(path)


def test_not_utf8_and_too_big(tmp_path: Path) -> None:
    path = tmp_path / "recipe.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(RecipeError, match="not UTF-8"):
        load_recipe(path)
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(RecipeError, match="too large to be a recipe file"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.toml")


def test_changed_dataset_is_refused_with_line_and_fix(tmp_path: Path) -> None:
    recipe_path = copy_example(tmp_path / "d")
    change_label(tmp_path / "d" / "data" / "digits-train.jsonl", 7)
    recipe = load_recipe(recipe_path)
    inputs = resolve_inputs(recipe)
    with pytest.raises(VerificationError) as err:
        check_declared(recipe, inputs)
    message = str(err.value)
    line = line_of(recipe_path.read_text(), "ad66c95b")
    assert f"recipe.toml:{line}:" in message
    assert "dataset 'train'" in message
    assert f'set commitment = "{inputs.datasets["train"].root.hex()}"' in message


def test_key_lines_tracks_array_tables() -> None:
    text = '[[datasets]]\nname = "a"\n\n[[datasets]]\nname = "b"\npath = "p"\n[run]\nseed = 1\n'
    lines = key_lines(text)
    assert lines["datasets.0.name"] == 2
    assert lines["datasets.1.path"] == 6
    assert lines["run.seed"] == 8


@pytest.mark.parametrize(
    ("expr", "ok"),
    [
        ("MIT", True),
        ("Apache-2.0 OR MIT", True),
        ("(MIT AND BSD-3-Clause) OR GPL-2.0-only WITH Classpath-exception-2.0", True),
        ("LicenseRef-Proprietary", True),
        ("GPL-2.0+", True),
        ("MIT licence", False),
        ("MIT AND", False),
        ("(MIT", False),
        ("MIT)", False),
        ("", False),
        ("see LICENSE file", False),
    ],
)
def test_spdx_syntax(expr: str, ok: bool) -> None:
    assert _is_spdx_expression(expr) is ok


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_gives_recipe_error_only(text: str) -> None:
    with contextlib.suppress(RecipeError):
        parse_recipe(text, Path("/nonexistent/recipe.toml"))


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "version", "licence", "code", "run", "outputs", "model", "extra"]),
        st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
    )
)
def test_wrongly_typed_tables_give_recipe_error(fields: dict[str, object]) -> None:
    import json

    text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in fields.items())
    with contextlib.suppress(RecipeError):
        parse_recipe(text, Path("/nonexistent/recipe.toml"))


@pytest.mark.parametrize("size", [None, (1 << 20) + 1])
def test_oversized_or_endless_recipe_is_refused_without_reading_it_all(
    tmp_path: Path, size: int | None
) -> None:
    if size is None:
        source = Path("/dev/zero")  # endless: an unbounded read would never return
    else:
        source = tmp_path / "big.toml"
        source.write_bytes(b"#" * size)
    with pytest.raises(RecipeError, match="too large to be a recipe file"):
        load_recipe(source)
