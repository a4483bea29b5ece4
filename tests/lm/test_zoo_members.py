"""The LM zoo's member table (``bench/lm_zoo/zoo.py``): every member is built with the
architecture of the root of its chain, so a transform of a fine-tune of a larger base loads its
parent's weights (a regression: ``prune-C-qa`` took its parent's unset default size)."""

from __future__ import annotations

import pytest
from bench.lm_zoo.zoo import SIZES, member_size, members


@pytest.mark.parametrize("small", [True, False])
def test_a_member_is_built_at_its_parents_size(small: bool) -> None:
    specs = members(small)
    by_name = {m.name: m for m in specs}
    for member in specs:
        assert member_size(member, by_name) in SIZES
        if member.parent is not None and member.mode != "distill":
            assert member_size(member, by_name) == member_size(by_name[member.parent], by_name)


def test_the_transform_of_a_large_fine_tune_is_large() -> None:
    by_name = {m.name: m for m in members(False)}
    assert member_size(by_name["prune-C-qa"], by_name) == "l"
    assert member_size(by_name["int8-D-qa"], by_name) == "s"
    assert member_size(by_name["distill-A"], by_name) == by_name["distill-A"].size
