"""Benchmark: a Hugging Face cache snapshot costs what a plain copy of the same files costs.

Builds one synthetic model (``--weights`` files of ``--weight-mib`` MiB plus ``--small`` small
files) twice under a temporary directory: as a plain directory (the anchor) and as a hub cache
snapshot laid out as ``huggingface_hub`` lays it out (every file a relative link into
``blobs/``). Then, in this one run, times each of these on both, fastest of ``--repeat``:

* the walk alone (``list_model_files``: where the storage-link rule's extra ``stat`` calls are);
* ``hash_model`` cold (``use_cache=False``: every byte re-read);
* ``hash_model`` warm (digest cache hits; keyed on the blob the link reaches);

and prints snapshot / plain ratios. Files are in the page cache (just written), so this measures
the tool, not the disk.

    python bench/bench_hf_snapshot.py --weights 4 --weight-mib 64 --small 2000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import glassbox.digest.cache as cache_mod
from glassbox.digest import hash_model
from glassbox.digest.walk import list_model_files, normalize_ignores


def build(root: Path, weights: int, weight_mib: int, small: int) -> tuple[Path, Path]:
    plain = root / "plain"
    (plain / "tokenizer").mkdir(parents=True)
    rng = os.urandom
    for i in range(weights):
        (plain / f"model-{i:05d}.safetensors").write_bytes(rng(weight_mib << 20))
    for i in range(small):
        (plain / "tokenizer" / f"piece-{i:05d}.json").write_bytes(rng(512))
    repo = root / "hub" / "models--bench--synthetic"
    blobs = repo / "blobs"
    blobs.mkdir(parents=True)
    snapshot = repo / "snapshots" / ("0" * 40)
    for path in sorted(p for p in plain.rglob("*") if p.is_file()):
        rel = path.relative_to(plain)
        etag = hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blobs / etag)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blobs / etag, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return plain, snapshot


def best(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=int, default=4)
    parser.add_argument("--weight-mib", type=int, default=64)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="glassbox-hf-bench-") as tmp:
        os.environ["GLASSBOX_HOME"] = str(Path(tmp) / "home")
        cache_mod.RACY_WINDOW_NS = 0  # the files were just written; let the warm runs hit
        plain, snapshot = build(Path(tmp), args.weights, args.weight_mib, args.small)
        total = args.weights * args.weight_mib
        print(f"model: {args.weights} x {args.weight_mib} MiB + {args.small} small files")
        assert hash_model(plain).root_digest == hash_model(snapshot).root_digest
        rows = [
            ("walk (list_model_files)", lambda p: list_model_files(p, normalize_ignores(p, []))),
            ("hash_model cold", lambda p: hash_model(p, use_cache=False)),
            ("hash_model warm cache", lambda p: hash_model(p)),
        ]
        print(f"{'step':28} {'plain s':>9} {'snapshot s':>11} {'ratio':>7}")
        for label, func in rows:
            a = best(lambda f=func: f(plain), args.repeat)  # type: ignore[misc]
            b = best(lambda f=func: f(snapshot), args.repeat)  # type: ignore[misc]
            print(f"{label:28} {a:9.4f} {b:11.4f} {b / a:7.2f}x")
        print(f"({total} MiB of weights; ratio = snapshot / plain, same run)")


if __name__ == "__main__":
    main()
