"""C2SP tlog-checkpoint bodies: origin, tree size, root hash, optional extension lines.

The checkpoint is the only thing a log signs; everything else (entries, proofs, tiles) is checked
against its root, so the parser refuses anything ambiguous (leading zeros, a root that is not
32 bytes, an empty origin) instead of guessing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from glassbox.digest.merkle import HASH_SIZE, ProofError, verify_consistency
from glassbox.errors import VerificationError
from glassbox.tlog.note import Note, NoteError, Signer, Verifier, open_note, sign_note


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise NoteError("checkpoint must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs an origin, a size and a root hash line")
        origin, size_s, root_s, *ext = lines
        if not origin or origin != origin.strip():
            raise NoteError("checkpoint origin line is empty or padded")
        if not size_s.isascii() or not size_s.isdigit() or (size_s != "0" and size_s[0] == "0"):
            raise NoteError(f"checkpoint size {size_s[:30]!r} is not a decimal number")
        if len(size_s) > 20 or int(size_s) >= 1 << 63:
            raise NoteError("checkpoint size is out of range")
        try:
            root = base64.b64decode(root_s.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise NoteError("checkpoint root hash is not base64") from None
        if len(root) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash is {len(root)} bytes, expected {HASH_SIZE}")
        if any(not line for line in ext):
            raise NoteError("checkpoint has an empty extension line")
        return cls(origin, int(size_s), root, tuple(ext))


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint together with the note that carries it (log signature and cosignatures)."""

    checkpoint: Checkpoint
    note: Note

    def serialize(self) -> str:
        return self.note.serialize()


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> SignedCheckpoint:
    if signer.name != checkpoint.origin:
        raise NoteError(f"log key name {signer.name!r} is not the origin {checkpoint.origin!r}")
    return SignedCheckpoint(checkpoint, sign_note(checkpoint.text(), [signer]))


def open_checkpoint(data: str | bytes, log_verifier: Verifier) -> SignedCheckpoint:
    """Parse a signed checkpoint, requiring a valid signature by the log key for its origin."""
    note, _good = open_note(data, [log_verifier])
    cp = Checkpoint.parse(note.text)
    if cp.origin != log_verifier.name:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not the log key name")
    return SignedCheckpoint(cp, note)


def check_same_history(
    a: Checkpoint,
    b: Checkpoint,
    proof: Sequence[bytes] | Callable[[int, int], Sequence[bytes]],
) -> None:
    """Raise ``VerificationError`` unless ``a`` and ``b`` are one append-only history: the same
    root at the same size, and otherwise a consistency proof from the smaller tree to the larger
    (``proof``, or a function returning it for (small size, large size)).

    The one check every party that remembers a checkpoint makes before trusting the next: the
    client's memory (``SeenCheckpoints``), the monitor, and the log itself before it signs.
    """
    if a.size == b.size:
        if a.root != b.root:
            raise VerificationError(
                f"log {b.origin} showed two different trees of size {b.size}: fork"
            )
        return
    small, large = (a, b) if a.size < b.size else (b, a)
    if small.size == 0:
        return
    hashes = proof(small.size, large.size) if callable(proof) else proof
    try:
        verify_consistency(small.size, large.size, list(hashes), small.root, large.root)
    except ProofError as exc:
        raise VerificationError(
            f"log {b.origin} is not consistent between sizes {small.size} and {large.size}"
            f" (not append-only): {exc}"
        ) from None
