"""Find the evidence about a model: beside it, inside it, or named on the command line.

Files are recognised by what they contain, not by what they are called, so a provenance
statement named ``attestation.json`` and one named ``digits.intoto.jsonl`` are both found, and a
file that merely looks like evidence but is not is ignored. Classification reads the DSSE
payload's in-toto ``predicateType`` *without* trusting it; every link verifies its own evidence
before using it. Nothing here follows a symlink out of the model directory or reads a file larger
than ``MAX_EVIDENCE_BYTES``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.digest.walk import is_model_file
from glassbox.errors import InputError
from glassbox.files import read_small_file

MAX_EVIDENCE_BYTES = 64 << 20
OMS_PREDICATE = "https://model_signing/signature/v1.0"
SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"}
)
_CANDIDATE_SUFFIXES = frozenset(
    {".sig", ".json", ".jsonl", ".bundle", ".intoto", ".toml", ".yml", ".yaml", ".proof"}
)
# glassbox.tlog's offline proof bundle, and the names glassbox.pipeline gives its provenance
# files in the build output directory (beside the model directory it writes).
PROOF_FORMAT = "glassbox-tlog-proof/v1"
SCAN_PREDICATE_PREFIX = "https://glassbox.dev/scan/"  # glassbox.scan.SCAN_PREDICATE_TYPE
PROBE_PREDICATE_PREFIX = "https://glassbox.dev/probe/"  # glassbox.lm.PROBE_PREDICATE_TYPE
BUILD_EVIDENCE_NAMES = frozenset({"provenance.sigstore.json", "provenance.intoto.json"})
KINDS = ("signature", "provenance", "scan", "probe", "log-proof", "bom", "recipe", "mof")


@dataclass(frozen=True)
class EvidenceFile:
    """One piece of evidence: where it is, what it is, and its parsed content."""

    kind: str
    path: Path
    document: Any
    predicate_type: str | None = None
    signed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "predicate_type": self.predicate_type,
            "signed": self.signed,
        }


@dataclass
class Evidence:
    """Everything found for a model, by kind, plus what could not be read."""

    model: Path
    files: list[EvidenceFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[EvidenceFile]:
        return [f for f in self.files if f.kind == kind]

    def first(self, kind: str) -> EvidenceFile | None:
        found = self.of(kind)
        return found[0] if found else None

    def add(self, item: EvidenceFile) -> None:
        if all(f.path.resolve() != item.path.resolve() for f in self.files):
            self.files.append(item)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.model),
            "files": [f.to_dict() for f in self.files],
            "problems": list(self.problems),
        }


def discover(model: Path, named: dict[str, list[Path]] | None = None) -> Evidence:
    """Collect evidence for ``model``; files ``named`` by option must exist and be of that kind.

    Looked at: the files at the top of a model directory and in its ``.glassbox`` folder, and the
    files beside the model whose names start with the model's name (``digits.sig``,
    ``digits.provenance.json``).
    """
    if not model.exists():
        raise InputError(f"model path {model} does not exist")
    evidence = Evidence(model)
    for kind, paths in (named or {}).items():
        for path in paths:
            item = classify(path, strict=True)
            if item is None or item.kind != kind:
                found = item.kind if item else "not recognisable evidence"
                raise InputError(f"{path}: given as {kind} evidence, but it is {found}")
            evidence.add(item)
    for path in _candidates(model):
        try:
            item = classify(path)
        except InputError as exc:
            evidence.problems.append(str(exc))
            continue
        if item is not None:
            evidence.add(item)
    _add_default_signature(model, evidence)
    return evidence


def _add_default_signature(model: Path, evidence: Evidence) -> None:
    """The OMS default signature path counts as a signature even when it cannot be parsed.

    A damaged ``model.sig`` must fail the integrity link, not vanish into "no signature".
    """
    path = model / "model.sig" if model.is_dir() else model.with_name(model.name + ".sig")
    if evidence.of("signature") or not is_model_file(path):
        return
    evidence.add(EvidenceFile("signature", path, None))  # add() skips a file already found


def _candidates(model: Path) -> list[Path]:
    places: list[tuple[Path, str]] = []
    if model.is_dir():
        places.append((model, ""))
        places.append((model / ".glassbox", ""))
        places.append((model.parent, model.name + "."))
    else:
        places.append((model.parent, model.name + "."))
        places.append((model.parent, model.stem + "."))
    out: list[Path] = []
    for directory, prefix in places:
        if not directory.is_dir() or (directory.is_symlink() and directory != model):
            continue
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            continue
        for path in entries:
            name = path.name
            if prefix and not name.startswith(prefix) and name not in BUILD_EVIDENCE_NAMES:
                continue
            if path.suffix.lower() in _CANDIDATE_SUFFIXES and path.is_file():
                if path == model or not is_model_file(path):
                    continue
                if path not in out:
                    out.append(path)
    return out


def classify(path: Path, *, strict: bool = False) -> EvidenceFile | None:
    """What kind of evidence ``path`` holds, or ``None``; ``strict`` makes unreadable an error."""
    raw = read_small_file(path, MAX_EVIDENCE_BYTES, "release evidence")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return _classify_toml(path, raw, strict)
    if suffix in {".yml", ".yaml"}:
        return _classify_yaml(path, raw, strict)
    try:
        text = raw.decode("utf-8")
        if suffix == ".jsonl":
            lines = [line for line in text.splitlines() if line.strip()]
            text = lines[0] if lines else ""
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        if strict:
            raise InputError(f"{path}: not JSON evidence: {exc}") from exc
        return None
    return _classify_json(path, doc)


def _classify_json(path: Path, doc: Any) -> EvidenceFile | None:
    if not isinstance(doc, dict):
        return None
    if doc.get("bomFormat") == "CycloneDX":
        return EvidenceFile("bom", path, doc)
    envelope = doc.get("dsseEnvelope") if "mediaType" in doc else None
    signed = envelope is not None
    if envelope is None and {"payload", "payloadType", "signatures"} <= doc.keys():
        envelope, signed = doc, True
    statement = _statement_of(envelope) if envelope is not None else doc
    statement_type = statement.get("_type") if isinstance(statement, dict) else None
    if (
        isinstance(statement, dict)
        and isinstance(statement_type, str)
        and (statement_type in STATEMENT_TYPES)
    ):
        predicate = statement.get("predicateType")
        predicate = predicate if isinstance(predicate, str) else None
        kind = _kind_of_predicate(predicate)
        if kind is None:
            return None
        return EvidenceFile(kind, path, doc, predicate, signed)
    if _looks_like_proof(doc):
        return EvidenceFile("log-proof", path, doc)
    return None


def _kind_of_predicate(predicate: str | None) -> str | None:
    if predicate is None:
        return None
    if predicate == OMS_PREDICATE:
        return "signature"
    if predicate.startswith("https://slsa.dev/provenance/"):
        return "provenance"
    if predicate.startswith(SCAN_PREDICATE_PREFIX):
        return "scan"
    if predicate.startswith(PROBE_PREDICATE_PREFIX):
        return "probe"
    return None


def _statement_of(envelope: Any) -> Any:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
        return None
    try:
        return json.loads(base64.b64decode(envelope["payload"], validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return None


def statement_of(item: EvidenceFile) -> dict[str, Any] | None:
    """The (unverified) in-toto statement inside an evidence file, for display and matching."""
    doc = item.document
    if not isinstance(doc, dict):
        return None
    if "dsseEnvelope" in doc:
        found = _statement_of(doc["dsseEnvelope"])
    elif "payload" in doc:
        found = _statement_of(doc)
    else:
        found = doc
    return found if isinstance(found, dict) else None


def subject_sha256(subject: dict[str, Any]) -> str | None:
    """An (unverified) in-toto subject's SHA-256 hex digest, or None when it names none."""
    digest = subject.get("digest")
    value = digest.get("sha256") if isinstance(digest, dict) else None
    return value if isinstance(value, str) else None


