"""Digests of everything a build reads: code manifest, dataset commitments, base model.

Computed before training and compared with what the recipe declares, so a build never starts
from inputs other than the declared ones; rebuild and spot-check compute them again and compare
with the provenance, naming what changed (a dataset, a file, a line).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.digest import Manifest, hash_model
from glassbox.errors import VerificationError
from glassbox.pipeline.recipe import Recipe

# Tool caches that are never part of the recipe's code (and whose reads are therefore flagged).
CACHE_DIRS = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".ipynb_checkpoints"}
)
LINE_HASH_SUFFIXES = frozenset({".py", ".toml", ".cfg", ".txt", ".json", ".yaml", ".yml"})
LINE_HASH_MAX_BYTES = 256 << 10
DATASET_DIGEST_KEY = "rfc9162-sha256"


MAX_CHUNKS = 1024


@dataclass(frozen=True)
class ResolvedInputs:
    code: Manifest
    code_lines: dict[str, list[str]]
    datasets: dict[str, Any]  # name -> DatasetCommitment
    base_model: Manifest | None
    dataset_chunks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def declared_files(self, code_dir: Path) -> list[str]:
        """Exact files the training may read from the code directory."""
        return [str(code_dir / item.path) for item in self.code.items]


def code_ignores(recipe: Recipe, extra: list[Path]) -> list[str]:
    """Paths inside the code directory left out of the code manifest.

    Declared datasets and the base model are covered by their own digests; the build's output
    directory and tool caches are not source.
    """
    root = recipe.code_dir.resolve()
    ignores: set[str] = set()
    candidates = [d.path for d in recipe.datasets] + list(extra)
    if recipe.base_model is not None:
        candidates.append(recipe.base_model.path)
    for path in candidates:
        try:
            rel = path.resolve().relative_to(root)
        except ValueError:
            continue
        if rel.parts:
            ignores.add(rel.as_posix())
    for dirpath, dirnames, _ in os.walk(root):
        for name in list(dirnames):
            if name in CACHE_DIRS:
                ignores.add((Path(dirpath) / name).relative_to(root).as_posix())
                dirnames.remove(name)
    return sorted(ignores)


def line_hashes(code_dir: Path, manifest: Manifest) -> dict[str, list[str]]:
    """Short per-line digests of small text files, so a rebuild can name the changed line."""
    out: dict[str, list[str]] = {}
    for item in manifest.items:
        path = code_dir / item.path
        if path.suffix not in LINE_HASH_SUFFIXES or item.size > LINE_HASH_MAX_BYTES:
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        out[item.path] = [
            hashlib.sha256(line.encode()).hexdigest()[:16] for line in text.splitlines()
        ]
    return out


def record_chunks(path: Path, fmt: str | None, size: int) -> dict[str, Any]:
    """Merkle roots of consecutive runs of records (at most ``MAX_CHUNKS`` of them).

    The commitment root says *that* a dataset changed; these say *where*: a rebuild compares
    them with its local copy and names the changed record (or, for datasets of more than
    ``MAX_CHUNKS`` records, the smallest range holding it) without the original data. Runs are
    a power of two long, so each is a node of the commitment's own RFC 9162 tree.
    """
    from glassbox.digest.merkle import leaf_hashes, perfect_root, root_of
    from glassbox.digest.records import open_records

    per_chunk = 1
    while size > per_chunk * MAX_CHUNKS:
        per_chunk *= 2
    roots: list[str] = []
    # A batch of records at a time, leaves in one comprehension and each full chunk's subtree
    # level by level: one Python frame per chunk, not per record (this runs once per input of
    # every pipeline step).
    pending: list[bytes] = []
    for batch in open_records(path, fmt).batches:
        pending.extend(leaf_hashes(batch))
        full = len(pending) - len(pending) % per_chunk
        roots.extend(
            perfect_root(pending[at : at + per_chunk]).hex() for at in range(0, full, per_chunk)
        )
        del pending[:full]
    if pending:
        roots.append(root_of(pending).hex())
    return {"records_per_chunk": per_chunk, "roots": roots}


def changed_records(recorded: dict[str, Any], current: dict[str, Any]) -> list[tuple[int, int]]:
    """Record ranges ``[start, end)`` whose chunk roots differ (same chunking on both sides)."""
    per = int(recorded.get("records_per_chunk", 0))
    if per < 1 or per != int(current.get("records_per_chunk", -1)):
        return []
    old, new = list(recorded.get("roots", [])), list(current.get("roots", []))
    ranges = []
    for index in range(max(len(old), len(new))):
        if index >= len(old) or index >= len(new) or old[index] != new[index]:
            ranges.append((index * per, (index + 1) * per))
    return ranges


def resolve_inputs(recipe: Recipe, *, exclude: list[Path] | None = None) -> ResolvedInputs:
    """Hash every declared input (no comparison yet)."""
    from glassbox.digest import commit_dataset

    code = hash_model(
        recipe.code_dir,
        ignore_paths=code_ignores(recipe, exclude or []),
        use_cache=False,
        model_name=recipe.name,
    )
    datasets = {d.name: commit_dataset(d.path, fmt=d.format) for d in recipe.datasets}
    base = None
    if recipe.base_model is not None:
        base = hash_model(
            recipe.base_model.path, ignore_paths=signature_ignores(recipe.base_model.path)
        )
    chunks = {
        d.name: record_chunks(d.path, d.format, datasets[d.name].size) for d in recipe.datasets
    }
    return ResolvedInputs(code, line_hashes(recipe.code_dir, code), datasets, base, chunks)


def signature_ignores(model: Path) -> list[str]:
    """A model directory's own OMS signature (``model.sig``) is not part of the model: its
    digest is the OMS root digest, the one ``glassbox digest`` prints and a signature covers."""
    from glassbox.digest.manifest import DEFAULT_SIGNATURE_NAME

    return [DEFAULT_SIGNATURE_NAME] if model.is_dir() else []


def check_declared(recipe: Recipe, inputs: ResolvedInputs) -> None:
    """Raise ``VerificationError`` naming the recipe line if an input is not what it declares."""
    for spec in recipe.datasets:
        got = inputs.datasets[spec.name]
        root = got.root.hex()
        if root != spec.commitment:
            raise VerificationError(
                f"{recipe.where('datasets', recipe.datasets.index(spec), 'commitment')}: dataset "
                f"{spec.name!r} ({spec.relpath}) does not match its declared commitment "
                f"{spec.commitment[:16]}…: its records commit to {root}; restore the data, or if "
                f'the change is intended set commitment = "{root}"'
            )
        if spec.records is not None and got.size != spec.records:
            raise VerificationError(
                f"{recipe.where('datasets', recipe.datasets.index(spec), 'records')}: dataset "
                f"{spec.name!r} has {got.size} records, the recipe declares {spec.records}"
            )
    if recipe.base_model is not None and inputs.base_model is not None:
        root = inputs.base_model.root_digest.hex()
        if root != recipe.base_model.digest:
            raise VerificationError(
                f"{recipe.where('base_model', 'digest')}: base model {recipe.base_model.relpath} "
                f"has digest sha256:{root}, not the declared one; "
                f'if the change is intended set digest = "sha256:{root}"'
            )
        if recipe.base_model.key is not None:
            check_base_signature(recipe)


def check_base_signature(recipe: Recipe) -> str:
    """The declared base model carries an OMS signature by the declared key, over exactly
    the declared digest; returns the key's id. Checked before any training starts."""
    from glassbox.errors import InputError
    from glassbox.sign import load_public_key, public_key_id, verify_model

    spec = recipe.base_model
    assert spec is not None and spec.key is not None
    where = recipe.where("base_model", "key")
    pub = load_public_key(spec.key)
    try:
        manifest = verify_model(spec.path, pub, signature_path=spec.signature)
    except InputError as exc:
        raise VerificationError(
            f"{where}: base model {spec.relpath} is not signed: {exc}"
        ) from None
    except VerificationError as exc:
        raise VerificationError(
            f"{where}: base model {spec.relpath} is not signed by {spec.key_relpath}: {exc}"
        ) from None
    if manifest.root_digest.hex() != spec.digest:
        raise VerificationError(
            f"{where}: the signature over base model {spec.relpath} covers other files "
            f"(sha256:{manifest.root_digest.hex()}) than the declared digest"
        )
    return public_key_id(pub)


def changed_lines(recorded: list[str], current: list[str]) -> list[int]:
    """1-based line numbers (in the current file) that differ from the recorded line digests."""
    import difflib

    if len(recorded) == len(current):
        # Lines edited in place (the usual case): compare by position, no alignment guesswork.
        return [i + 1 for i, (a, b) in enumerate(zip(recorded, current, strict=True)) if a != b]
    lines: list[int] = []
    matcher = difflib.SequenceMatcher(a=recorded, b=current, autojunk=False)
    for tag, _a0, _a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if b0 == b1:  # deletion: point at the line after the gap (or the last line)
            lines.append(min(b0 + 1, max(len(current), 1)))
        else:
            lines.extend(range(b0 + 1, b1 + 1))
    return sorted(set(lines))
