"""The log server's checkpoint timer, and the ``/health`` report built from what it saw.

The timer is the only thing that issues checkpoints, so if it stops, the log keeps
acknowledging entries that no signed tree head will ever cover. It therefore survives every
error: a storage fault (locked past the busy timeout, read-only, I/O error), the log refusing
to sign a tree that no longer matches its own last checkpoint, or a bug. Each failure is logged
at ERROR and retried with exponential back-off up to ``max_backoff``; the first success after
failures is logged too. While entries cannot be written it also probes the writer, so health
turns green once the fault clears even if no client is adding.

``/health`` answers 200 when the log can take entries and sign checkpoints, 503 ("degraded")
when it cannot; a witness that refuses or cannot be reached is a warning, not degradation
(the log still works; clients' witness policies decide what a missing cosignature means).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from glassbox.errors import GlassboxError, VerificationError
from glassbox.tlog.faults import StoreError
from glassbox.tlog.log import TransparencyLog

logger = logging.getLogger("glassbox.tlog.server")

REFUSED_TO_SIGN = "refused-to-sign"


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Fault:
    """One failure, as health reports it."""

    kind: str
    message: str
    time: float

    @classmethod
    def of(cls, exc: BaseException) -> Fault:
        if isinstance(exc, StoreError):
            kind = exc.kind
        elif isinstance(exc, VerificationError):
            kind = REFUSED_TO_SIGN
        elif isinstance(exc, GlassboxError):
            kind = "error"
        else:
            kind = "internal-error"
        text = str(exc) if isinstance(exc, GlassboxError) else f"{type(exc).__name__}: {exc}"
        return cls(kind, text, time.time())

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "time": iso(self.time)}


class Checkpointer:
    """The timer thread: ``maybe_checkpoint`` every ``interval`` seconds, backing off on
    failure (``interval * 2**failures``, at most ``max_backoff``), never dying."""

    def __init__(self, log: TransparencyLog, interval: float, max_backoff: float = 60.0) -> None:
        self.log = log
        self.interval = interval
        self.max_backoff = max(interval, max_backoff)
        self.delay = interval
        self.failures = 0
        self.last_error: Fault | None = None
        self.last_success: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tlog-checkpointer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.delay):
            self.tick()

    def tick(self) -> None:
        """One attempt; never raises (an escaping error would end the thread for good)."""
        try:
            if self.log.sequencer.failures:
                self.log.sequencer.probe()
            self.log.maybe_checkpoint(self.interval)
        except Exception as exc:  # the thread must survive anything
            self._failed(exc)
            return
        if self.failures:
            logger.warning(
                "%s: checkpoints resumed after %d failed attempt(s)", self.log.origin, self.failures
            )
        self.failures = 0
        self.delay = self.interval
        self.last_success = time.time()

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = Fault.of(exc)
        self.delay = min(self.max_backoff, self.interval * 2 ** min(self.failures, 30))
        args = (self.log.origin, self.failures, self.delay, self.last_error.message)
        msg = "%s: checkpoint failed (%d in a row, next try in %.1fs): %s"
        if isinstance(exc, GlassboxError):
            logger.error(msg, *args)
        else:  # a bug: keep the traceback
            logger.exception(msg, *args)


def health(log: TransparencyLog, checkpointer: Checkpointer | None) -> tuple[int, dict[str, Any]]:
    """The status code (200 healthy, 503 degraded) and the JSON body of ``/health``."""
    problems: list[str] = []
    warnings: list[str] = []
    size: int | None = None
    cp_size: int | None = None
    cp_time: float | None = None
    try:
        size = log.size()
        row = log.store.latest_checkpoint()
        cp_size = None if row is None else row[0]
        issued = log.store.get_meta("checkpoint_time")
        cp_time = float(issued) if issued is not None else None
    except (GlassboxError, ValueError) as exc:
        problems.append(f"storage: {exc}")
    cp_state: dict[str, Any] = {"running": False}
    if checkpointer is not None:
        cp_state = {
            "running": checkpointer.running,
            "consecutive_failures": checkpointer.failures,
            "last_error": None
            if checkpointer.last_error is None
            else checkpointer.last_error.to_dict(),
            "last_success": iso(checkpointer.last_success),
            "next_attempt_in_seconds": round(checkpointer.delay, 3),
        }
        if not checkpointer.running:
            problems.append("checkpointer: the checkpoint timer is not running")
        elif checkpointer.failures and checkpointer.last_error is not None:
            problems.append(
                f"checkpointer: {checkpointer.failures} failed attempt(s):"
                f" {checkpointer.last_error.message}"
            )
    seq = log.sequencer
    write_error = None if seq.last_error is None else Fault.of(seq.last_error)
    if seq.failures and write_error is not None:
        problems.append(f"writes: {seq.failures} failed batch(es): {write_error.message}")
    witnesses = [w.to_dict() for w in log.witness_status.values()]
    for w in log.witness_status.values():
        if not w.ok:
            warnings.append(f"witness {w.name}: did not cosign size {w.size}: {w.error}")
    body = {
        "status": "degraded" if problems else "ok",
        "origin": log.origin,
        "size": size,
        "checkpoint": {
            "size": cp_size,
            "time": iso(cp_time),
            "age_seconds": None if cp_time is None else round(time.time() - cp_time, 3),
            "uncovered_entries": None if size is None else size - (cp_size or 0),
        },
        "checkpointer": cp_state,
        "writes": {
            "consecutive_failures": seq.failures,
            "last_error": None
            if write_error is None
            else {**write_error.to_dict(), "time": iso(seq.last_error_time)},
        },
        "witnesses": witnesses,
        "problems": problems,
        "warnings": warnings,
    }
    return (503 if problems else 200), body
