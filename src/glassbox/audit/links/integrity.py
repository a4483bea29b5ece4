"""Integrity: the files are exactly what a trusted producer signed (OMS signature).

Fails when a signature by a trusted key does not match the files (naming which differ), when
no trusted key verifies the signature, or when the signature file is malformed. Unknown when
there is no signature, or no key to trust it with: a signature nobody trusts proves nothing.
"""

from __future__ import annotations

from typing import Any

from glassbox.audit.context import AuditContext, TrustedKey
from glassbox.audit.evidence import EvidenceFile
from glassbox.audit.verdict import LinkResult, unavailable
from glassbox.errors import InputError, VerificationError

LINK = "integrity"


def check(ctx: AuditContext) -> LinkResult:
    try:
        from glassbox.sign import ModelVerificationError, verify_model
    except ImportError as exc:
        return unavailable(LINK, "sign", str(exc))
    signatures = ctx.evidence.of("signature")
    if not signatures:
        return LinkResult.unknown(
            LINK, "no OMS signature found beside the model (model.sig) or given with --signature"
        )
    if ctx.options.policy is not None:
        return _check_with_policy(ctx, signatures)
    keys = ctx.trusted_keys()
    first = signatures[0]
    if not keys:
        return LinkResult.unknown(
            LINK,
            "a signature is present, but no trusted producer key was given (--key)"
            + _signed_by(first),
            signature=str(first.path),
            signer_key_id=_signer(first),
        )
    tried: list[dict[str, Any]] = []
    last_error = ""
    for signature in signatures:
        for key in _ordered(keys, _hint(signature)):
            try:
                manifest = verify_model(
                    ctx.model,
                    key.key,
                    signature_path=signature.path,
                    progress=ctx.options.progress,
                )
            except ModelVerificationError as exc:
                diff = exc.diff
                result = LinkResult.fail(
                    LINK,
                    f"files differ from the signed manifest: {_describe(diff)}",
                    signature=str(signature.path),
                    key_id=key.key_id,
                    key_file=str(key.path),
                    modified=list(diff.modified),
                    added=list(diff.added),
                    removed=list(diff.removed),
                )
                result.details.append(str(exc))
                return result
            except VerificationError as exc:
                tried.append({"signature": str(signature.path), "key_id": key.key_id})
                last_error = str(exc)
                continue
            except InputError as exc:
                return LinkResult.fail(
                    LINK, f"signature is malformed: {exc}", signature=str(signature.path)
                )
            ctx.verified_manifest = manifest
            if isinstance(signature.document, dict):
                ctx.signature_bundle = signature.document
            return LinkResult.passed(
                LINK,
                f"{len(manifest.file_digests())} files match the signature by key "
                f"{key.key_id[:16]}",
                signature=str(signature.path),
                key_id=key.key_id,
                key_file=str(key.path),
                root_digest="sha256:" + manifest.root_digest.hex(),
                hash_method=manifest.method.name,
                files=len(manifest.file_digests()),
                total_size=manifest.total_size,
            )
    trusted = ", ".join(k.key_id[:16] for k in keys)
    result = LinkResult.fail(
        LINK,
        f"the signature does not verify with any trusted key ({trusted}){_signed_by(first)}",
        signer_key_id=_signer(first),
        trusted_key_ids=[k.key_id for k in keys],
        tried=tried,
    )
    result.details.append(last_error)
    return result


def _signer(signature: EvidenceFile) -> str | None:
    """The signer's key id, recovered from the signature (unauthenticated: names, not trusts)."""
    from glassbox.sign import bundle_signer_id

    doc = signature.document
    return bundle_signer_id(doc, where=str(signature.path)) if isinstance(doc, dict) else None


def _signed_by(signature: EvidenceFile) -> str:
    signer = _signer(signature)
    return f"; it was made by key {signer[:16]}" if signer else ""


def _check_with_policy(ctx: AuditContext, signatures: list[EvidenceFile]) -> LinkResult:
    """Integrity under a trust policy: who signed it, by the policy's name for them.

    The publisher is decided by ``glassbox.trust``'s gate (the same code ``verify --policy``
    and the loaders run), so a pass says "signed by <publisher>", never merely "signed".
    """
    from glassbox.sign import ModelVerificationError, check_files
    from glassbox.trust.gate import authenticate
    from glassbox.trust.locations import resolve_model

    policy = ctx.options.policy
    assert policy is not None
    name = ctx.model_name()
    messages: list[str] = []
    for signature in signatures:
        try:
            auth, reason = authenticate(signature.path, policy, name)
        except InputError as exc:
            return LinkResult.fail(
                LINK, f"signature is malformed: {exc}", signature=str(signature.path)
            )
        if auth is None:
            messages.append(reason.message if reason else "refused")
            continue
        try:
            manifest = check_files(
                ctx.model,
                auth.expected,
                signature.path,
                progress=ctx.options.progress,
                link_root=resolve_model(ctx.model).repo_root,
            )
        except ModelVerificationError as exc:
            result = LinkResult.fail(
                LINK,
                f"signed by {auth.publisher.name}, but files differ from the signed manifest: "
                f"{_describe(exc.diff)}",
                signature=str(signature.path),
                publisher=auth.publisher.name,
                key_id=auth.key_id,
                modified=list(exc.diff.modified),
                added=list(exc.diff.added),
                removed=list(exc.diff.removed),
            )
            result.details.append(str(exc))
            return result
        ctx.verified_manifest = manifest
        if isinstance(signature.document, dict):
            ctx.signature_bundle = signature.document
        return LinkResult.passed(
            LINK,
            f"signed by {auth.publisher.name} ({auth.signer}); "
            f"{len(manifest.file_digests())} files match",
            signature=str(signature.path),
            publisher=auth.publisher.name,
            signer=auth.signer,
            model_name=name,
            key_id=auth.key_id,
            root_digest="sha256:" + manifest.root_digest.hex(),
            hash_method=manifest.method.name,
            files=len(manifest.file_digests()),
            total_size=manifest.total_size,
        )
    unknown = all("does not know" in m for m in messages)
    result = LinkResult.fail(
        LINK,
        "signed by a key your policy does not know"
        if unknown
        else messages[0]
        if messages
        else "no signature the policy accepts",
        signature=str(signatures[0].path),
        model_name=name,
        policy=str(policy.source),
    )
    result.details.extend(messages)
    return result


def _hint(signature: EvidenceFile) -> str | None:
    doc = signature.document
    if not isinstance(doc, dict):
        return None
    material = doc.get("verificationMaterial")
    public = material.get("publicKey") if isinstance(material, dict) else None
    hint = public.get("hint") if isinstance(public, dict) else None
    return hint if isinstance(hint, str) else None


def _ordered(keys: list[TrustedKey], hint: str | None) -> list[TrustedKey]:
    """Keys whose hint matches first; the hint is unauthenticated, so it only orders."""
    return sorted(keys, key=lambda k: k.hint != hint)


def _describe(diff: Any, shown: int = 5) -> str:
    """``modified: a, b; added: c`` with long lists cut (the evidence keeps every name)."""
    parts = []
    for label, names in (
        ("modified", diff.modified),
        ("added", diff.added),
        ("removed", diff.removed),
    ):
        if names:
            more = f" (+{len(names) - shown} more)" if len(names) > shown else ""
            parts.append(f"{label}: {', '.join(names[:shown])}{more}")
    return "; ".join(parts) or "no differences"
