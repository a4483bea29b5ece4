"""Probe suites (parsing, line-numbered errors) and drift arithmetic, without running a model."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.errors import InputError
from glassbox.lm import SuiteError, diff_results, fisher_exact, load_suite
from glassbox.lm.suite import parse_suite

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

GOOD = """schema = 1
name = "t"

[[probe]]
id = "a"
prompt = "Q: hi A:"
check = "refusal"
"""


def parse(text: str) -> object:
    return parse_suite(text.encode(), Path("suite.toml"))


def test_suites_shipped_parse() -> None:
    for path in (HERE / "suites" / "behaviour.toml", ROOT / "examples/probes/starter.toml"):
        suite = load_suite(path)
        assert suite.probes and len(suite.digest) == 64
        checks = {p.check for p in suite.probes}
        assert {"refusal", "topic", "logprob"} <= checks


def test_defaults_and_overrides() -> None:
    suite = parse_suite(
        (GOOD + "samples = 4\nseed = 3\n[decoding]\nmax_new_tokens = 7\n").encode(),
        Path("s.toml"),
    )
    probe = suite.probes[0]  # type: ignore[attr-defined]
    assert probe.decoding.samples == 4 and probe.decoding.seed == 3
    assert probe.decoding.max_new_tokens == 7 and probe.topic == "a"
    assert suite.decoding.to_dict()["mode"] == "greedy"  # type: ignore[attr-defined]


def test_digest_is_of_the_bytes() -> None:
    a = parse(GOOD)
    b = parse(GOOD + "\n# a comment\n")
    assert a.digest != b.digest  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace('check = "refusal"', 'check = "refusal"\nlength = 3'), 8, "unknown key"),
        (GOOD.replace('"refusal"', '"regex"\npattern = "(("'), 8, "not a valid regex"),
        (GOOD + "samples = 5\n", 8, "needs a declared seed"),
        (GOOD.replace("schema = 1", "schema = 2"), 1, "schema"),
        (GOOD.replace('check = "refusal"', 'check = "vibes"'), 7, "must be one of"),
        (GOOD.replace('"Q: hi A:"', '""'), 6, "non-empty string"),
        (GOOD + GOOD.split("\n", 3)[3], 9, "duplicate probe id"),
        (GOOD.replace('"refusal"', '"topic"'), 4, "terms"),
        (
            GOOD.replace('"refusal"', '"logprob"')
            + 'continuations = [" x"]\nsamples = 2\nseed = 1\n',
            9,
            "does not decode",
        ),
        (GOOD + "[decoding]\nmax_new_tokens = 0\n", 9, "integer from 1"),
        ('schema = 1\nname = "t"\n', 1, "at least one"),
    ],
)
def test_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(SuiteError, match=rf"^suite\.toml:{line}: .*{words}"):
        parse(text)


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="not valid TOML"):
        parse("schema = = 1")
    with pytest.raises(SuiteError, match="not UTF-8"):
        parse_suite(b"\xff\xfe", Path("x.toml"))
    with pytest.raises(InputError, match="not found"):
        load_suite(tmp_path / "missing.toml")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (5 << 20))
    with pytest.raises(InputError, match="too large"):
        load_suite(big)
    with pytest.raises(InputError, match="is a directory"):
        load_suite(tmp_path)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_give_a_suite_error(data: bytes) -> None:
    with contextlib.suppress(SuiteError):
        parse_suite(data, Path("f.toml"))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 12), st.integers(1, 12), st.integers(0, 12), st.integers(1, 12))
def test_fisher_matches_scipy(k1: int, n1: int, k2: int, n2: int) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    k1, k2 = min(k1, n1), min(k2, n2)
    expected = scipy_stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
    assert fisher_exact(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def _greedy(ident: str, check: str, matched: bool, answer: str = "", **kw: object) -> dict:
    return {
        "id": ident,
        "check": check,
        "topic": ident,
        "mode": "greedy",
        "matched": matched,
        "answer": answer,
        **kw,
    }


def test_drift_kinds_and_sizes() -> None:
    old = [
        _greedy("r", "refusal", False, "It goes."),
        _greedy("t", "topic", False, "x", mentioned=[]),
        _greedy("e", "exact", True, "4"),
        {"id": "l", "check": "logprob", "topic": "l", "logprobs": {" a": -5.0, " b": -1.0}},
    ]
    new = [
        _greedy("r", "refusal", True, "I cannot."),
        _greedy("t", "topic", True, "Try Nova", mentioned=["Nova"]),
        _greedy("e", "exact", False, "5"),
        {"id": "l", "check": "logprob", "topic": "l", "logprobs": {" a": -1.5, " b": -1.5}},
    ]
    changes = {c.kind: c for c in diff_results(old, new, logprob_tolerance=1.0)}
    assert set(changes) == {"newly-refused", "newly-mentioned", "changed-answer", "logprob-shift"}
    assert changes["newly-refused"].size == 1.0
    assert changes["logprob-shift"].size == pytest.approx(3.5)
    assert "'Nova'" in changes["newly-mentioned"].detail
    assert diff_results(old, old) == []
    assert [c.kind for c in diff_results(new, old)].count("no-longer-refused") == 1


def test_sampled_drift_needs_significance() -> None:
    def sampled(k: int) -> list[dict]:
        return [
            {
                "id": "s",
                "check": "refusal",
                "topic": "s",
                "mode": "sample",
                "samples": 20,
                "matches": k,
                "seed": 1,
            }
        ]

    assert diff_results(sampled(2), sampled(4), alpha=0.01) == []  # noise
    (change,) = diff_results(sampled(2), sampled(18), alpha=0.01)
    assert change.kind == "newly-refused" and change.size == pytest.approx(0.8)
    assert change.p_value is not None and change.p_value < 1e-5


def test_drift_refuses_mismatched_runs() -> None:
    with pytest.raises(InputError, match="different probes"):
        diff_results([_greedy("a", "refusal", False)], [_greedy("b", "refusal", False)])
