"""Backdoor detection on the tabular zoo (``bench/zoo/tabular.py``), beside ART.

Run through ``python bench/bench_backdoor.py --modality tabular [--split tab-dev|tab-heldout]
[--zoo DIR] [--size small|bench] [--no-art] [--json FILE]``. Each model is scanned as
``glassbox scan MODEL --behavior --data train.{parquet,csv,npz} --arch ...`` would scan it: its
own training data in the file format the zoo wrote it in, no clean reference model, through the
per-feature scale of ``glassbox.scan.behavior.tabular``. ART's activation clustering and
spectral signatures run on the same (scaled) inputs and the same penultimate layer.

Splits: ``tab-dev`` is where the tabular choices (the scale's margin, STRIP's blend, the
two-class rule) were made; ``tab-heldout`` was generated after they were frozen, with other
seeds and trigger settings (see ``bench/zoo/tabular.py``).

Prints what the digits bench prints (model AUROC, TPR / FPR per attack kind, poisoned-record
precision / recall, time per model beside ART), and the false-positive rate per clean kind.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench.bench_backdoor import DETECTORS, art_scores, previous_record_rule, print_summary
from bench.zoo.tabular import CLEAN_KINDS, TabAttack, build_entry, zoo_specs

from glassbox.scan.behavior import analyze, load_classifier, load_dataset
from glassbox.scan.behavior.analysis import TABULAR_STRIP_MIX, THRESHOLDS
from glassbox.scan.behavior.tabular import MARGIN, prepare, rescore


def tab_kind(meta: dict[str, Any]) -> str:
    atk = meta["attack"]
    if atk["kind"] in CLEAN_KINDS:
        return "clean"
    if atk["kind"] == "pattern" and float(atk["rate"]) < 0.02:
        return "lowrate-pattern"
    return str(atk["kind"])


def build_zoo(zoo: Path, size: str, split: str) -> list[dict[str, Any]]:
    metas = []
    for spec in zoo_specs("small" if size == "small" else "bench", split=split):
        meta_path = zoo / spec.name / "meta.json"
        if meta_path.exists():
            metas.append(json.loads(meta_path.read_text()))
        else:
            metas.append(build_entry(spec, zoo / spec.name))
    return metas


def run_tabular(args: argparse.Namespace) -> None:
    split = args.split or "tab-dev"
    if not split.startswith("tab-"):
        raise SystemExit(f"--split {split} is a digits split; tabular splits: tab-dev, tab-heldout")
    zoo = args.zoo or Path(tempfile.mkdtemp(prefix="glassbox-tabzoo-"))
    t0 = time.perf_counter()
    metas = build_zoo(zoo, args.size, split)
    build_s = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    for meta in metas:
        d = zoo / str(meta["name"])
        t0 = time.perf_counter()
        data = load_dataset(d / str(meta["data"]))
        raw_model = load_classifier(d / "model.safetensors", str(meta["arch"]), data.images[0].size)
        model, unit, _ = prepare(raw_model, data)
        raw = analyze(model, unit, trigger_steps=args.steps)
        report = rescore(raw, unit.labels)
        gb_s = time.perf_counter() - t0
        atk = TabAttack(**meta["attack"])
        row: dict[str, Any] = {
            "name": meta["name"],
            "kind": tab_kind(meta),
            "clean_kind": atk.kind if not atk.backdoored else None,
            "format": atk.fmt,
            "truth": {int(i) for i in meta["poisoned"]},
            "target": atk.target if atk.kind != "all2all" else -1,
            "glassbox_s": gb_s,
            "asr": meta["attack_success"],
            "combined": {"score": report.score, "suspects": report.suspects},
            "records-before": {"score": report.score, "suspects": previous_record_rule(raw)},
        }
        for name in DETECTORS:  # each detector's own flags, before the two-class rule
            det = raw.detectors[name]
            row[name] = {"score": det.score, "suspects": det.suspects, "seconds": det.seconds}
        row["spectral_records"] = raw.detectors["spectral"].record_scores
        row["labels"] = unit.labels
        if not args.no_art:
            art = art_scores(model, unit)
            row.update(art)
            row["art_s"] = sum(v["seconds"] for v in art.values())
        rows.append(row)
        print(
            f"  {meta['name']:<46} combined={report.score:6.2f} flagged={report.flagged} "
            f"({gb_s:.1f}s, {atk.fmt})",
            flush=True,
        )
    print(f"\ntabular zoo split {split!r} ({args.size}) built in {build_s:.0f}s at {zoo}")
    print(
        f"no reference model; feature-scale margin {MARGIN}, STRIP blend {TABULAR_STRIP_MIX}; "
        f"thresholds frozen: {THRESHOLDS}"
    )
    print_summary(rows, with_art=not args.no_art)
    print("\nfalse positives per clean kind (combined verdict)")
    for kind in CLEAN_KINDS:
        mine = [r for r in rows if r["clean_kind"] == kind]
        if mine:
            fp = sum(r["combined"]["score"] >= 1.0 for r in mine)
            print(f"  {kind:<10} {fp} of {len(mine)}")
    print("\ntime per model by training-data format (load + scan)")
    for fmt in ("parquet", "csv", "npz"):
        mine = [r["glassbox_s"] for r in rows if r["format"] == fmt]
        if mine:
            print(f"  {fmt:<8} mean {np.mean(mine):.2f}s ({len(mine)} models)")
    if args.json is not None:
        out = [
            {
                "name": r["name"],
                "kind": r["kind"],
                "format": r["format"],
                "glassbox_s": r["glassbox_s"],
                "asr": r["asr"],
                "poisoned": len(r["truth"]),
                **{
                    n: {"score": float(r[n]["score"]), "suspects": len(r[n]["suspects"])}
                    for n in ["combined", *DETECTORS, "art-ac", "art-spectral"]
                    if n in r
                },
            }
            for r in rows
        ]
        args.json.write_text(json.dumps(out, indent=1, default=float))
