"""Walk a fine-tune chain to its root: each base model's digest, signature, lineage and its own
provenance, then that provenance's base, until a pretrained model that names no base.

The audited model's provenance is verified by the provenance link; it names a base model by
digest (``glassbox build`` records it as the ``base-model`` resolved dependency, with the id of
the key that had to sign it and where the key and signature are). Each level then checks, in
order:

1. the base is where the build read it, and its files have the declared digest;
2. its OMS signature verifies with the key the recipe named (pinned by id in the signed
   provenance above it, so a swapped key file is no use);
3. the weights of the level above really derive from it (``glassbox.lm`` lineage);
4. its own provenance (found beside it, as for any model) is signed by a trusted key or by its
   publisher's, and names its files; that provenance's base is the next level.

The first broken link fails the walk, naming the level; a level that cannot be checked here (a
base not available, a base without provenance) ends the walk as *unknown*, never as a pass. A
chain longer than ``max_depth`` levels, or one that names a model already in it, is a failure:
a loop would otherwise never end, and nothing honest is that deep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import GlassboxError, InputError, VerificationError

if TYPE_CHECKING:
    from glassbox.audit.context import AuditContext
    from glassbox.digest import Manifest

#: Levels walked before the chain is called too deep (a fine-tune of a fine-tune of ...).
MAX_CHAIN_DEPTH = 8


@dataclass
class ChainLevel:
    """One base model in the chain: level 1 is the audited model's base."""

    level: int
    declared_digest: str
    path: str | None = None
    verdict: str = "pass"  # pass | fail | unknown
    reason: str = ""
    signature: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    root: bool = False  # a pretrained model: its verified provenance names no base
    name: str | None = None  # the base's own name, from its verified provenance's recipe
    # The key the base's signature verified with: it may also have signed the base's provenance.
    publisher_key: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "path": self.path,
            "declaredDigest": self.declared_digest,
            "verdict": self.verdict,
            "reason": self.reason,
            "signature": self.signature,
            "lineage": self.lineage,
            "provenance": self.provenance,
            "root": self.root,
            "name": self.name,
        }


@dataclass
class ChainReport:
    """The walk: the levels in order, from the audited model's base to the root."""

    levels: list[ChainLevel]

    @property
    def verdict(self) -> str:
        verdicts = {level.verdict for level in self.levels}
        return "fail" if "fail" in verdicts else "unknown" if "unknown" in verdicts else "pass"

    @property
    def broken(self) -> ChainLevel | None:
        return next((lv for lv in self.levels if lv.verdict != "pass"), None)

    def ancestors(self) -> tuple[tuple[str, str], ...]:
        """The bases as a BOM lists them (``BomInputs.ancestors``): (name, OMS root digest),
        nearest first; each digest was declared by a verified provenance."""
        return tuple(
            (lv.name or (Path(lv.path).name if lv.path else "base model"), lv.declared_digest)
            for lv in self.levels
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "depth": len(self.levels),
            "reachesRoot": bool(self.levels) and self.levels[-1].root,
            "levels": [level.to_dict() for level in self.levels],
        }


def declared_base(statement: dict[str, Any]) -> tuple[dict[str, Any] | None, Path | None]:
    """A provenance's base-model dependency and where the build read it (the recipe's code
    directory plus the base's relative path), if it declares one."""
    deps = dependencies(statement)
    base = next((d for d in deps if d.get("name") == "base-model"), None)
    if base is None:
        return None, None
    local = code_dir(statement)
    rel = (base.get("annotations") or {}).get("path")
    if local is None or not isinstance(rel, str):
        return base, None
    return base, local / rel


