"""Typed refusals: each names the link of the gate that failed, so a caller can act on it.

A refusal may have several reasons (an unknown publisher *and* a pickle the policy forbids);
the exception's class is that of the first, and ``reasons`` holds all of them, one line each,
which is exactly what the CLI prints before exiting 1. Every class is a
:class:`glassbox.errors.VerificationError`, so code that already maps Glassbox errors to exit
codes needs no change.
"""

from __future__ import annotations

from dataclasses import dataclass

from glassbox.errors import InputError, VerificationError


class PolicyError(InputError):
    """The trust policy file cannot be read or is invalid (its file, line and key named)."""


@dataclass(frozen=True)
class Reason:
    """One failed link: ``link`` is a stable word (``publisher``, ``files``, ``log``, ``scan``,
    ``pickle``, ``remote-code``, ``provenance``, ``store``), ``message`` a line a person can act
    on."""

    link: str
    message: str

    def __str__(self) -> str:
        return f"{self.link}: {self.message}"


class TrustRefused(VerificationError):
    """The gate refused the model; ``reasons`` lists every link that failed."""

    link = "gate"

    def __init__(self, model: str, reasons: list[Reason]) -> None:
        self.model = model
        self.reasons = list(reasons)
        lines = "; ".join(str(r) for r in self.reasons) or "refused"
        super().__init__(f"{model}: refused by the trust policy: {lines}")


class UnknownPublisher(TrustRefused):
    """No publisher the policy trusts for this model name signed it (or there is no signature)."""

    link = "publisher"


class ChangedFiles(TrustRefused):
    """Files differ from what the publisher signed (each one named)."""

    link = "files"


class LogProofMissing(TrustRefused):
    """No valid transparency-log proof (missing, forged, not cosigned, inconsistent)."""

    link = "log"


class ScanFindings(TrustRefused):
    """The scanner found something at or above the policy's ``fail-on`` (finding ids named)."""

    link = "scan"


class PickleRefused(TrustRefused):
    """A pickle-based file, which the policy does not allow (or which calls a forbidden name)."""

    link = "pickle"


class RemoteCodeRefused(TrustRefused):
    """``trust_remote_code`` asked for code the signature or the scan does not cover."""

    link = "remote-code"


class StoreTampered(TrustRefused):
    """Something in the verified store was not left there by Glassbox (a symbolic link, a
    directory where a file belongs): refused, never followed (``glassbox.trust.store``)."""

    link = "store"


class ProvenanceMissing(TrustRefused):
    """The policy requires signed provenance for these files and there is none that holds."""

    link = "provenance"


_BY_LINK: dict[str, type[TrustRefused]] = {
    cls.link: cls
    for cls in (
        UnknownPublisher,
        ChangedFiles,
        LogProofMissing,
        ScanFindings,
        PickleRefused,
        RemoteCodeRefused,
        ProvenanceMissing,
        StoreTampered,
    )
}


def refusal(model: str, reasons: list[Reason]) -> TrustRefused:
    """The exception for ``reasons``: typed by the first failed link."""
    cls = _BY_LINK.get(reasons[0].link, TrustRefused) if reasons else TrustRefused
    return cls(model, reasons)
