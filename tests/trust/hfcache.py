"""Build Hugging Face hub caches on disk exactly as ``huggingface_hub`` lays them out.

Shared by every test that needs a model "where it lives": the digest walk, signing, scanning,
``hf:`` names, and the trust gate's loaders. Nothing is downloaded: the files come from a local
directory (e.g. a tiny ``transformers`` model saved with ``save_pretrained``).

Layout written (``huggingface_hub`` 1.x and later, checked by ``scan_cache_dir`` in the tests)::

    <cache>/models--org--name/
        blobs/<etag>                 file content; etag = sha256 for LFS files, git blob sha1
                                     for the rest (what the hub reports as the ETag)
        refs/<ref>                   the commit hash, no newline
        snapshots/<commit>/<path>    relative symlink -> ../../blobs/<etag>

With ``shared_store=True`` LFS blobs go into the cache-wide deduplicating store instead:
``<cache>/blobs/<hh>/<hash>`` (marked by ``<cache>/blobs/.huggingface-shared-blobs``), and the
repository's ``blobs/<etag>`` is a relative symlink to it, as ``huggingface_hub`` does for Xet
files.

API::

    repo = add_to_hf_cache(cache_dir, "org/name", source_dir)   # -> CachedRepo
    repo.snapshot      # .../models--org--name/snapshots/<commit>  (pass as MODEL)
    repo.repo_dir      # .../models--org--name  (the symlink boundary)
    repo.commit        # 40 hex; refs/main holds it
    save_tiny_model(dest)  # a tiny random BERT saved with save_pretrained (no download)
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# Files the hub stores in LFS by default (``.gitattributes`` of a new repository).
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".msgpack")
SHARED_MARKER = ".huggingface-shared-blobs"


@dataclass(frozen=True)
class CachedRepo:
    cache_dir: Path
    repo_id: str
    repo_dir: Path
    snapshot: Path
    commit: str


def repo_folder(repo_id: str, repo_type: str = "model") -> str:
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def _files(source: Path) -> list[tuple[str, Path]]:
    found = []
    for dirpath, _dirs, names in os.walk(source):
        for name in names:
            p = Path(dirpath) / name
            found.append((p.relative_to(source).as_posix(), p))
    return sorted(found)


def add_to_hf_cache(
    cache_dir: Path,
    repo_id: str,
    source: Path,
    *,
    ref: str | None = "main",
    commit: str | None = None,
    shared_store: bool = False,
) -> CachedRepo:
    """Store every file under ``source`` as revision ``commit`` of ``repo_id`` in the cache.

    ``commit`` defaults to a hash of the file list and contents (so two different sources give
    two revisions sharing the blobs they have in common); ``ref`` (``main``) is pointed at it.
    """
    files = _files(source)
    repo_dir = cache_dir / repo_folder(repo_id)
    blobs = repo_dir / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    etags: list[tuple[str, str]] = []
    for rel, path in files:
        data = path.read_bytes()
        lfs = rel.endswith(LFS_SUFFIXES)
        etag = hashlib.sha256(data).hexdigest() if lfs else _git_blob_sha1(data)
        etags.append((rel, etag))
        blob = blobs / etag
        if blob.exists() or blob.is_symlink():
            continue
        if lfs and shared_store:
            store = cache_dir / "blobs"
            store.mkdir(exist_ok=True)
            (store / SHARED_MARKER).write_text("1\n")
            entry = store / etag[:2] / etag
            entry.parent.mkdir(exist_ok=True)
            if not entry.exists():
                shutil.copyfile(path, entry)
            blob.symlink_to(os.path.relpath(entry, blob.parent))
        else:
            shutil.copyfile(path, blob)
    if commit is None:
        listing = "\n".join(f"{rel} {etag}" for rel, etag in etags).encode()
        commit = hashlib.sha1(listing, usedforsecurity=False).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    for rel, etag in etags:
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(blobs / etag, link.parent))
    snapshot.mkdir(parents=True, exist_ok=True)
    if ref is not None:
        ref_file = repo_dir / "refs" / ref
        ref_file.parent.mkdir(parents=True, exist_ok=True)
        ref_file.write_text(commit)
    return CachedRepo(cache_dir, repo_id, repo_dir, snapshot, commit)


def save_tiny_model(dest: Path, *, seed: int = 0) -> Path:
    """A tiny random BERT (config, safetensors weights) saved with ``save_pretrained``."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    BertModel(config).save_pretrained(dest)
    return dest
