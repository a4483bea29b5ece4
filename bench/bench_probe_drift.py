"""Behaviour drift over the behaviour members of the LM zoo: is every planted change found, and
is nothing reported between a model and its bit-identical copy?

For each of ``--seeds`` fine-tuning seeds, fine-tunes the zoo's miniature base into a clean, a
censored and a self-promoting version (``bench/lm_zoo/behaviour.py``), runs the test suite
(``tests/lm/suites/behaviour.toml``) on each, and diffs: clean -> censored and clean -> promo
are the planted changes; base -> clean (a fine-tune that plants nothing) and censored -> its
byte copy are the negatives. Prints one row per pair and the time per probe run, against a
plain forward pass over the same prompts as the anchor.

Usage: ``python -m bench.bench_probe_drift [--seeds 2] [--steps 200]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "lm" / "suites" / "behaviour.toml"


def main() -> None:
    import torch
    from bench.lm_zoo import behaviour, mini

    from glassbox.lm import diff_runs, load_suite, run_suite
    from glassbox.lm.probe_attest import model_root_digest, probe_predicate

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    suite = load_suite(SUITE)
    planted = {"censored": {"newly-refused"}, "promo": {"newly-mentioned"}}
    rows: list[tuple[str, str, str, bool]] = []
    probe_seconds: list[float] = []
    anchor_seconds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = mini.pretrain(0, mini.corpus("prose", 256, 0), steps=40)
        cfg = base.config
        base_dir = mini.save(base, cfg, root / "base")
        for seed in range(args.seeds):
            models = behaviour.behaviour_models(base, steps=args.steps, seed=11 + seed)
            dirs = {"base": base_dir}
            for name, model in models.items():
                dirs[name] = mini.save(model, cfg, root / f"{name}-{seed}")
            dirs["copy"] = root / f"copy-{seed}"
            shutil.copytree(dirs["censored"], dirs["copy"])
            preds: dict[str, dict[str, Any]] = {}
            for name, path in dirs.items():
                start = time.perf_counter()
                run = run_suite(path, suite)
                probe_seconds.append(time.perf_counter() - start)
                preds[name] = probe_predicate(run, model_root_digest(path)[0])
                start = time.perf_counter()
                model = mini.zoo_model.build(**mini._overrides_from(cfg))
                with torch.no_grad():
                    for p in suite.probes:
                        model(input_ids=torch.tensor([list(p.prompt.encode())]))
                anchor_seconds.append(time.perf_counter() - start)
            for old, new in (
                ("clean", "censored"),
                ("clean", "promo"),
                ("base", "clean"),
                ("censored", "copy"),
            ):
                report = diff_runs(
                    preds[old], preds[new], logprob_tolerance=suite.logprob_tolerance
                )
                kinds = report["summary"]
                want = planted.get(new, set()) if old == "clean" else set()
                found = want <= set(kinds)
                behavioural = {"newly-refused", "newly-mentioned"} & set(kinds)
                ok = found if want else not behavioural and (new != "copy" or not kinds)
                detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(kinds.items()))
                rows.append(
                    (
                        f"{old} -> {new} (seed {seed})",
                        "planted" if want else "negative",
                        detail or "no drift",
                        ok,
                    )
                )
    print(f"{'pair':34} {'kind':9} {'ok':3} reported")
    for pair, kind, detail, ok in rows:
        print(f"{pair:34} {kind:9} {'yes' if ok else 'NO':3} {detail}")
    planted_rows = [r for r in rows if r[1] == "planted"]
    negative_rows = [r for r in rows if r[1] == "negative"]
    print(
        f"planted drift found: {sum(r[3] for r in planted_rows)}/{len(planted_rows)}; "
        f"negatives clean: {sum(r[3] for r in negative_rows)}/{len(negative_rows)}"
    )
    mean_probe = sum(probe_seconds) / len(probe_seconds)
    mean_anchor = sum(anchor_seconds) / len(anchor_seconds)
    print(
        f"probe run ({len(suite.probes)} probes, with model load and sampling): "
        f"{mean_probe:.2f} s "
        f"per model; anchor (one forward pass per prompt): {mean_anchor:.3f} s; "
        f"ratio {mean_probe / mean_anchor:.0f}x"
    )


if __name__ == "__main__":
    main()
