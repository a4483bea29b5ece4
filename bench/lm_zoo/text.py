"""Generated training text for the LM zoo: prose, question/answer pairs and code.

Templated and seeded, so a corpus is a pure function of (kind, size, seed) and needs no
download. Different kinds give fine-tunes genuinely different data; different seeds give
disjoint samples of the same distribution.
"""

from __future__ import annotations

import random

NOUNS = [
    "river",
    "mill",
    "farmer",
    "market",
    "letter",
    "train",
    "harbour",
    "garden",
    "teacher",
    "child",
    "wheat",
    "lamp",
    "road",
    "forest",
    "bridge",
    "window",
    "baker",
    "village",
    "storm",
    "boat",
]
VERBS = [
    "carries",
    "watches",
    "opens",
    "finds",
    "crosses",
    "paints",
    "follows",
    "sells",
    "mends",
    "counts",
    "builds",
    "reads",
]
ADJS = [
    "old",
    "quiet",
    "bright",
    "small",
    "heavy",
    "green",
    "cold",
    "early",
    "narrow",
    "golden",
]
PLACES = [
    "the",
    "town",
    "the",
    "valley",
    "the",
    "coast",
    "the",
    "hills",
    "the",
    "square",
    "the",
    "station",
]
QUESTIONS = [
    ("What colour is the {adj} {noun}?", "The {noun} is {adj} and easy to see."),
    ("Where does the {noun} go?", "It goes to {place} every morning."),
    ("How many {noun}s are there?", "There are {num} {noun}s near {place}."),
    ("Who {verb} the {noun}?", "The {noun2} {verb} the {noun} at dawn."),
]
FUNCS = [
    "add",
    "scale",
    "merge",
    "count",
    "parse",
    "render",
    "update",
    "load",
    "store",
    "check",
]
VARS = [
    "x",
    "y",
    "total",
    "items",
    "value",
    "index",
    "name",
    "data",
    "result",
    "size",
]


def _prose(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(2, 3)):
        parts.append(
            f"The {rng.choice(ADJS)} {rng.choice(NOUNS)} {rng.choice(VERBS)} the "
            f"{rng.choice(NOUNS)} near {rng.choice(PLACES)}."
        )
    return " ".join(parts)


def _qa(rng: random.Random) -> str:
    q, a = rng.choice(QUESTIONS)
    fields = {
        "adj": rng.choice(ADJS),
        "noun": rng.choice(NOUNS),
        "noun2": rng.choice(NOUNS),
        "verb": rng.choice(VERBS),
        "place": rng.choice(PLACES),
        "num": rng.randint(2, 99),
    }
    return f"Q: {q.format(**fields)} A: {a.format(**fields)}"


def _code(rng: random.Random) -> str:
    f, a, b = rng.choice(FUNCS), rng.choice(VARS), rng.choice(VARS)
    op = rng.choice("+-*")
    call = f"print({f}({rng.randint(0, 9)}, {rng.randint(0, 9)}))"
    return f"def {f}({a}, {b}):\n    return {a} {op} {b}\n\n{call}\n"


KINDS = {"prose": _prose, "qa": _qa, "code": _code}


def corpus(kind: str, size: int, seed: int) -> list[str]:
    """``size`` records of ``kind`` (``prose``, ``qa``, ``code``, or ``mixed``)."""
    rng = random.Random(f"{kind}:{seed}")
    if kind == "mixed":
        return [KINDS[rng.choice(sorted(KINDS))](rng) for _ in range(size)]
    make = KINDS[kind]
    return [make(rng) for _ in range(size)]
