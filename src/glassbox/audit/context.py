"""What every link of an audit shares: the model, its evidence, the options, trusted keys.

Work that several links need (loading trusted keys, hashing the model once) happens here, once,
so an audit reads each model byte as few times as possible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.audit.chain import MAX_CHAIN_DEPTH
from glassbox.audit.evidence import Evidence
from glassbox.audit.verdict import LINKS
from glassbox.errors import InputError

if TYPE_CHECKING:
    from glassbox.digest import Manifest
    from glassbox.trust.policy import TrustPolicy

# ``--require`` accepts the link names and the words people use for them.
REQUIRE_ALIASES = {
    "integrity": "integrity",
    "signature": "integrity",
    "transparency": "transparency",
    "log": "transparency",
    "provenance": "provenance",
    "build": "provenance",
    "safety": "safety",
    "scan": "safety",
    "openness": "openness",
    "open": "openness",
}
DEFAULT_REQUIRE = frozenset({"integrity", "transparency", "provenance", "safety"})


def require_choices() -> str:
    """The ``--require`` vocabulary in one line: the link names the reports use, then the
    aliases (older names) that are still accepted."""
    aliases = ", ".join(f"{a}={n}" for a, n in REQUIRE_ALIASES.items() if a != n)
    return f"{', '.join(LINKS)}, all or none (also accepted: {aliases})"


def parse_require(text: str) -> frozenset[str]:
    """``signature,log,provenance`` -> link names; ``all`` and ``none`` are accepted too."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return frozenset(LINKS)
    if words in ([], ["none"]):
        return frozenset()
    out = set()
    for word in words:
        if word not in REQUIRE_ALIASES:
            raise InputError(f"--require: unknown link {word!r}; choose from {require_choices()}")
        out.add(REQUIRE_ALIASES[word])
    return frozenset(out)


@dataclass
class AuditOptions:
    """How to audit: whom to trust, where the log is, what must hold, how hard to check."""

    keys: tuple[Path, ...] = ()
    evidence: dict[str, list[Path]] = field(default_factory=dict)
    log: str | None = None
    log_keys: tuple[Path, ...] = ()
    witness_policy: Path | None = None
    require: frozenset[str] = DEFAULT_REQUIRE
    rebuild: bool = False
    spot_check: int | None = None
    fail_on: str = "high"
    scan_now: bool = True
    behavior: bool = False
    # A trust policy (``--policy``): integrity then names the publisher it matched, and its
    # publishers' keys, logs and witnesses are trusted as the matching options would be.
    policy: TrustPolicy | None = None
    # The name the policy's publisher patterns match (default: hf repo id or directory name).
    model_name: str | None = None
    # Called with byte counts while the model is hashed (a progress bar on a terminal).
    progress: Callable[[int], None] | None = None
    # How many base models deep a fine-tune chain may go before the audit calls it a failure.
    chain_depth: int = MAX_CHAIN_DEPTH
    # The consumer's own list of labellers (name -> public key file), for pipeline lineage.
    labellers: dict[str, Path] = field(default_factory=dict)


@dataclass
class TrustedKey:
    path: Path
    key: Any
    key_id: str
    hint: str


class AuditContext:
    """Shared state for one audit run."""

    def __init__(self, model: Path, evidence: Evidence, options: AuditOptions) -> None:
        self.model = model
        self.evidence = evidence
        self.options = options
        self.verified_manifest: Manifest | None = None
        self.signature_statement: dict[str, Any] | None = None
        self.signature_bundle: dict[str, Any] | None = None
        self.provenance_statement: dict[str, Any] | None = None
        # The pipeline lineage the provenance link verified (``LineageReport.to_dict()``).
        self.lineage: dict[str, Any] | None = None
        self._keys: list[TrustedKey] | None = None
        self._manifest: Manifest | None = None

    def trusted_keys(self) -> list[TrustedKey]:
        """The producer's public keys given with ``--key``; unreadable keys are input errors."""
        if self._keys is None:
            from glassbox.sign import key_hint, load_public_key, public_key_id

            self._keys = []
            for path in self.options.keys:
                pub = load_public_key(path)
                self._keys.append(TrustedKey(path, pub, public_key_id(pub), key_hint(pub)))
            if self.options.policy is not None:
                for publisher in self.options.policy.publishers_for(self.model_name()):
                    for key in publisher.keys:
                        self._keys.append(
                            TrustedKey(Path(key.source), key.key, key.key_id, key_hint(key.key))
                        )
        return self._keys

    def model_name(self) -> str:
        """The name a trust policy's publisher patterns are matched against."""
        from glassbox.trust.gate import model_name
        from glassbox.trust.locations import resolve_model

        return model_name(resolve_model(self.model), self.options.model_name)

    def labeller_keys(self) -> dict[str, Any] | None:
        """The labellers the user trusts (``--labeller NAME=KEY``), or ``None`` if none given."""
        if not self.options.labellers:
            return None
        from glassbox.sign import load_public_key

        return {name: load_public_key(path) for name, path in self.options.labellers.items()}

    def sha256_files(self) -> dict[str, str]:
        """Each model file's SHA-256 (hex) by relative path; a single-file model by its name.

        Attestations name files this way (in-toto subjects), whatever method the signature used.
        """
        manifest = self.manifest()
        if manifest.method.algorithm != "sha256" or manifest.method.shard_size is not None:
            from glassbox.digest import HashMethod, hash_model

            manifest = hash_model(
                self.model,
                HashMethod(),
                ignore_paths=[*manifest.ignore_paths],
                use_cache=False,
            )
        files = {path: digests[0].hex() for path, digests in manifest.file_digests().items()}
        if "." in files:
            files = {self.model.name: files["."]}
        return files

    def manifest(self) -> Manifest:
        """The model's manifest: the verified one if integrity passed, else hashed now."""
        if self.verified_manifest is not None:
            return self.verified_manifest
        if self._manifest is None:
            from glassbox.digest import hash_model
            from glassbox.sign import default_signature_path

            # Evidence lying inside a model directory is not part of the model (absolute paths:
            # hash_model reads relative ones against the model directory).
            ignores: list[Path] = []
            if self.model.is_dir():
                inside = self.model.absolute()
                ignores = [
                    f.path.absolute()
                    for f in self.evidence.files
                    if f.path.absolute().parent == inside and f.kind != "recipe"
                ]
                sig = default_signature_path(self.model).absolute()
                if sig.exists() and sig not in ignores:
                    ignores.append(sig)
            self._manifest = hash_model(
                self.model, ignore_paths=ignores, use_cache=False, progress=self.options.progress
            )
        return self._manifest
