"""Verdicts: one per link of the chain, each carrying the evidence it rests on.

There are three outcomes and no fourth. ``unknown`` is what missing, unreadable or unauthenticated
evidence gives: a link never passes for lack of a reason to fail it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.Enum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


# The chain, in the order the report draws it; each name is also a ``--require`` policy term.
LINKS: tuple[str, ...] = ("integrity", "transparency", "provenance", "safety", "openness")

LINK_TITLES = {
    "integrity": "Integrity",
    "transparency": "Transparency",
    "provenance": "Provenance",
    "safety": "Safety",
    "openness": "Openness",
}

LINK_QUESTIONS = {
    "integrity": "Are the files exactly what a trusted producer signed?",
    "transparency": "Is the release publicly recorded in an append-only log?",
    "provenance": "Was it built from declared inputs, and can it be rebuilt?",
    "safety": "Is it free of malicious payloads?",
    "openness": "How open is it (MOF v1.0, OSAID 1.0)?",
}


@dataclass
class LinkResult:
    """The verdict on one link, its one-line reason, and everything behind it."""

    link: str
    verdict: Verdict
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def unknown(cls, link: str, summary: str, **evidence: Any) -> LinkResult:
        return cls(link, Verdict.UNKNOWN, summary, dict(evidence))

    @classmethod
    def fail(cls, link: str, summary: str, **evidence: Any) -> LinkResult:
        return cls(link, Verdict.FAIL, summary, dict(evidence))

    @classmethod
    def passed(cls, link: str, summary: str, **evidence: Any) -> LinkResult:
        return cls(link, Verdict.PASS, summary, dict(evidence))

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "title": LINK_TITLES[self.link],
            "question": LINK_QUESTIONS[self.link],
            "verdict": self.verdict.value,
            "summary": self.summary,
            "evidence": self.evidence,
            "details": list(self.details),
            "findings": list(self.findings),
        }


def is_advisory(result: LinkResult, required: frozenset[str]) -> bool:
    """A link the policy does not require and that did not pass: shown as advisory (its own
    neutral word and colour), not as a red failure, because it cannot change the exit code.
    A passing advisory link is shown as a pass: there is nothing to warn about."""
    return result.link not in required and result.verdict is not Verdict.PASS


def unavailable(link: str, part: str, missing: str) -> LinkResult:
    """The verdict when the Glassbox part that checks this link is not installed or not built."""
    return LinkResult.unknown(
        link, f"{part} not available: {missing}", part=part, unavailable=missing
    )