def as_bundle(item: EvidenceFile) -> dict[str, Any]:
    """A signed evidence file as a Sigstore bundle, so ``verify_bundle`` applies unchanged to
    bare DSSE envelopes too (their key is then checked by signature alone, with no hint)."""
    doc = item.document
    if not isinstance(doc, dict):
        raise InputError(f"{item.path}: not a signed statement")
    if "dsseEnvelope" in doc:
        return doc
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
        "dsseEnvelope": doc,
    }


def _looks_like_proof(doc: dict[str, Any]) -> bool:
    """An offline log proof bundle: a checkpoint plus an inclusion proof for one entry."""
    if doc.get("format") == PROOF_FORMAT:
        return True
    keys = set(doc)
    has_checkpoint = bool(keys & {"checkpoint", "signed_checkpoint", "signedCheckpoint"})
    has_proof = bool(keys & {"inclusion_proof", "inclusionProof", "proof", "inclusion"})
    return has_checkpoint and has_proof


def _classify_toml(path: Path, raw: bytes, strict: bool) -> EvidenceFile | None:
    import tomllib

    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        if strict:
            raise InputError(f"{path}: not a TOML recipe: {exc}") from exc
        return None
    # A glassbox.pipeline recipe (buildType https://glassbox.dev/build/recipe/v1): a name and a
    # [code] table naming the entry point.
    code = doc.get("code")
    if isinstance(doc.get("name"), str) and isinstance(code, dict) and "entry" in code:
        return EvidenceFile("recipe", path, doc)
    return None


def _classify_yaml(path: Path, raw: bytes, strict: bool) -> EvidenceFile | None:
    import yaml  # type: ignore[import-untyped]

    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        if strict:
            raise InputError(f"{path}: not a YAML file: {exc}") from exc
        return None
    framework = doc.get("framework") if isinstance(doc, dict) else None
    if isinstance(framework, dict) and framework.get("name") == "Model Openness Framework":
        return EvidenceFile("mof", path, doc)
    return None
