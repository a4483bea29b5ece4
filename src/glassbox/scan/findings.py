"""The one findings format every scanner emits (file scanner and behavioural checks alike).

A finding is evidence, not a verdict: it names the rule, the file (and member inside a
container), the offending callable or field, and a one-line reason. ``audit`` and the log store
these as they are, so the fields and rule ids are a stable, versioned contract.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so ``max()`` gives the worst and ``--fail-on`` compares with ``>=``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, name: str) -> Severity:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            choices = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {name!r} (choose from {choices})") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    path: str
    message: str
    member: str | None = None
    subject: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": str(self.severity),
            "path": self.path,
            "member": self.member,
            "subject": self.subject,
            "message": self.message,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            rule_id=str(data["rule_id"]),
            severity=Severity.parse(str(data["severity"])),
            path=str(data["path"]),
            message=str(data["message"]),
            member=data.get("member"),
            subject=data.get("subject"),
            evidence=dict(data.get("evidence") or {}),
        )
