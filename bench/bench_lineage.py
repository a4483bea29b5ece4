"""Lineage fingerprints over the LM zoo: "is CANDIDATE derived from BASE?" on every pair.

Builds the zoo through Glassbox recipes (``bench/lm_zoo/zoo.py``; reused if OUT already holds
it), then, for every (candidate, base) pair with the zoo's independent bases as the pool,
prints per kind of change: AUROC and TPR at the default threshold for ``glassbox.lm``'s score
and, in the same run, for a plain baseline (cosine of the flattened weight matrices, no
alignment); the false-positive rate and count over every unrelated pair (same-data models
singled out); time per pair; and ``--among`` top-1 accuracy. Distillation is its own row: its
weights are new, so weight lineage is not expected to find it, and the representation
evidence is printed beside that of a model trained from scratch on the same data.

Usage: ``python bench/bench_lineage.py [OUT] [--small]`` (``--small``: a few minutes on 2
cores; the full zoo: about 15-30 minutes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lm_zoo.zoo import build_zoo


def flat_cosine(candidate: str, base: str) -> float:
    """The baseline: cosine of all weight matrices, flattened, with no alignment at all
    (matrices paired by canonical name; a shape mismatch contributes nothing)."""
    import numpy as np

    from glassbox.lm import open_weights
    from glassbox.lm.weights import iter_matrices

    dot = na = nb = 0.0
    with open_weights(candidate) as a, open_weights(base) as b:
        broles = b.roles()
        for key, name, _role in iter_matrices(a):
            if key not in broles:
                continue
            x = a.read(name).astype(np.float64).ravel()
            y = b.read(broles[key][0]).astype(np.float64).ravel()
            na += float(x @ x)
            if x.shape == y.shape:
                dot += float(x @ y)
                nb += float(y @ y)
    return dot / (na**0.5 * nb**0.5) if na and nb else 0.0


def auroc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="lm-zoo-"))
    from glassbox.lm import DERIVED_AT, lineage

    t0 = time.perf_counter()
    metas = build_zoo(out, small=args.small, log=lambda m: print(m, flush=True))
    build_s = time.perf_counter() - t0
    print(f"\nzoo: {len(metas)} members in {out} ({build_s:.0f} s to build or reuse)\n")
    print(f"{'member':14} {'kind':13} {'parent':11} {'size':4} what")
    for m in metas:
        print(
            f"{m['name']:14} {m['kind']:13} {m['parent'] or '-':11} {m['size']:4} {m['describe']}"
        )

    pool = [m for m in metas if m["kind"] == "base"]
    candidates = [m for m in metas if m["kind"] != "base"]
    rows: list[dict[str, Any]] = []
    for c in candidates:
        for b in pool:
            start = time.perf_counter()
            result = lineage(c["model"], b["model"], representation=False)
            ours_s = time.perf_counter() - start
            start = time.perf_counter()
            cosine = flat_cosine(c["model"], b["model"])
            base_s = time.perf_counter() - start
            rows.append(
                {
                    "candidate": c["name"],
                    "kind": c["kind"],
                    "base": b["name"],
                    "truth": c["root"] == b["name"],
                    "distilled": c["kind"] == "distillation" and c["parent"] == b["name"],
                    "score": result.score,
                    "verdict": result.verdict,
                    "cosine": cosine,
                    "seconds": ours_s,
                    "baseline_seconds": base_s,
                }
            )
    negatives = [r for r in rows if not r["truth"] and not r["distilled"]]
    neg_ours = [r["score"] for r in negatives]
    neg_cos = [r["cosine"] for r in negatives]
    # The baseline's threshold: the one that keeps its false-positive rate at ours, or 0.5.
    print(f"\npairs: {len(rows)} ({len(negatives)} unrelated); default threshold {DERIVED_AT}")
    print(
        f"{'kind':13} {'pairs':>5} {'AUROC':>6} {'TPR':>5} {'mean':>6} | "
        f"{'cos AUROC':>9} {'cos TPR':>7} {'cos mean':>8}"
    )
    kinds = sorted({r["kind"] for r in rows if r["truth"]})
    all_pos = [r for r in rows if r["truth"]]
    for kind in [*kinds, "ALL"]:
        pos = all_pos if kind == "ALL" else [r for r in all_pos if r["kind"] == kind]
        ours = [r["score"] for r in pos]
        cos = [r["cosine"] for r in pos]
        tpr = sum(r["verdict"] == "derived" for r in pos) / len(pos)
        cos_tpr = sum(c >= 0.5 for c in cos) / len(pos)
        print(
            f"{kind:13} {len(pos):5} {auroc(ours, neg_ours):6.3f} {tpr:5.2f} "
            f"{statistics.fmean(ours):6.3f} | {auroc(cos, neg_cos):9.3f} {cos_tpr:7.2f} "
            f"{statistics.fmean(cos):8.3f}"
        )
    fp = [r for r in negatives if r["verdict"] == "derived"]
    inconclusive = [r for r in negatives if r["verdict"] == "inconclusive"]
    same = [r for r in negatives if r["kind"] == "same-data"]
    cos_fp = sum(r["cosine"] >= 0.5 for r in negatives)
    print(
        f"unrelated pairs: FPR {len(fp) / len(negatives):.3f} ({len(fp)} called derived, "
        f"{len(inconclusive)} inconclusive; max score {max(neg_ours):.3f}); "
        f"baseline FPR at 0.5: {cos_fp / len(negatives):.3f}"
    )
    print(
        "same-data-from-scratch pairs: "
        + ", ".join(
            f"{r['candidate']} vs {r['base']}: {r['score']:.3f} ({r['verdict']})" for r in same
        )
    )

    # Distillation: its own row, with the representation evidence next to a same-data model's.
    by_name = {m["name"]: m for m in metas}
    print("\ndistillation (weights are new; behaviour evidence beside a same-data model's):")
    for name, base in (("distill-A", "base-A"), ("scratch-A", "base-A"), ("ft-A-qa", "base-A")):
        if name not in by_name:
            continue
        r = lineage(by_name[name]["model"], by_name[base]["model"], representation=True)
        rep = r.representation or {}
        print(
            f"  {name:10} vs {base}: score {r.score:.3f} ({r.verdict}); CKA {rep.get('meanCka')}, "
            f"next-token agreement {rep.get('outputAgreement')}, top-1 {rep.get('top1Agreement')}"
        )

    # --among: which pool base ranks first for each candidate that has one.
    hits = total = 0
    misses = []
    for c in candidates:
        if c["root"] not in {b["name"] for b in pool}:
            continue
        mine = [r for r in rows if r["candidate"] == c["name"]]
        best = max(mine, key=lambda r: r["score"])
        total += 1
        hits += best["base"] == c["root"]
        if best["base"] != c["root"]:
            misses.append(c["name"])
    print(
        f"\n--among top-1: {hits}/{total} = {hits / total:.3f}"
        + (f" (missed: {misses})" if misses else "")
    )
    ours_t = statistics.fmean(r["seconds"] for r in rows)
    cos_t = statistics.fmean(r["baseline_seconds"] for r in rows)
    print(
        f"time per pair: lineage {ours_t * 1000:.0f} ms, baseline cosine {cos_t * 1000:.0f} ms "
        f"(ratio {ours_t / cos_t:.1f}x)"
    )


if __name__ == "__main__":
    main()
