"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 and tlog-cosignature keys.

A checkpoint is only as good as the parser that reads it: this module is strict (the same
rejections as golang.org/x/mod/sumdb/note) so a note one verifier accepts is never read
differently by another. Signing is deterministic Ed25519, so a re-signed note is byte for byte
the published one (checked against the Tessera and x/mod vectors).

Key formats (as in x/mod and Tessera):

* verifier key (vkey): ``name+hex(key id)+base64(type || public key)``
* signer key (skey):   ``PRIVATE+KEY+name+hex(key id)+base64(type || seed)``

with ``key id = SHA-256(name || "\\n" || type || public key)[:4]``. Type 0x01 signs the note text;
type 0x04 (c2sp.org/tlog-cosignature) signs ``cosignature/v1\\ntime T\\n`` plus the checkpoint
and carries the 8-byte big-endian timestamp T before the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import time
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from glassbox.errors import InputError, VerificationError

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
SIG_PREFIX = "\u2014 "  # em dash and a space starts every signature line
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20


class NoteError(InputError):
    """A note or key is malformed (not merely unsigned by a key we trust)."""


class NoteVerificationError(VerificationError):
    """A note is well formed but no trusted key verifies it, or a trusted key's signature fails."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise NoteError(f"invalid key name {name!r}: must be non-empty, no spaces, no '+'")


def key_id(name: str, alg: int, public: bytes) -> int:
    """The 32-bit key ID: first four bytes of SHA-256(name || LF || type || key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()
    return int.from_bytes(digest[:4], "big")


def _raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """One trusted public key: verifies note signatures (type 0x01) or cosignatures (0x04)."""

    name: str
    key_id: int
    alg: int
    public_key: Ed25519PublicKey = field(compare=False)

    @property
    def vkey(self) -> str:
        raw = bytes([self.alg]) + _raw_public(self.public_key)
        return f"{self.name}+{self.key_id:08x}+{_b64(raw)}"

    def verify(self, text: str, sig: bytes) -> int | None:
        """Check ``sig`` over ``text``; return the cosignature timestamp (None for 0x01)."""
        try:
            if self.alg == ALG_ED25519:
                if len(sig) != 64:
                    raise NoteVerificationError(f"signature by {self.name} has the wrong length")
                self.public_key.verify(sig, text.encode())
                return None
            if len(sig) != 72:
                raise NoteVerificationError(f"cosignature by {self.name} has the wrong length")
            (timestamp,) = struct.unpack(">Q", sig[:8])
            self.public_key.verify(sig[8:], cosignature_message(text, timestamp))
            return int(timestamp)
        except InvalidSignature:
            raise NoteVerificationError(
                f"signature by {self.name}+{self.key_id:08x} does not verify"
            ) from None


def cosignature_message(text: str, timestamp: int) -> bytes:
    """What a tlog-cosignature/v1 signs: a fixed header, the time, then the checkpoint text."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def parse_vkey(vkey: str) -> Verifier:
    """Parse ``name+keyid+base64(type||key)``, checking the key ID against the key."""
    parts = vkey.strip().split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3:
        raise NoteError(f"verifier key {vkey!r} is not name+keyid+key")
    name, hex_id, b64 = parts
    _check_name(name)
    if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
        raise NoteError(f"verifier key {name}: key id {hex_id!r} is not 8 lowercase hex digits")
    raw = _b64decode(b64, f"verifier key {name}")
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise NoteError(f"verifier key {name}: unsupported algorithm or key length")
    if key_id(name, raw[0], raw[1:]) != int(hex_id, 16):
        raise NoteError(f"verifier key {name}: key id {hex_id} does not match the key")
    return Verifier(name, int(hex_id, 16), raw[0], Ed25519PublicKey.from_public_bytes(raw[1:]))


@dataclass(frozen=True)
class Signer:
    """An Ed25519 note signer (type 0x01) or cosigner (type 0x04)."""

    name: str
    private_key: Ed25519PrivateKey = field(compare=False)
    alg: int = ALG_ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError(f"unsupported note signature type {self.alg:#x}")

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.alg, _raw_public(self.private_key.public_key()))

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.alg, self.private_key.public_key())

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    @property
    def skey(self) -> str:
        seed = self.private_key.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{_b64(bytes([self.alg]) + seed)}"

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> Signer:
        return cls(name, Ed25519PrivateKey.generate(), alg)

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signer key is not PRIVATE+KEY+name+keyid+key")
        name, hex_id, b64 = parts[2:]
        raw = _b64decode(b64, f"signer key {name}")
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError(f"signer key {name}: unsupported algorithm or key length")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]), raw[0])
        if f"{signer.key_id:08x}" != hex_id:
            raise NoteError(f"signer key {name}: key id {hex_id} does not match the key")
        return signer

    def sign(self, text: str, timestamp: int | None = None) -> NoteSignature:
        check_text(text)
        if self.alg == ALG_ED25519:
            sig = self.private_key.sign(text.encode())
        else:
            ts = int(time.time()) if timestamp is None else timestamp
            sig = struct.pack(">Q", ts) + self.private_key.sign(cosignature_message(text, ts))
        return NoteSignature(self.name, self.key_id, sig)


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes  # without the 4-byte key ID

    def line(self) -> str:
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{SIG_PREFIX}{self.name} {_b64(blob)}\n"


@dataclass(frozen=True)
class Note:
    """A parsed signed note: the signed text and every signature line, verified or not."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def serialize(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, extra: list[NoteSignature]) -> Note:
        seen = {(s.name, s.key_id) for s in self.signatures}
        new = [s for s in extra if (s.name, s.key_id) not in seen]
        return Note(self.text, self.signatures + tuple(new))

    def verified_by(self, verifiers: list[Verifier]) -> dict[str, int | None]:
        """Names (``name+keyid``) of the trusted keys whose signatures verify, with timestamps.

        Signatures by unknown keys are ignored (the spec allows any number of them); a trusted
        key whose signature fails is an error, never silently skipped.
        """
        by_id = {(v.name, v.key_id): v for v in verifiers}
        good: dict[str, int | None] = {}
        for sig in self.signatures:
            verifier = by_id.get((sig.name, sig.key_id))
            if verifier is None:
                continue
            good[f"{verifier.name}+{verifier.key_id:08x}"] = verifier.verify(
                self.text, sig.signature
            )
        return good


def check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    for ch in text:
        if (ord(ch) < 0x20 and ch != "\n") or ch == "\x7f":
            raise NoteError("note text contains a control character")
    if "\n\n" in text:
        raise NoteError("note text contains a blank line")


def parse_note(data: str | bytes) -> Note:
    """Split a signed note into text and signature lines, rejecting anything malformed."""
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_BYTES:
            raise NoteError("note is larger than 1 MiB")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError("note is larger than 1 MiB")
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sig_block = data[: split + 1], data[split + 2 :]
    check_text(text)
    if not sig_block.endswith("\n"):
        raise NoteError("note signature block must end in a newline")
    signatures: list[NoteSignature] = []
    for line in sig_block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"note has a line that is not a signature: {line[:40]!r}")
        name, sep, b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not name or " " in b64:
            raise NoteError(f"malformed signature line: {line[:60]!r}")
        _check_name(name)
        blob = _b64decode(b64, f"signature by {name}")
        if len(blob) < 5:
            raise NoteError(f"signature by {name} is too short")
        signatures.append(NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    if not signatures:
        raise NoteError("note has no signatures")
    return Note(text, tuple(signatures))


def sign_note(text: str, signers: list[Signer]) -> Note:
    return Note(text, tuple(s.sign(text) for s in signers))


def open_note(data: str | bytes, verifiers: list[Verifier]) -> tuple[Note, dict[str, int | None]]:
    """Parse and verify: at least one trusted key must have signed, and none may fail."""
    note = parse_note(data)
    good = note.verified_by(verifiers)
    if not good:
        raise NoteVerificationError("note is not signed by any trusted key")
    return note, good
