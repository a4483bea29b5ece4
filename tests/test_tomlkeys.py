"""``TomlValidator``: the base the recipe, pipeline, trust policy and probe suite validators
share. Each file kind refuses an unknown key with its own error type (exit code 2), naming
the file and the key's line, in its own wording; and the shared type checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from glassbox.errors import InputError
from glassbox.lm.suite import SuiteError, parse_suite
from glassbox.pipeline.recipe import RecipeError, parse_recipe
from glassbox.pipeline.spec import PipelineError, parse_pipeline
from glassbox.tomlkeys import TomlValidator, is_integer, is_string_list
from glassbox.trust.policy import PolicyError, parse_policy


def _suite(text: str, source: Path) -> Any:
    return parse_suite(text.encode(), source)


# Each kind with a file whose third line holds a misspelt top-level key, and its wording.
KINDS: list[tuple[str, Callable[[str, Path], Any], type[InputError], str]] = [
    ("recipe.toml", parse_recipe, RecipeError, "unknown key 'nmae' in top level"),
    ("pipeline.toml", parse_pipeline, PipelineError, "unknown key 'nmae' ("),
    ("policy.toml", parse_policy, PolicyError, "nmae: unknown key; allowed: code, log, "),
    ("suite.toml", _suite, SuiteError, "nmae: unknown key (allowed: "),
]


@pytest.mark.parametrize(("name", "parse", "error", "wording"), KINDS)
def test_each_kind_refuses_an_unknown_key_naming_file_and_line(
    tmp_path: Path,
    name: str,
    parse: Callable[[str, Path], Any],
    error: type[InputError],
    wording: str,
) -> None:
    source = tmp_path / name
    with pytest.raises(error) as caught:
        parse("# first\n# second\nnmae = 'x'\n", source)
    message = str(caught.value)
    assert message.startswith(f"{source}:3: ") and wording in message, message
    assert caught.value.exit_code == 2 and "\n" not in message


def test_the_base_words_and_locates_by_default(tmp_path: Path) -> None:
    class Check(TomlValidator):
        pass

    check = Check(tmp_path / "x.toml", {}, {"a": 2, "a.bx": 4})
    with pytest.raises(InputError, match=r"x\.toml:4: unknown key 'bx' \(did you mean 'b'\?\)"):
        check.unknown({"b": 1, "bx": 2}, {"b", "cc"}, ["a"])
    with pytest.raises(InputError, match=r"x\.toml:2: unknown key 'zz' \(allowed: b, cc\)"):
        check.unknown({"zz": 1}, {"b", "cc"}, ["a"])
    check.unknown({"b": 1}, {"b"}, [])  # nothing unknown: no error


@pytest.mark.parametrize(
    ("value", "integer", "strings"),
    [
        (3, True, False),
        (True, False, False),
        (3.0, False, False),
        (["a", "b"], False, True),
        ([], False, True),
        (["a", ""], False, False),
        (["a", 1], False, False),
        ("ab", False, False),
    ],
)
def test_shared_type_checks(value: object, integer: bool, strings: bool) -> None:
    assert is_integer(value) is integer
    assert is_string_list(value) is strings
