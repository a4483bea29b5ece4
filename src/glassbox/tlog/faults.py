"""Storage faults, typed at the store boundary.

A database error is not the caller's fault and not a verification failure: it is the log's
storage being unavailable (locked past the busy timeout, read-only, out of space, an I/O error,
the PostgreSQL server gone) or damaged. Every driver error leaving a store is turned into one
``StoreError`` with a ``kind``, so the server answers 503 (and keeps its checkpoint timer
alive) instead of 500, and the CLI says what is really wrong instead of "not a usable log
database" for a database that is merely locked.
"""

from __future__ import annotations

from glassbox.errors import GlassboxError

# kinds: what went wrong, in words a user can act on
LOCKED = "locked"
READ_ONLY = "read-only"
IO = "io-error"
FULL = "disk-full"
DAMAGED = "damaged"
MISSING = "missing"
NOT_A_LOG = "not-a-log"
UPGRADE = "needs-upgrade"
UNAVAILABLE = "unavailable"

TRANSIENT = frozenset({LOCKED, IO, FULL, UNAVAILABLE})


class StoreError(GlassboxError):
    """The log's database failed: not the request's fault (HTTP 503, exit code 2)."""

    exit_code = 2

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def transient(self) -> bool:
        """Worth retrying later (a lock, an I/O error, a lost server), unlike damage."""
        return self.kind in TRANSIENT


_SQLITE_KINDS = {
    5: LOCKED,  # SQLITE_BUSY
    6: LOCKED,  # SQLITE_LOCKED
    8: READ_ONLY,  # SQLITE_READONLY
    10: IO,  # SQLITE_IOERR
    11: DAMAGED,  # SQLITE_CORRUPT
    13: FULL,  # SQLITE_FULL
    14: MISSING,  # SQLITE_CANTOPEN
    26: NOT_A_LOG,  # SQLITE_NOTADB
}
_SQLITE_TEXT = (  # for errors without a code (older drivers, injected faults)
    ("locked", LOCKED),
    ("busy", LOCKED),
    ("readonly", READ_ONLY),
    ("read-only", READ_ONLY),
    ("disk i/o", IO),
    ("malformed", DAMAGED),
    ("corrupt", DAMAGED),
    ("full", FULL),
    ("not a database", NOT_A_LOG),
    ("unable to open", MISSING),
)
_EXPLAIN = {
    LOCKED: "the log database is locked by another connection (busy timeout passed)",
    READ_ONLY: "the log database is read-only here",
    IO: "disk I/O error on the log database",
    FULL: "the disk holding the log database is full",
    DAMAGED: "the log database is damaged",
    MISSING: "the log database cannot be opened",
    NOT_A_LOG: "not a log database",
    UNAVAILABLE: "the log database server is unavailable",
}


def sqlite_kind(exc: BaseException) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _SQLITE_KINDS:
        return _SQLITE_KINDS[code & 0xFF]
    text = str(exc).lower()
    for needle, kind in _SQLITE_TEXT:
        if needle in text:
            return kind
    return IO


def postgres_kind(exc: BaseException) -> str:
    state = str(getattr(exc, "sqlstate", None) or "")
    if state == "25006":
        return READ_ONLY
    if state in ("55P03", "57014") or state.startswith("40"):
        return LOCKED  # lock_timeout, statement timeout, deadlock, serialization
    if state.startswith("53"):
        return FULL
    if state.startswith("XX"):
        return DAMAGED
    if state in ("42P01", "3F000"):
        return NOT_A_LOG
    if state.startswith("42"):
        return READ_ONLY if state == "42501" else NOT_A_LOG
    return UNAVAILABLE  # 08 (connection), 57P0x (shutdown), a closed connection: no sqlstate


def store_error(where: str, exc: BaseException, kind: str) -> StoreError:
    """One line: where, what it means, and the driver's own words."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(f"{where}: {_EXPLAIN.get(kind, 'storage error')} ({detail})", kind)
