"""C2SP tlog-checkpoint bodies: origin, tree size, root hash, optional extension lines.

The checkpoint is the only thing a log signs; everything else (entries, proofs, tiles) is checked
against its root, so the parser refuses anything ambiguous (leading zeros, a root that is not
32 bytes, an empty origin) instead of guessing.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from glassbox.digest.merkle import HASH_SIZE
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
