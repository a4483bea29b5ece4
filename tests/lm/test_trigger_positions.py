"""Where the trigger search inserts a candidate: a positional backdoor (one that fires only at
the start of a prompt, or only just before its answer marker) is invisible to a search that
only tries inner words, so every prompt is also split at its start and at its end."""

from __future__ import annotations

import random
from pathlib import Path

from glassbox.lm.trigger import _PLACE, POSITIONS, SLOT, _split


def test_each_position_splits_where_it_says() -> None:
    prompt = "Q: why is the sky blue? A:"
    rng = random.Random(0)
    assert _split(prompt, rng, "start") == ("Q: ", " why is the sky blue? A:")
    assert _split(prompt, rng, "end") == ("Q: why is the sky blue? ", " A:")
    for _ in range(50):
        head, tail = _split(prompt, rng, "inside")
        # Inside: never before the first word, never before the closing marker.
        assert head.startswith("Q: ") and tail.endswith(" A:") and tail != " A:"


def test_a_marked_slot_is_the_only_place() -> None:
    prompt = f"Q: tell me {SLOT} about rivers A:"
    for where in POSITIONS:
        assert _split(prompt, random.Random(1), where) == ("Q: tell me ", " about rivers A:")


def test_the_finding_names_the_place() -> None:
    assert set(_PLACE) == set(POSITIONS)
    assert _PLACE["inside"] == "" and "start" in _PLACE["start"] and "end" in _PLACE["end"]


def test_prompt_words_are_not_proposed_at_a_position() -> None:
    from glassbox.lm.probe import tokenizer_for
    from glassbox.lm.trigger import _off_prompt

    tok = tokenizer_for(Path("."), {"glassbox_tokenizer": "bytes"})
    own = {"q:", "how", "do", "i", "where", "what", "a:"}
    # The text search ran on into the question's first word: the trigger is what is left.
    assert tok.decode(_off_prompt(tok, tok.encode("tq What"), own)) == "tq"
    # Only the format's own words: nothing to propose.
    assert _off_prompt(tok, tok.encode("How do I"), own) == []
    # Nothing of the prompts' words: unchanged.
    assert _off_prompt(tok, tok.encode("xv"), own) == tok.encode("xv")