def declared_base_model(
    model: Path, statement: dict[str, Any] | None = None
) -> tuple[Path | None, str]:
    """The base model the provenance of ``model`` declares, when it is on this machine with
    the declared digest: ``(path, note)``, or ``(None, why not)``. ``statement`` is the
    provenance when the caller has it (the audit's verified one); else the first provenance
    found beside the model is read (its signature is not checked here: the base only serves
    as a reference to compare with, and its digest must still match the declared one).
    Used by the LM backdoor scan's differential analysis (``glassbox scan --behavior``)."""
    from glassbox.audit.evidence import discover, statement_of
    from glassbox.digest import hash_model
    from glassbox.pipeline.inputs import signature_ignores

    where = "the audited provenance"
    if statement is None:
        found = discover(Path(model).absolute()).of("provenance")
        if not found:
            return None, "no provenance beside the model declares a base"
        item = sorted(found, key=lambda f: not f.signed)[0]
        statement, where = statement_of(item), str(item.path)
        if statement is None:
            return None, f"{where}: no readable provenance statement"
    dep, path = declared_base(statement)
    if dep is None:
        return None, f"{where} declares no base model"
    want = str((dep.get("digest") or {}).get("sha256") or "")
    if path is None or not path.is_dir():
        return None, f"the base {where} declares (sha256 {want[:16]}…) is not available here"
    try:
        got = hash_model(path, ignore_paths=signature_ignores(path), use_cache=False)
    except GlassboxError as exc:  # a symlink out of it, an unreadable file: not used
        return None, f"the base at {path} could not be hashed: {exc}"
    if got.root_digest.hex() != want:
        return None, f"the model at {path} is not the base {where} declares (digest differs)"
    return path, f"declared by {where} (sha256 {want[:16]}…)"


def code_dir(statement: dict[str, Any]) -> Path | None:
    """The recipe's code directory as the build recorded it (``code`` dependency)."""
    code = next((d for d in dependencies(statement) if d.get("name") == "code"), {})
    local = (code.get("annotations") or {}).get("localPath")
    return Path(local) if isinstance(local, str) else None


def dependencies(statement: dict[str, Any]) -> list[dict[str, Any]]:
    predicate = statement.get("predicate")
    build = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    deps = build.get("resolvedDependencies") if isinstance(build, dict) else None
    return [d for d in deps if isinstance(d, dict)] if isinstance(deps, list) else []


def walk_chain(
    ctx: AuditContext, statement: dict[str, Any], *, max_depth: int = MAX_CHAIN_DEPTH
) -> ChainReport:
    """Walk from the audited model (whose provenance ``statement`` is already verified) to the
    root of its fine-tune chain. Never raises for what it finds: a level's verdict says it."""
    levels: list[ChainLevel] = []
    child: Path = ctx.model
    seen = {ctx.manifest().root_digest.hex(): "the audited model"}
    depth = 1
    while True:
        dep, path = declared_base(statement)
        if dep is None:
            if levels:
                levels[-1].root = True
            return ChainReport(levels)
        want = str((dep.get("digest") or {}).get("sha256") or "")
        level = ChainLevel(depth, want, str(path) if path is not None else None)
        levels.append(level)
        if depth > max_depth:
            _fail(level, f"the chain is deeper than {max_depth} levels; refusing to walk further")
            return ChainReport(levels)
        if want in seen:
            _fail(level, f"the chain loops: this base is {seen[want]} (sha256 {want[:16]}…)")
            return ChainReport(levels)
        seen[want] = f"level {depth}"
        try:
            nxt = _check_level(ctx, level, dep, path, child, statement)
        except GlassboxError as exc:
            # A base the provenance names that cannot be read safely (a symlink out of it, a
            # file that vanished mid-read) is a broken link, not an unreadable audit.
            _fail(level, f"the base model at {path} could not be checked: {exc}")
            return ChainReport(levels)
        if nxt is None:
            return ChainReport(levels)
        assert path is not None
        child, statement, depth = path, nxt, depth + 1


def _fail(level: ChainLevel, reason: str) -> None:
    level.verdict, level.reason = "fail", reason


def _unknown(level: ChainLevel, reason: str) -> None:
    level.verdict, level.reason = "unknown", reason


