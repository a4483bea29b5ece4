"""Model locations: a path, a Hugging Face cache snapshot, or ``hf:org/name@REVISION``.

``resolve_model`` turns what a user typed into a ``ModelLocation``: the directory (or file) to
hash, scan or load, and, for a cache snapshot, the cached repository it may link into (the
symlink boundary ``glassbox.digest`` enforces), the repository id and the commit.

``hf:`` names are looked up in the local hub cache and never downloaded:

* ``hf:org/name`` and ``hf:org/name@main`` read ``refs/main`` for the commit;
  ``@v1.0`` or ``@refs/pr/1`` read that ref; ``@<40 hex>`` names the snapshot directly.
* The cache is found as ``huggingface_hub`` finds it, re-read from the environment on every
  call: ``HF_HUB_CACHE``, else the legacy ``HUGGINGFACE_HUB_CACHE``, else ``HF_HOME/hub``, else
  ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``. This is a few lines,
  so ``huggingface_hub`` is not needed (it is not a dependency of hashing or signing, and its
  constants are frozen at its import, which would ignore a later ``HF_HUB_CACHE``); a test
  checks these lines against ``huggingface_hub.constants``.
* Names and revisions are checked before any path is built from them (no ``..``, no
  absolute paths, the hub's own character set), and a ref file must hold exactly a commit hash.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from glassbox.digest.walk import hf_snapshot_repo
from glassbox.errors import InputError

HF_PREFIX = "hf:"
# The hub's repository-name rule (huggingface_hub.utils.validate_repo_id): one or two parts of
# letters, digits, "-", "_", ".", not starting or ending with "-" or ".", no "--" or "..".
_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REF_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
# A ref file is a commit hash (no newline, as huggingface_hub writes it); read at most this.
_REF_LIMIT = 256


@dataclass(frozen=True)
class ModelLocation:
    """Where a model is, and what it may link into.

    ``repo_root`` is the cached repository (``.../models--org--name``) for a cache snapshot,
    the only place its symlinks may lead; ``None`` for a plain directory or file, whose
    symlinks are refused unless allowed (and never leave it). ``repo_id``, ``revision`` (the
    commit) and ``ref`` (what the user asked for: ``main``, a tag, or the commit) are set for
    snapshots, ``ref`` only for ``hf:`` names.
    """

    spec: str
    path: Path
    repo_root: Path | None = None
    repo_id: str | None = None
    revision: str | None = None
    ref: str | None = None

    @property
    def is_snapshot(self) -> bool:
        return self.repo_root is not None


def hf_hub_cache() -> Path:
    """The hub cache directory, decided as ``huggingface_hub.constants`` decides it, from the
    environment as it is now."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(home)).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(os.path.expandvars(xdg)).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def display_name(model: str | os.PathLike[str]) -> str:
    """How reports name a model: ``org/name@commit`` for a Hugging Face cache snapshot (or an
    ``hf:`` name), whose directory name alone is a bare commit; else the last path component.
    Never reads the network; a name that does not resolve is shown as written."""
    from glassbox.digest.walk import model_name_of

    try:
        location = resolve_model(model)
    except InputError:
        return os.fsdecode(model)
    if location.repo_id and location.revision:
        return f"{location.repo_id}@{location.revision}"
    return model_name_of(location.path)


def resolve_model(spec: str | os.PathLike[str], *, cache_dir: Path | None = None) -> ModelLocation:
    """The location named by ``spec``: ``hf:org/name[@REVISION]`` or a path.

    A path that is (or lies inside) a cache snapshot is recognised as one; any other path is
    returned as it is (existence is checked by whoever reads it). Raises ``InputError`` with
    one line naming the problem for a malformed name or one that is not in the cache.
    """
    text = os.fspath(spec)
    if isinstance(text, str) and text.startswith(HF_PREFIX):
        return _resolve_hf(text, cache_dir if cache_dir is not None else hf_hub_cache())
    path = Path(text)
    repo = hf_snapshot_repo(path) if path.is_dir() else None
    if repo is None:
        return ModelLocation(str(text), path)
    real = Path(os.path.realpath(path))
    revision = real.relative_to(repo / "snapshots").parts[0]
    return ModelLocation(str(text), path, repo, _repo_id_of(repo.name), revision)


