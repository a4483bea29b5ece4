"""The trust policy: one TOML file saying whom the user trusts for what.

A signature proves only that *somebody* signed; the policy says who that somebody must be for
this model. It names publishers (public keys and X.509 trust anchors, each for model-name
patterns), the transparency logs and witnesses to believe, the scan severity that refuses a
model, whether signed provenance is required, and whether pickle-based files may be loaded at
all (never, unless the policy says so). Schema version 1::

    version = 1

    [[publisher]]
    name = "Acme AI"                 # what verify, audit and the loaders report
    models = ["acme/*"]              # fnmatch patterns on the model name (default: ["*"])
    keys = ["keys/acme.pub"]         # PEM public keys, relative to this file (or inline PEM)
    certificates = ["pki/acme-ca.pem"]   # trust anchors for certificate-signed OMS bundles

    [log]
    require = true                   # a log inclusion proof must hold
    keys = ["embedded", "log.example+1a2b3c4d+AT..."]   # note verifier keys ("embedded": ours)
    witnesses = ["witness.example+5e6f7a8b+BM..."]
    witness-quorum = 1               # k of the witnesses above (default: all of them)

    [scan]
    fail-on = "high"                 # refuse on a finding at or above this severity

    [[scan.allow]]                   # reviewed scanner allowlist entries (as `scan --allow`)
    callable = "mylab.layers.GatedBlock"
    reason = "our layer; reviewed in PR 412: __setstate__ only assigns tensors"

    [provenance]
    require = false

    [pickle]
    allow = false

    [[code]]                         # code shipped beside the weights (auto_map) you reviewed
    path = "modeling_acme.py"        # as named in the model; it must also be signed
    sha256 = "9f86d0…"               # optional: only this reviewed version
    reason = "reviewed 2026-12-01: plain torch modules, no I/O"

Every error names the file, the line and the key, so a typo (``fail_on``) is one line to fix,
not a silently ignored setting.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import GlassboxError, InputError
from glassbox.files import read_small_file
from glassbox.scan.allowlist import AllowEntry, parse_allowlist
from glassbox.scan.findings import Severity
from glassbox.tomlkeys import TomlValidator, is_string_list, parse_toml, read_toml
from glassbox.trust.errors import PolicyError

if TYPE_CHECKING:
    from cryptography import x509

    from glassbox.sign import PublicKey
    from glassbox.tlog import WitnessPolicy

SCHEMA_VERSION = 1
MAX_POLICY_BYTES = 4 << 20
EMBEDDED_LOG = "embedded"


@dataclass(frozen=True)
class PublisherKey:
    key: PublicKey
    key_id: str
    source: str  # the file it came from, or "inline"


@dataclass(frozen=True)
class Publisher:
    """Someone the user trusts to sign the models whose names match ``models``."""

    name: str
    models: tuple[str, ...]
    keys: tuple[PublisherKey, ...]
    certificates: tuple[x509.Certificate, ...] = ()

    def covers(self, model_name: str) -> bool:
        return any(fnmatch.fnmatchcase(model_name, pattern) for pattern in self.models)


@dataclass(frozen=True)
class LogPolicy:
    require: bool = False
    keys: tuple[str, ...] = ()  # note verifier keys (vkeys)
    embedded: bool = False  # this machine's embedded log is trusted too
    witnesses: WitnessPolicy | None = None

    def trusted_vkeys(self) -> dict[str, str]:
        """vkey -> where the trust came from (the policy, or this machine's embedded log)."""
        trusted = dict.fromkeys(self.keys, "policy")
        if self.embedded:
            from glassbox.tlog import local_log_dir, parse_vkey

            local = local_log_dir() / "log.vkey"
            # No embedded log yet: nothing of it to trust.
            with contextlib.suppress(OSError, UnicodeDecodeError, GlassboxError):
                trusted.setdefault(parse_vkey(local.read_text().strip()).vkey, EMBEDDED_LOG)
        return trusted


@dataclass(frozen=True)
class AllowedCode:
    """A code file (``auto_map``'s ``trust_remote_code`` modules) the user reviewed: the scan's
    finding about it is cleared only when the signature also covers it (and, with ``sha256``,
    only for that version)."""

    path: str
    reason: str
    sha256: str | None = None


@dataclass(frozen=True)
class TrustPolicy:
    publishers: tuple[Publisher, ...] = ()
    log: LogPolicy = field(default_factory=LogPolicy)
    fail_on: Severity = Severity.HIGH
    require_provenance: bool = False
    allow_pickle: bool = False
    code: tuple[AllowedCode, ...] = ()
    source: Path | None = None
    # [[scan.allow]]: reviewed scanner allowlist entries, as `glassbox scan --allow FILE` reads.
    scan_allow: tuple[AllowEntry, ...] = ()

    def publishers_for(self, model_name: str) -> list[Publisher]:
        return [p for p in self.publishers if p.covers(model_name)]

    def to_dict(self) -> dict[str, Any]:
        """A summary for ``--json`` output (keys by id, never the key material)."""
        return {
            "source": None if self.source is None else str(self.source),
            "publishers": [
                {
                    "name": p.name,
                    "models": list(p.models),
                    "key_ids": [k.key_id for k in p.keys],
                    "certificates": len(p.certificates),
                }
                for p in self.publishers
            ],
            "log": {
                "require": self.log.require,
                "keys": list(self.log.keys) + ([EMBEDDED_LOG] if self.log.embedded else []),
                "witnesses": None if self.log.witnesses is None else self.log.witnesses.to_dict(),
            },
            "scan": {
                "fail-on": str(self.fail_on),
                "allow": [e.to_dict() for e in self.scan_allow],
            },
            "provenance": {"require": self.require_provenance},
            "pickle": {"allow": self.allow_pickle},
            "code": [{"path": c.path, "sha256": c.sha256, "reason": c.reason} for c in self.code],
        }


def load_policy(path: str | os.PathLike[str]) -> TrustPolicy:
    """Read and validate a policy file; ``PolicyError`` (exit 2) names file, line and key."""
    source = Path(path)
    return _Validator(
        source, *read_toml(source, MAX_POLICY_BYTES, "trust policy", PolicyError)
    ).policy()


def parse_policy(text: str, source: Path) -> TrustPolicy:
    """Validate policy ``text``; relative key and certificate paths resolve against ``source``."""
    return _Validator(source, *parse_toml(text, source, "trust policy", PolicyError)).policy()


_TOP = {"version", "publisher", "log", "scan", "provenance", "pickle", "code"}
_CODE = {"path", "sha256", "reason"}
_PUBLISHER = {"name", "models", "keys", "certificates"}
_LOG = {"require", "keys", "witnesses", "witness-quorum"}


class _Validator(TomlValidator):
    error = PolicyError
    name_key = True

    def unknown_message(
        self, key: str, close: str | None, allowed: set[str], path: Sequence[str | int]
    ) -> str:
        hint = f" (did you mean {close!r}?)" if close else ""
        return f"unknown key{hint}; allowed: {', '.join(sorted(allowed))}"

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail([name], "must be a table ([" + name + "])")
        return value

    def boolean(self, table: Mapping[str, Any], key: str, path: list[str | int]) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail([*path, key], f"must be true or false, not {value!r}")
        return value

    def strings(self, table: Mapping[str, Any], key: str, path: list[str | int]) -> list[str]:
        value = table.get(key, [])
        if not is_string_list(value):
            raise self.fail([*path, key], "must be a list of non-empty strings")
        return list(value)

    def policy(self) -> TrustPolicy:
        self.unknown(self.data, _TOP, [])
        version = self.data.get("version")
        if version != SCHEMA_VERSION:
            raise self.fail(
                ["version"],
                f"must be {SCHEMA_VERSION} (this Glassbox reads trust policy schema "
                f"version {SCHEMA_VERSION}; found {version!r})",
            )
        scan = self.table("scan")
        self.unknown(scan, {"fail-on", "allow"}, ["scan"])
        try:
            # The scanner's own allowlist parser: the same fields and checks as `scan --allow`.
            scan_allow = tuple(parse_allowlist(scan, "[scan]"))
        except InputError as exc:
            raise self.fail(["scan", "allow"], str(exc).removeprefix("[scan]: ")) from None
        fail_on = scan.get("fail-on", "high")
        try:
            severity = Severity.parse(fail_on) if isinstance(fail_on, str) else None
        except ValueError as exc:
            raise self.fail(["scan", "fail-on"], str(exc)) from None
        if severity is None:
            raise self.fail(["scan", "fail-on"], "must be a severity name")
        provenance = self.table("provenance")
        self.unknown(provenance, {"require"}, ["provenance"])
        pickle = self.table("pickle")
        self.unknown(pickle, {"allow"}, ["pickle"])
        return TrustPolicy(
            publishers=self.publishers(),
            log=self.log(),
            fail_on=severity,
            require_provenance=self.boolean(provenance, "require", ["provenance"]),
            allow_pickle=self.boolean(pickle, "allow", ["pickle"]),
            code=self.code(),
            scan_allow=scan_allow,
            source=self.source,
        )

    def code(self) -> tuple[AllowedCode, ...]:
        raw = self.data.get("code", [])
        if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
            raise self.fail(["code"], "must be an array of tables ([[code]])")
        out: list[AllowedCode] = []
        for index, table in enumerate(raw):
            path: list[str | int] = ["code", index]
            self.unknown(table, _CODE, path)
            name, reason, digest = table.get("path"), table.get("reason"), table.get("sha256")
            if not isinstance(name, str) or not name.endswith(".py") or name.startswith("/"):
                raise self.fail([*path, "path"], "must name a .py file inside the model")
            if ".." in name.split("/"):
                raise self.fail([*path, "path"], "must not leave the model ('..')")
            if not isinstance(reason, str) or not reason.strip():
                raise self.fail([*path, "reason"], "say why this code is trusted (a review)")
            if digest is not None and (
                not isinstance(digest, str)
                or len(digest) != 64
                or any(c not in "0123456789abcdef" for c in digest)
            ):
                raise self.fail([*path, "sha256"], "must be 64 lowercase hex digits")
            out.append(AllowedCode(name, reason.strip(), digest))
        return tuple(out)

    def publishers(self) -> tuple[Publisher, ...]:
        raw = self.data.get("publisher", [])
        if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
            raise self.fail(["publisher"], "must be an array of tables ([[publisher]])")
        out: list[Publisher] = []
        names: set[str] = set()
        for index, table in enumerate(raw):
            path: list[str | int] = ["publisher", index]
            self.unknown(table, _PUBLISHER, path)
            name = table.get("name")
            if not isinstance(name, str) or not name.strip():
                raise self.fail([*path, "name"], "every publisher needs a name")
            if name in names:
                raise self.fail([*path, "name"], f"publisher {name!r} is defined twice")
            names.add(name)
            models = self.strings(table, "models", path) if "models" in table else ["*"]
            if not models:
                raise self.fail([*path, "models"], "lists no model-name pattern")
            keys = tuple(
                self.key(value, [*path, "keys", i])
                for i, value in enumerate(self.strings(table, "keys", path))
            )
            certs = tuple(
                cert
                for i, value in enumerate(self.strings(table, "certificates", path))
                for cert in self.certificates(value, [*path, "certificates", i])
            )
            if not keys and not certs:
                raise self.fail(path, f"publisher {name!r} has no keys and no certificates")
            out.append(Publisher(name, tuple(models), keys, certs))
        return tuple(out)

    def _material(self, value: str, path: list[str | int], what: str) -> tuple[bytes, str]:
        if value.lstrip().startswith("-----BEGIN"):
            return value.encode(), "inline"
        file = Path(value) if Path(value).is_absolute() else self.source.parent / value
        try:
            return read_small_file(file, 1 << 20, what), str(file)
        except GlassboxError as exc:
            raise self.fail(path, str(exc)) from None

    def key(self, value: str, path: list[str | int]) -> PublisherKey:
        from glassbox.sign import parse_public_key, public_key_id

        data, where = self._material(value, path, "key")
        try:
            key = parse_public_key(data, where=where)
        except GlassboxError as exc:
            raise self.fail(path, str(exc)) from None
        return PublisherKey(key, public_key_id(key), where)

    def certificates(self, value: str, path: list[str | int]) -> list[x509.Certificate]:
        from cryptography import x509

        data, where = self._material(value, path, "certificate")
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise self.fail(path, f"{where}: not PEM X.509 certificates ({exc})") from None
        return certs

    def log(self) -> LogPolicy:
        table = self.table("log")
        self.unknown(table, _LOG, ["log"])
        keys = self.strings(table, "keys", ["log"])
        from glassbox.tlog import NoteError, WitnessPolicy, parse_vkey

        vkeys: list[str] = []
        for i, value in enumerate(keys):
            if value == EMBEDDED_LOG:
                continue
            try:
                vkeys.append(parse_vkey(value).vkey)
            except GlassboxError as exc:
                raise self.fail(["log", "keys", i], f"not a note verifier key: {exc}") from None
        require = self.boolean(table, "require", ["log"])
        if require and not keys:
            raise self.fail(["log", "keys"], "log.require is true but no log key is trusted")
        witnesses = self.strings(table, "witnesses", ["log"])
        quorum = table.get("witness-quorum")
        if quorum is not None and (not isinstance(quorum, int) or isinstance(quorum, bool)):
            raise self.fail(["log", "witness-quorum"], "must be an integer")
        if quorum is not None and not witnesses:
            raise self.fail(["log", "witness-quorum"], "is set but no witnesses are listed")
        policy = None
        if witnesses:
            try:
                policy = WitnessPolicy.from_vkeys(witnesses, quorum)
            except (NoteError, GlassboxError) as exc:
                raise self.fail(["log", "witnesses"], str(exc)) from None
        return LogPolicy(require, tuple(vkeys), EMBEDDED_LOG in keys, policy)