def _check_level(
    ctx: AuditContext,
    level: ChainLevel,
    dep: dict[str, Any],
    path: Path | None,
    child: Path,
    parent_statement: dict[str, Any],
) -> dict[str, Any] | None:
    """Check one level; return the base's verified provenance to walk on, or ``None`` when
    the walk ends here (a failure, an unknown, or the root)."""
    from glassbox.digest import hash_model
    from glassbox.pipeline.inputs import signature_ignores

    above = "the" if level.level == 1 else f"level {level.level - 1}'s"
    if path is None or not path.exists():
        level.lineage = {"checked": False, "reason": "base model not found"}
        _unknown(
            level,
            f"the base model {above} provenance declares (sha256 {level.declared_digest[:16]}…) "
            "is not available here, so the lineage of the weights was not checked",
        )
        return None
    manifest = hash_model(path, ignore_paths=signature_ignores(path), use_cache=False)
    got = manifest.root_digest.hex()
    if got != level.declared_digest:
        level.lineage = {"checked": False, "digest": got}
        _fail(level, f"the base model at {path} is not the one {above} provenance declares")
        return None
    if not _check_signature(ctx, level, dep, path, parent_statement, manifest):
        return None
    if not _check_lineage(level, child, path):
        return None
    return _base_provenance(ctx, level, path, manifest)


def _check_signature(
    ctx: AuditContext,
    level: ChainLevel,
    dep: dict[str, Any],
    path: Path,
    parent_statement: dict[str, Any],
    manifest: Manifest,
) -> bool:
    """The base's OMS signature, by the key the recipe named (its id is in the signed
    provenance above). A base whose recipe named no key is noted as unsigned, not failed:
    its bytes are still pinned by the digest in that signed provenance.

    ``manifest`` is the base just hashed from disk: a signature made with the same hash method
    is compared with it rather than hashing the base a second time."""
    from glassbox.sign import (
        default_signature_path,
        load_public_key,
        manifest_from_statement,
        public_key_id,
        read_bundle,
        verify_bundle,
        verify_model,
    )

    notes = dep.get("annotations") or {}
    key_id = notes.get("signedBy")
    if not isinstance(key_id, str):
        level.signature = {"checked": False, "reason": "the recipe named no key for this base"}
        return True
    code = code_dir(parent_statement)
    candidates = [k.key for k in ctx.trusted_keys() if k.key_id == key_id]
    key_rel = notes.get("key")
    if not candidates and isinstance(key_rel, str) and code is not None:
        try:
            pub = load_public_key(code / key_rel)
        except GlassboxError:
            pub = None
        if pub is not None and public_key_id(pub) == key_id:
            candidates.append(pub)
    level.signature = {"checked": True, "keyId": key_id}
    if not candidates:
        level.signature["checked"] = False
        _unknown(
            level,
            f"the base's publisher key (id {key_id[:16]}…) is not available: give it with --key",
        )
        return False
    sig_rel = notes.get("signature")
    sig = code / sig_rel if isinstance(sig_rel, str) and code is not None else None
    sig_path = sig if sig is not None else default_signature_path(path)
    try:
        if not sig_path.exists():
            raise InputError(f"{sig_path}: signature file not found")
        where = str(sig_path)
        statement = verify_bundle(read_bundle(sig_path), candidates[0], where=where)
        signed = manifest_from_statement(statement, where=where)
        if signed.method != manifest.method:  # another hash method: the files must be re-hashed
            signed = verify_model(path, candidates[0], signature_path=sig_path)
    except InputError as exc:
        _fail(level, f"the base model at {path} is not signed: {exc}")
        return False
    except VerificationError as exc:
        _fail(
            level,
            f"the base model at {path} is not signed by the key its recipe named "
            f"(id {key_id[:16]}…): {exc}",
        )
        return False
    if signed.root_digest.hex() != level.declared_digest:
        _fail(level, f"the signature over the base model at {path} covers other files")
        return False
    level.signature["verified"] = True
    level.publisher_key = candidates[0]
    return True


