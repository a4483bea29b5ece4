"""One error hierarchy for every part, so the CLI can map failures to exit codes.

Exit codes are part of the contract scripts rely on: 0 success, 1 a verification (or policy)
failed, 2 bad usage or unreadable / malformed input. Every message names the file and the problem
in one line.
"""

from __future__ import annotations


class GlassboxError(Exception):
    """Base class; ``exit_code`` tells the CLI how to end."""

    exit_code = 2


class InputError(GlassboxError):
    """Bad usage, or input that cannot be read or parsed (missing, truncated, hostile)."""

    exit_code = 2


class VerificationError(GlassboxError):
    """The input was read fine, but the evidence does not hold (bad signature, changed file)."""

    exit_code = 1
