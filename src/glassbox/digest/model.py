"""``hash_model``: an OMS-identical manifest of a model, on every core, with bounded memory.

Scheduling, by method:

* ``sha256`` (OMS ``files``): one task per file, largest first, on a thread pool (small files
  in batches, so ten thousand tokenizer shards do not cost ten thousand futures). SHA-256 of
  one file is inherently sequential, so a model that is one huge file uses one core; that is
  what the sharded method is for.
* ``sha256-sharded-N`` (OMS ``shards``): one task per shard, so one huge file spreads over every
  core. Empty files have no shards and so no resources, as in ``model_signing``.
* ``blake3``: BLAKE3 is internally parallel, so large files are hashed one after another with
  every core each (read by several threads, hashed by BLAKE3's threads), while small files
  (where a thread pool beats splitting one buffer) run on the pool at the same time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from glassbox.digest.cache import DigestCache, FileKey
from glassbox.digest.hashing import hash_range
from glassbox.digest.manifest import Algorithm, HashMethod, Manifest, ManifestItem
from glassbox.digest.walk import ModelFile, list_model_files, model_name_of, normalize_ignores
from glassbox.errors import InputError

# Files at least this big are hashed with BLAKE3's own threads instead of the pool.
BLAKE3_LARGE_FILE = 64 * 1024 * 1024
# Small files travel to the pool in batches of up to this many bytes or files.
BATCH_BYTES = 4 * 1024 * 1024
BATCH_FILES = 64


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def shard_bounds(size: int, shard_size: int) -> list[tuple[int, int]]:
    """OMS shard endpoints: ``[0, s), [s, 2s), ..., [ks, size)``; none for an empty file."""
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def hash_model(
    path: str | os.PathLike[str],
    method: HashMethod | None = None,
    *,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    use_cache: bool = True,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    model_name: str | None = None,
    link_root: str | os.PathLike[str] | None = None,
) -> Manifest:
    """Hash the model at ``path`` (a directory or one file) into its OMS manifest.

    ``ignore_paths`` are relative to the model directory (absolute paths inside it are
    accepted, e.g. the signature file); ``DEFAULT_IGNORES`` are always added, and the full list is
    recorded in the manifest. ``use_cache=False`` re-reads every byte (fresh results are still
    written to the cache). ``progress`` receives byte counts, possibly from worker threads.
    ``link_root`` is the directory storage links may reach (a Hugging Face cached repository);
    ``None`` detects a cache snapshot from the path (see ``glassbox.digest.walk``).
    """
    method = method or HashMethod()
    if method.algorithm == "blake3" and method.shard_size is not None:
        # OMS has no BLAKE3 shards (model_signing turns them into whole files); BLAKE3 is
        # internally parallel, so sharding would only make signatures bigger.
        raise InputError(f"{method.name}: BLAKE3 is not sharded; use plain blake3")
    root = Path(path)
    started_ns = time.time_ns()
    ignores = normalize_ignores(root, ignore_paths) if root.exists() else ()
    files = list_model_files(
        root, ignores, allow_symlinks=method.allow_symlinks, link_root=link_root
    )
    if not files:
        raise InputError(f"model {root} has no files to hash (empty, or everything is ignored)")
    workers = max(1, workers or default_workers())
    report = _locked(progress)

    cache = DigestCache()
    try:
        keys = {f.name: FileKey.of(f.stat) for f in files}
        cached = cache.lookup(keys.values(), method.name) if use_cache else {}
        todo = [f for f in files if keys[f.name] not in cached] if cached else files
        if report is not None and len(todo) < len(files):
            report(sum(f.size for f in files) - sum(f.size for f in todo))
        fresh = _hash_files(todo, method, workers, report)
        cache.store(
            (
                (keys[name], digests)
                for name, digests in fresh.items()
                if keys[name].settled(started_ns)
            ),
            method.name,
        )
    finally:
        cache.close()

    items: list[ManifestItem] = []
    for f in files:
        digests = fresh[f.name] if f.name in fresh else cached[keys[f.name]]
        items.extend(_items_for(f, method, digests))
    if not items:
        raise InputError(f"model {root} has no content to hash (only empty files, sharded mode)")
    return Manifest(model_name or model_name_of(root), method, tuple(items), ignores)


def _items_for(f: ModelFile, method: HashMethod, digests: tuple[bytes, ...]) -> list[ManifestItem]:
    if method.shard_size is None:
        return [ManifestItem(f.name, digests[0], f.size)]
    bounds = shard_bounds(f.size, method.shard_size)
    if len(bounds) != len(digests):
        raise InputError(f"{f.path}: {len(digests)} shard digests for {len(bounds)} shards")
    return [
        ManifestItem(f"{f.name}:{start}:{end}", digest, end - start)
        for (start, end), digest in zip(bounds, digests, strict=True)
    ]


def _locked(progress: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """Serialise progress calls from worker threads, so any callable is safe to pass."""
    if progress is None:
        return None
    lock = threading.Lock()

    def report(n: int) -> None:
        with lock:
            progress(n)

    return report


Piece = tuple[ModelFile, int, int]


def _batches(pieces: list[Piece]) -> list[list[Piece]]:
    """Group small pieces so that thousands of tiny files do not cost a future each."""
    batches: list[list[Piece]] = []
    current: list[Piece] = []
    current_bytes = 0
    for piece in pieces:
        length = piece[2] - piece[1]
        if length >= BATCH_BYTES:
            batches.append([piece])
            continue
        current.append(piece)
        current_bytes += length
        if current_bytes >= BATCH_BYTES or len(current) >= BATCH_FILES:
            batches.append(current)
            current, current_bytes = [], 0
    if current:
        batches.append(current)
    return batches


def _hash_batch(
    batch: list[Piece], algorithm: Algorithm, progress: Callable[[int], None] | None
) -> list[bytes]:
    return [
        hash_range(f.path, start, end, algorithm, expect=f.stat, progress=progress)
        for f, start, end in batch
    ]


def _hash_files(
    files: list[ModelFile],
    method: HashMethod,
    workers: int,
    progress: Callable[[int], None] | None,
) -> dict[str, tuple[bytes, ...]]:
    """Digests per file name: one for ``files`` methods, one per shard for ``shards``."""
    if not files:
        return {}
    # Imported here: it pulls in logging (~10 ms), and a warm cache hashes nothing.
    from concurrent.futures import ThreadPoolExecutor

    algorithm = method.algorithm
    pieces: list[Piece] = []
    big: list[ModelFile] = []
    for f in files:
        if method.shard_size is not None:
            pieces.extend((f, s, e) for s, e in shard_bounds(f.size, method.shard_size))
        elif algorithm == "blake3" and f.size >= BLAKE3_LARGE_FILE and workers > 1:
            big.append(f)
        else:
            pieces.append((f, 0, f.size))
    # Largest first: the pool then ends with small tasks, which balance the cores.
    pieces.sort(key=lambda p: p[2] - p[1], reverse=True)
    batches = _batches(pieces)

    results: dict[tuple[str, int], bytes] = {}
    pool_size = max(1, min(workers, len(batches)))
    with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="glassbox-hash") as pool:
        futures = [
            (batch, pool.submit(_hash_batch, batch, algorithm, progress)) for batch in batches
        ]
        try:
            # Large BLAKE3 files run here, each on every core, while the pool does the rest.
            for f in big:
                results[(f.name, 0)] = hash_range(
                    f.path, 0, f.size, algorithm, expect=f.stat, progress=progress, threads=workers
                )
            for batch, future in futures:
                for (f, start, _), digest in zip(batch, future.result(), strict=True):
                    results[(f.name, start)] = digest
        except BaseException:
            for _, future in futures:
                future.cancel()
            raise

    out: dict[str, tuple[bytes, ...]] = {}
    for f in files:
        if method.shard_size is None:
            out[f.name] = (results[(f.name, 0)],)
        else:
            out[f.name] = tuple(
                results[(f.name, s)] for s, _ in shard_bounds(f.size, method.shard_size)
            )
    return out