def _repo_id_of(folder: str) -> str | None:
    kind, _, rest = folder.partition("--")
    return rest.replace("--", "/") if kind == "models" and rest else None


def _check_repo_id(spec: str, repo_id: str) -> None:
    parts = repo_id.split("/")
    if not repo_id or len(parts) > 2:
        raise InputError(f"{spec}: expected hf:NAME or hf:ORG/NAME, optionally @REVISION")
    for part in parts:
        if not _REPO_PART.fullmatch(part) or "--" in part or ".." in part:
            raise InputError(
                f"{spec}: {part!r} is not a valid Hugging Face repository name "
                "(letters, digits, '-', '_', '.'; no '..' or '--')"
            )


def _check_ref(spec: str, ref: str) -> None:
    parts = ref.split("/")
    if not all(_REF_PART.fullmatch(p) and ".." not in p for p in parts) or len(ref) > 200:
        raise InputError(f"{spec}: {ref!r} is not a valid revision (a branch, tag or commit)")


def _resolve_hf(spec: str, cache: Path) -> ModelLocation:
    body = spec[len(HF_PREFIX) :]
    repo_id, at, ref = body.partition("@")
    if at and not ref:
        raise InputError(f"{spec}: empty revision after '@'")
    ref = ref or "main"
    _check_repo_id(spec, repo_id)
    _check_ref(spec, ref)
    repo_dir = cache / "--".join(["models", *repo_id.split("/")])
    if not repo_dir.is_dir():
        raise InputError(
            f"{spec}: {repo_id} is not in the Hugging Face cache {cache} "
            "(Glassbox never downloads; fetch it with huggingface_hub first)"
        )
    if not (repo_dir / "blobs").is_dir() or not (repo_dir / "snapshots").is_dir():
        raise InputError(f"{spec}: {repo_dir} is not a Hugging Face cache repository")
    commit = ref if _COMMIT.fullmatch(ref) else _read_ref(spec, repo_dir, ref)
    snapshot = repo_dir / "snapshots" / commit
    if not snapshot.is_dir():
        cached = sorted(p.name for p in (repo_dir / "snapshots").iterdir())[:5]
        raise InputError(
            f"{spec}: revision {commit} is not in the cache {repo_dir} "
            f"(cached: {', '.join(cached) or 'none'})"
        )
    real_repo = Path(os.path.realpath(repo_dir))
    if not Path(os.path.realpath(snapshot)).is_relative_to(real_repo / "snapshots"):
        raise InputError(f"{spec}: snapshot {snapshot} is a link leaving {repo_dir}; refusing it")
    return ModelLocation(spec, snapshot, real_repo, repo_id, commit, ref)


def _read_ref(spec: str, repo_dir: Path, ref: str) -> str:
    ref_file = repo_dir / "refs" / ref
    try:
        # A regular file, not followed if it is a link, and opened without blocking: a FIFO
        # planted as a ref must not hang the command.
        if not stat.S_ISREG(ref_file.lstat().st_mode):
            raise InputError(f"{ref_file}: ref {ref!r} is not a regular file")
        fd = os.open(ref_file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(_REF_LIMIT + 1)
    except FileNotFoundError:
        refs = repo_dir / "refs"
        known = sorted(p.relative_to(refs).as_posix() for p in refs.rglob("*") if p.is_file())
        raise InputError(
            f"{spec}: no ref {ref!r} in the cache {repo_dir} "
            f"(cached refs: {', '.join(known[:10]) or 'none'}); name a cached commit with @HASH"
        ) from None
    except OSError as exc:
        raise InputError(f"{ref_file}: cannot read ref: {exc.strerror or exc}") from None
    text = raw.decode("ascii", errors="replace").strip()
    if len(raw) > _REF_LIMIT or not _COMMIT.fullmatch(text):
        raise InputError(f"{ref_file}: ref {ref!r} does not hold a commit hash ({text[:60]!r})")
    return text
