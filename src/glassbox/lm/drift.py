"""Behaviour drift between two versions of a model: the same probe suite's results, compared.

Each change has a kind, the probe and topic it concerns, and a size:

- ``newly-refused`` / ``no-longer-refused``: a refusal probe flipped (size: the change in
  refusal rate, 1.0 for a greedy probe);
- ``newly-mentioned`` / ``no-longer-mentioned``: a topic probe's answer names a term
  (a person, a product) it did not before, or stopped naming one;
- ``changed-answer``: an exact-answer probe's answer changed (size 1.0);
- ``check-changed``: a contains / regex probe's verdict flipped;
- ``logprob-shift``: a continuation's log-probability moved by more than the suite's
  tolerance (size: the shift in nats, new minus old).

Greedy probes are deterministic, so any flip is a change. A sampled probe compares match
counts with Fisher's exact test (two-sided) and reports a change only when p < the suite's
``alpha``; the p-value is part of the change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from glassbox.errors import InputError

_FLIP_KINDS = {
    "refusal": ("newly-refused", "no-longer-refused"),
    "contains": ("check-changed", "check-changed"),
    "regex": ("check-changed", "check-changed"),
    "exact": ("changed-answer", "changed-answer"),
}


@dataclass(frozen=True)
class Change:
    probe: str
    topic: str
    kind: str
    size: float
    detail: str
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "probe": self.probe,
            "topic": self.topic,
            "kind": self.kind,
            "size": round(self.size, 4),
            "detail": self.detail,
        }
        if self.p_value is not None:
            out["pValue"] = float(f"{self.p_value:.4g}")
        return out


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test on [[k1, n1-k1], [k2, n2-k2]]."""
    if not (0 <= k1 <= n1 and 0 <= k2 <= n2):
        raise ValueError("counts out of range")
    total, successes = n1 + n2, k1 + k2
    denom = math.comb(total, n1)
    low, high = max(0, successes - n2), min(successes, n1)

    def prob(k: int) -> float:
        return math.comb(successes, k) * math.comb(total - successes, n1 - k) / denom

    observed = prob(k1)
    p = sum(q for k in range(low, high + 1) if (q := prob(k)) <= observed * (1 + 1e-9))
    return min(1.0, p)


def _rate(result: dict[str, Any]) -> tuple[int, int]:
    """(matches, trials) of a decoding probe's result."""
    if result.get("mode") == "sample":
        return int(result["matches"]), int(result["samples"])
    return (1 if result.get("matched") else 0), 1


def _mentions(result: dict[str, Any]) -> dict[str, int]:
    if result.get("mode") == "sample":
        return {str(k): int(v) for k, v in dict(result.get("mentions", {})).items()}
    return {str(t): 1 for t in result.get("mentioned", [])}


def diff_results(
    old: list[dict[str, Any]],
    new: list[dict[str, Any]],
    *,
    logprob_tolerance: float = 1.0,
    alpha: float = 0.01,
) -> list[Change]:
    """The changes from ``old`` to ``new`` (results of the same suite), probe by probe."""
    old_by = {r["id"]: r for r in old}
    new_by = {r["id"]: r for r in new}
    if set(old_by) != set(new_by):
        missing = sorted(set(old_by) ^ set(new_by))
        raise InputError(f"the two runs have different probes ({', '.join(missing[:5])})")
    changes: list[Change] = []
    for ident in sorted(old_by):
        a, b = old_by[ident], new_by[ident]
        if a.get("check") != b.get("check"):
            raise InputError(f"probe {ident!r} has different checks in the two runs")
        changes += _diff_probe(ident, a, b, logprob_tolerance, alpha)
    return changes


def _diff_probe(
    ident: str, a: dict[str, Any], b: dict[str, Any], tolerance: float, alpha: float
) -> list[Change]:
    check, topic = str(a["check"]), str(a.get("topic", ident))
    if check == "logprob":
        out = []
        la, lb = dict(a.get("logprobs", {})), dict(b.get("logprobs", {}))
        for cont in sorted(set(la) & set(lb)):
            shift = float(lb[cont]) - float(la[cont])
            if abs(shift) > tolerance:
                out.append(
                    Change(
                        ident,
                        topic,
                        "logprob-shift",
                        shift,
                        f"log p({cont!r}) {float(la[cont]):.3f} -> {float(lb[cont]):.3f} nats",
                    )
                )
        return out
    sampled = a.get("mode") == "sample" or b.get("mode") == "sample"
    if check == "topic":
        ma, mb = _mentions(a), _mentions(b)
        _, na = _rate(a)
        _, nb = _rate(b)
        out = []
        for term in sorted(set(ma) | set(mb)):
            ka, kb = ma.get(term, 0), mb.get(term, 0)
            change = _significant(ka, na, kb, nb, sampled, alpha)
            if change is None:
                continue
            size, p = change
            kind = "newly-mentioned" if size > 0 else "no-longer-mentioned"
            out.append(
                Change(ident, topic, kind, size, f"{term!r}: {ka}/{na} -> {kb}/{nb} answers", p)
            )
        return out
    ka, na = _rate(a)
    kb, nb = _rate(b)
    if check == "exact" and not sampled and a.get("answer") != b.get("answer"):
        return [
            Change(
                ident,
                topic,
                "changed-answer",
                1.0,
                f"{a.get('answer')!r} -> {b.get('answer')!r}",
            )
        ]
    change = _significant(ka, na, kb, nb, sampled, alpha)
    if change is None:
        return []
    size, p = change
    up, down = _FLIP_KINDS[check]
    detail = f"matched {ka}/{na} -> {kb}/{nb}"
    if not sampled:
        detail += f": {a.get('answer')!r} -> {b.get('answer')!r}"
    return [Change(ident, topic, up if size > 0 else down, size, detail, p)]


def _significant(
    ka: int, na: int, kb: int, nb: int, sampled: bool, alpha: float
) -> tuple[float, float | None] | None:
    """(rate change, p-value or None) when the rates differ significantly, else None."""
    size = kb / nb - ka / na
    if size == 0:
        return None
    if not sampled:
        return size, None
    p = fisher_exact(ka, na, kb, nb)
    return (size, p) if p < alpha else None


def diff_runs(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    logprob_tolerance: float = 1.0,
    alpha: float = 0.01,
) -> dict[str, Any]:
    """Compare two probe predicates (``ProbeRun.to_dict`` or an attestation's predicate)."""
    digests = {str(side.get("suite", {}).get("digest", {}).get("sha256")) for side in (old, new)}
    if len(digests) != 1:
        raise InputError("the two results come from different probe suites (digests differ)")
    changes = diff_results(
        list(old["results"]), list(new["results"]), logprob_tolerance=logprob_tolerance, alpha=alpha
    )
    return {
        "suite": old.get("suite", {}),
        "old": old.get("model"),
        "new": new.get("model"),
        "changes": [c.to_dict() for c in changes],
        "summary": _summary(changes),
    }


def _summary(changes: list[Change]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in changes:
        name = c.detail.split(":", 1)[0].strip("'") if c.kind.endswith("mentioned") else c.topic
        bucket = out.setdefault(c.kind, [])
        if name not in bucket:
            bucket.append(name)
    return out
