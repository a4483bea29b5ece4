"""SPDX expression parsing and the reviewed open-licence lists."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glassbox.bom import OPEN_DATA, OSI_APPROVED, LicenseKind, canonical_id, kind_of
from glassbox.bom import parse_expression as parse
from glassbox.errors import InputError

OSI = {LicenseKind.OSI}


def test_lists_are_disjoint_and_exclude_restrictive_licences() -> None:
    assert not OSI_APPROVED & OPEN_DATA
    for restricted in ("CC-BY-NC-4.0", "CC-BY-ND-4.0", "llama3", "openrail", "SSPL-1.0"):
        assert kind_of(restricted) is LicenseKind.NOT_OPEN


def test_hugging_face_lower_case_ids_are_canonicalised() -> None:
    assert canonical_id("apache-2.0") == "Apache-2.0"
    assert canonical_id("cc-by-4.0") == "CC-BY-4.0"
    assert canonical_id("GPL-3.0") == "GPL-3.0-only"
    assert kind_of("mit") is LicenseKind.OSI


@pytest.mark.parametrize(
    ("text", "open_"),
    [
        ("MIT", True),
        ("MIT OR LicenseRef-proprietary", True),
        ("MIT AND LicenseRef-proprietary", False),
        ("(MIT AND BSD-3-Clause) OR llama2", True),
        ("GPL-2.0-only WITH Classpath-exception-2.0", True),
        ("Apache-2.0 with LLVM-exception", True),
        ("CC-BY-4.0", False),
        ("GPL-2.0+", True),
    ],
)
def test_expressions_are_evaluated_under_spdx_precedence(text: str, open_: bool) -> None:
    assert parse(text).satisfies(OSI) is open_


def test_with_binds_tighter_than_and_than_or() -> None:
    expr = parse("A OR B AND C WITH E")
    assert expr.op == "OR"
    assert expr.args[1].op == "AND"
    assert expr.args[1].args[1].op == "WITH"


@pytest.mark.parametrize(
    "text", ["", "MIT OR", "(MIT", "MIT)", "AND MIT", "MIT WITH", "MIT $ BSD", "x" * 2000]
)
def test_malformed_expressions_are_input_errors(text: str) -> None:
    with pytest.raises(InputError):
        parse(text)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(InputError, match="nested too deeply"):
        parse("(" * 100 + "MIT" + ")" * 100)


IDS = st.sampled_from(sorted(OSI_APPROVED) + sorted(OPEN_DATA) + ["LicenseRef-x", "llama2"])


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(IDS)
    op = draw(st.sampled_from(["AND", "OR"]))
    left = draw(expressions(depth + 1))
    right = draw(expressions(depth + 1))
    return f"({left} {op} {right})"


@given(expressions())
def test_printing_and_reparsing_is_stable(text: str) -> None:
    expr = parse(text)
    again = parse(str(expr))
    assert again.satisfies(OSI) == expr.satisfies(OSI)
    assert sorted(again.ids()) == sorted(canonical_id(i) for i in expr.ids())


@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_input_error(text: str) -> None:
    with contextlib.suppress(InputError):
        parse(text)