def _check_lineage(level: ChainLevel, child: Path, base: Path) -> bool:
    """The weights of the level above derive from this base (``glassbox.lm``); a model the
    lineage code cannot read is noted, not failed (the signed digests still hold)."""
    try:
        from glassbox.lm import compare_weights

        result = compare_weights(child, base)
    except ImportError as exc:
        level.lineage = {"checked": False, "reason": f"needs the 'lm' extra ({exc.name})"}
        return True
    except GlassboxError as exc:
        level.lineage = {"checked": False, "reason": str(exc)}
        return True
    summary = result.to_dict()
    level.lineage = {
        "checked": True,
        "base": str(base),
        "baseDigest": level.declared_digest,
        "score": summary["score"],
        "verdict": summary["verdict"],
        "reason": summary["reason"],
        "layers": summary["layers"],
        "residualAlignment": summary["residualAlignment"],
    }
    if result.derived:
        return True
    what = "the weights" if level.level == 1 else f"the weights of level {level.level - 1}"
    _fail(
        level,
        f"{what} do not derive from the declared base model ({result.verdict}: lineage score "
        f"{result.score:.3f})",
    )
    return False


def _base_provenance(
    ctx: AuditContext, level: ChainLevel, path: Path, manifest: Manifest
) -> dict[str, Any] | None:
    """The base's own provenance, found beside it like any model's evidence, verified with a
    trusted key or the base publisher's; its subjects must be the base's files."""
    from glassbox.audit.evidence import as_bundle, discover
    from glassbox.sign import verify_bundle

    try:
        evidence = discover(path)
    except InputError as exc:
        _unknown(level, f"the base's evidence could not be read: {exc}")
        return None
    found = sorted(evidence.of("provenance"), key=lambda f: not f.signed)
    if not found:
        _unknown(
            level, f"no build provenance found for the base model at {path}: its origin is unknown"
        )
        return None
    item = found[0]
    level.provenance = {"path": str(item.path), "signed": item.signed}
    if not item.signed:
        _unknown(level, f"the base's provenance {item.path} is not signed")
        return None
    keys = [(k.key_id, k.key) for k in ctx.trusted_keys()]
    if level.publisher_key is not None:
        keys.append((str(level.signature["keyId"]), level.publisher_key))
    verified = None
    for key_id, pub in keys:
        try:
            verified = verify_bundle(as_bundle(item), pub, where=str(item.path))
        except VerificationError:
            continue
        except GlassboxError as exc:
            _fail(level, f"the base's provenance {item.path} is malformed: {exc}")
            return None
        level.provenance["keyId"] = key_id
        break
    if verified is None:
        _fail(
            level,
            f"the base's provenance {item.path} is not signed by a trusted key or the base's "
            "publisher",
        )
        return None
    problem = _subject_problem(verified, manifest)
    if problem is not None:
        _fail(level, f"the base's provenance {item.path}: {problem}")
        return None
    from glassbox.bom.provenance import recipe_of

    name = recipe_of(verified).get("name")
    level.name = name if isinstance(name, str) and name else None
    return verified


def _subject_problem(statement: dict[str, Any], manifest: Manifest) -> str | None:
    """``None`` if the statement's subjects are the base's files (by name and SHA-256, or its
    OMS root digest), else what differs."""
    from glassbox.audit.evidence import subject_sha256

    subjects = [s for s in statement.get("subject", []) if isinstance(s, dict)]
    if not subjects:
        return "it names no subjects"
    root = manifest.root_digest.hex()
    if any(subject_sha256(s) == root for s in subjects):
        return None
    files = {p: d[0].hex() for p, d in manifest.file_digests().items()}
    if "." in files:  # a single-file model: its subject is named by the file's name
        files = {manifest.model_name: files["."]}
    for item in subjects:
        name = str(item.get("name", ""))
        if files.get(name) != subject_sha256(item):
            return f"its output {name} is not this base's file of that name"
    return None
