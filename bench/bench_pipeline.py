"""Dataset commitments and diffs at scale, and what pipeline bookkeeping costs.

1. Throughput. A synthetic JSON Lines dataset of N records (``{"id", "text", "label"}``, about
   70 bytes each) and a derived copy (1% removed, 1% relabelled, 0.5% modified, 0.5% added,
   shuffled so a key-matched diff must sort) are written once. The anchor is the SHA-256
   ceiling: ``hashlib.sha256`` over the same file bytes, streamed in 1 MiB reads, in the same
   run. Printed: commitment and keyed diff (with inclusion proofs for the first 1000 changes)
   in MB/s and records/s, and each as a fraction of the ceiling (goal: 70%). Beside it, the
   bound for any RFC 6962 tree: per record one leaf hash (``0x00 || record``) and about one
   interior node (65 bytes, 2 SHA-256 compressions) against (record + newline) / 64
   compressions for bulk SHA-256, so small records cannot reach 70% whatever the code; ~1 KB
   and ~4 KB records are measured too, where they can. Rates use the process's CPU time
   (single-threaded work), so other load on a shared machine cancels out.
2. Memory. Each measurement runs in a fresh process and reports its peak RSS
   (``VmHWM``), at N/4 and N records: flat in N means bounded memory (goal). An idle
   interpreter with glassbox imported is printed as the floor.
3. Pipeline bookkeeping. A two-step data pipeline (filter, split) over 100k records run by
   ``glassbox.pipeline.run_pipeline`` against the same two step functions run as plain
   ``python`` scripts (one process each, same reads and writes): the difference is the
   bookkeeping (upstream commitment, code manifests, step keys, child process with the audit
   hook, output commitments, declared-change diffs, provenance). CPU seconds of the processes
   involved (children included), so a shared machine's other load cancels out.

4. The provenance route to poisoning (``--zoo``). The digits backdoor zoo
   (``bench/zoo/generate.py``; dev, heldout and heldout2 splits) poisons the bundled digits'
   training split in place; ``dataset diff`` of the poisoned training set against that upstream
   (matched by position) names changed records directly. Printed: record-level precision and
   recall against the zoo's own list of poisoned records, per attack kind, apart from the
   behavioural detectors of ``bench_backdoor.py``.

Usage: ``python bench/bench_pipeline.py [--records 1000000] [--pipeline-records 100000]
[--large-records 20000] [--zoo] [--only throughput|bookkeeping]``.
Timings on a shared machine are noisy: run it on an idle one for numbers you quote.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def write_pair(directory: Path, n: int, seed: int = 0, text_len: int = 24) -> tuple[Path, Path]:
    """The upstream dataset and a derived copy with known changes (shuffled order).

    Lines are formatted directly (the bytes ``json.dumps(..., separators=(",", ":"))`` gives),
    so writing ten million records takes seconds, not minutes.
    """
    rng = random.Random(seed)
    up = directory / f"up-{n}-{text_len}.jsonl"
    down = directory / f"down-{n}-{text_len}.jsonl"
    pad = "x" * max(0, text_len - 24)
    derived: list[str] = []
    with up.open("w") as f:
        for i in range(n):
            text = f"{rng.getrandbits(96):024x}{pad}"
            line = f'{{"id":{i},"text":"{text}","label":{i % 10}}}'
            f.write(line + "\n")
            roll = rng.random()
            if roll < 0.01:
                continue  # removed
            if roll < 0.02:
                line = f'{{"id":{i},"text":"{text}","label":{(i + 1) % 10}}}'
            elif roll < 0.025:
                line = f'{{"id":{i},"text":"{text[::-1]}","label":{i % 10}}}'
            derived.append(line)
    for j in range(n // 200):
        derived.append(f'{{"id":{n + j},"text":"new","label":0}}')
    rng.shuffle(derived)
    with down.open("w") as f:
        for at in range(0, len(derived), 100_000):
            f.write("\n".join(derived[at : at + 100_000]) + "\n")
    return up, down


def measure(kind: str, paths: list[str]) -> dict[str, Any]:
    """One measurement in this (fresh) process: seconds and peak RSS."""
    import glassbox.digest  # noqa: F401 - the floor includes the import

    started = time.perf_counter()
    cpu = time.process_time()
    extra: dict[str, Any] = {}
    if kind == "idle":
        pass
    elif kind == "sha256":
        for path in paths:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
    elif kind == "floor":
        # The least any per-record commitment can cost: each record cut out of the file and
        # hashed once (one ``sha256`` call per record, no validation, no tree).
        sha256 = hashlib.sha256
        records = 0
        for path in paths:
            with open(path, "rb") as f:
                tail = b""
                while chunk := f.read(1 << 20):
                    lines = (tail + chunk).split(b"\n")
                    tail = lines.pop()
                    records += len([sha256(line).digest() for line in lines if line])
                if tail:
                    sha256(tail).digest()
                    records += 1
        extra["records"] = records
    elif kind.startswith("commit"):
        import glassbox.digest.dataset as dataset

        workers = int(kind.partition(":")[2] or 1)
        dataset.PARALLEL_MIN_BYTES = 0  # the bench decides when to measure it
        extra["size"] = dataset.commit_dataset(paths[0], workers=workers).size
    elif kind == "diff":
        from glassbox.digest import diff_datasets

        result = diff_datasets(paths[0], paths[1], key="id", limit=1000)
        extra["summary"] = {**result.counts, "unchanged": result.unchanged}
        extra["proved"] = sum(1 for c in result.changes if c.upstream_proof or c.derived_proof)
    wall = time.perf_counter() - started
    seconds = time.process_time() - cpu  # CPU time: neighbours on a shared machine cancel out
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra["children_cpu"] = kids.ru_utime + kids.ru_stime  # worker processes, once reaped
    extra["wall"] = wall
    return {"seconds": seconds, "peak_mib": peak_rss_kib() / 1024, **extra}


def peak_rss_kib() -> int:
    """This process's peak resident set (``VmHWM``). Not ``ru_maxrss``: that survives
    ``fork``/``exec`` and so reports the benchmark parent's peak, not the measured child's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def in_process(kind: str, paths: list[Path]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


FILTER = """
import json

def run(ctx):
    with ctx.writer("d") as out:
        for record in ctx.input("d").records():
            if json.loads(record)["id"] % 7:
                out.write(record)
"""

SPLIT = """
import json

def run(ctx):
    with ctx.writer("train") as train, ctx.writer("test") as test:
        for record in ctx.input("d").records():
            (test if json.loads(record)["id"] % 5 == 4 else train).write(record)
"""

PLAIN = """
import json, sys
src, dst = sys.argv[1], sys.argv[2:]
with open(src, "rb") as f:
    outs = [open(p, "wb") for p in dst]
    for line in f:
        record = line.strip()
        if not record:
            continue
        row = json.loads(record)  # the pipeline's readers parse every record too
        if len(outs) == 1:
            if row["id"] % 7:
                outs[0].write(record + b"\\n")
        else:
            outs[1 if row["id"] % 5 == 4 else 0].write(record + b"\\n")
    for o in outs:
        o.close()
"""


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (steps run as children)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def pipeline_overhead(directory: Path, n: int) -> dict[str, float]:
    from glassbox.digest import commit_dataset
    from glassbox.pipeline.dag import run_pipeline

    root = directory / "pipe"
    (root / "steps").mkdir(parents=True)
    data, _ = write_pair(root, n, seed=1)
    (root / "steps" / "filter.py").write_text(FILTER)
    (root / "steps" / "split.py").write_text(SPLIT)
    (root / "plain.py").write_text(PLAIN)
    commitment = commit_dataset(data).root.hex()
    (root / "pipeline.toml").write_text(
        textwrap.dedent(
            f"""\
            schema = 1
            name = "bench"
            version = "1"
            licence = "MIT"

            [[upstream]]
            name = "d"
            path = "{data.name}"
            commitment = "{commitment}"
            licence = "MIT"
            key = "id"

            [[steps]]
            name = "filter"
            kind = "filter"
            inputs = {{ d = "upstream.d" }}
            code = "steps"
            entry = "filter:run"
            outputs = ["d.jsonl"]

            [[steps]]
            name = "split"
            kind = "split"
            inputs = {{ d = "filter.d" }}
            code = "steps"
            entry = "split:run"
            outputs = ["train.jsonl", "test.jsonl"]
            """
        )
    )
    started = cpu_seconds()
    subprocess.run([sys.executable, root / "plain.py", data, root / "f.jsonl"], check=True)
    subprocess.run(
        [sys.executable, root / "plain.py", root / "f.jsonl", root / "tr.jsonl", root / "te.jsonl"],
        check=True,
    )
    plain = cpu_seconds() - started
    started = cpu_seconds()
    result = run_pipeline(root / "pipeline.toml", root / "out", jobs=1)
    assert result.ok, result.failed
    piped = cpu_seconds() - started
    started = cpu_seconds()
    again = run_pipeline(root / "pipeline.toml", root / "out", jobs=1)
    reused = cpu_seconds() - started
    assert all(r.status == "reused" for r in again.results.values())
    return {"plain": plain, "pipeline": piped, "reuse_check": reused}


def zoo_precision_recall(directory: Path) -> dict[str, dict[str, float]]:
    """Diff each zoo model's training set against the clean upstream split; score the named
    records against the zoo's list of poisoned ones."""
    sys.path.insert(0, str(ROOT))
    from bench.zoo.generate import digits_split, poison, write_jsonl, zoo_specs

    from glassbox.digest import diff_datasets

    xtr, ytr, _, _ = digits_split()
    upstream = directory / "zoo-upstream.jsonl"
    write_jsonl(upstream, xtr, ytr)
    totals: dict[str, dict[str, float]] = {}
    for split in ("dev", "heldout", "heldout2"):
        for attack in zoo_specs("bench", split=split):
            xp, yp, idx = poison(xtr, ytr, attack)
            derived = directory / "zoo-derived.jsonl"
            write_jsonl(derived, xp, yp)
            result = diff_datasets(upstream, derived, limit=None, proofs=False)
            named = {int(c.key) for c in result.changes}
            truth = {int(i) for i in idx}
            row = totals.setdefault(attack.kind, {"models": 0, "tp": 0, "fp": 0, "fn": 0})
            row["models"] += 1
            row["tp"] += len(named & truth)
            row["fp"] += len(named - truth)
            row["fn"] += len(truth - named)
    return totals


def print_zoo(directory: Path) -> None:
    print("provenance route on the digits backdoor zoo (diff against the upstream split)")
    for kind, row in sorted(zoo_precision_recall(directory).items()):
        tp, fp, fn = row["tp"], row["fp"], row["fn"]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(
            f"  {kind:<8} {int(row['models']):>3} models  poisoned records {int(tp + fn):>5}"
            f"  precision {precision:.3f}  recall {recall:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--pipeline-records", type=int, default=100_000)
    parser.add_argument(
        "--large-records",
        type=int,
        default=20_000,
        help="Also measure this many ~4 KB records and 4x as many ~1 KB records (per-record "
        "cost amortised); 0 to skip.",
    )
    parser.add_argument("--zoo", action="store_true", help="Also score diffs on the backdoor zoo.")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="Also time the commitment spread over this many processes (wall clock); 1 to skip.",
    )
    parser.add_argument(
        "--only",
        choices=["throughput", "bookkeeping"],
        help="Run one part: commitment/diff throughput, or the pipeline bookkeeping.",
    )
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1:])))
        return
    if args.records == 0:  # --records 0: only the zoo
        with tempfile.TemporaryDirectory(prefix="glassbox-bench-zoo-") as tmp:
            print_zoo(Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="glassbox-bench-pipeline-") as tmp:
        directory = Path(tmp)
        if args.only != "bookkeeping":
            throughput(directory, args)
        if args.only != "throughput":
            bookkeeping(directory, args.pipeline_records)
        if args.zoo:
            print_zoo(directory)


def compressions(message_bytes: float) -> int:
    """SHA-256 compression-function calls for one message: 64-byte blocks after padding (one
    0x80 byte and the 8-byte length)."""
    return math.ceil((message_bytes + 9) / 64)


def tree_bound(record_bytes: float) -> tuple[int, float]:
    """(compressions per record for an RFC 6962 tree, the most a tree can reach as a fraction
    of bulk SHA-256 over the same file bytes on the same core).

    Per record the tree hashes one leaf ``0x00 || record`` and, for n records, n - 1 interior
    nodes ``0x01 || left || right`` (65 bytes: 2 compressions each); bulk SHA-256 of the file
    spends (record + newline) / 64 compressions on it. Whatever else a commitment does (read,
    split, check the JSON) only lowers the fraction further.
    """
    per_record = compressions(1 + record_bytes) + compressions(65)
    return per_record, (record_bytes + 1) / 64 / per_record


def throughput(directory: Path, args: argparse.Namespace) -> None:
    print("dataset commitment and diff (keyed by id, proofs for the first 1000 changes)")
    print(f"  load average {os.getloadavg()[0]:.1f} (rates are per CPU second, one core)")
    floor = in_process("idle", [])
    print(f"  idle interpreter with glassbox.digest imported: peak {floor['peak_mib']:.0f} MiB")
    small = sorted({max(1000, args.records // 4), args.records})
    sizes = [(n, 24) for n in small]
    if args.large_records:
        sizes += [(args.large_records * 4, 960), (args.large_records, 4000)]
    verdicts: list[str] = []
    peaks: dict[str, list[tuple[int, float]]] = {}
    workers = args.workers
    for n, text_len in sizes:
        up, down = write_pair(directory, n, text_len=text_len)
        size_up = up.stat().st_size
        size_both = size_up + down.stat().st_size
        ceiling = in_process("sha256", [up])
        ceiling_both = in_process("sha256", [up, down])
        floor = in_process("floor", [up])
        floor_both = in_process("floor", [up, down])
        commit = in_process("commit", [up])
        diff = in_process("diff", [up, down])
        mb = 1e6
        up_mb, both_mb = size_up / mb, size_both / mb
        record_bytes = size_up / n - 1  # without the newline
        per_record, bound = tree_bound(record_bytes)
        print(
            f"  N = {n:,} records of ~{record_bytes:.0f} bytes "
            f"({up_mb:.0f} MB upstream, {both_mb:.0f} MB both)"
        )
        print(
            f"    bound: a tree needs {per_record} SHA-256 compressions per record (leaf "
            f"{compressions(1 + record_bytes)} + interior node 2), bulk SHA-256 "
            f"{(record_bytes + 1) / 64:.2f}: at most {bound:.1%} of the ceiling on one core"
        )
        rows = [
            ("commitment", commit, ceiling, floor, size_up, n),
            ("keyed diff + proofs", diff, ceiling_both, floor_both, size_both, 2 * n),
        ]
        for name, got, ceil, flo, size, records in rows:
            rate = size / got["seconds"] / mb
            ceil_rate = size / ceil["seconds"] / mb
            floor_recs = records / flo["seconds"]
            recs = records / got["seconds"]
            if text_len == 24:
                peaks.setdefault(name, []).append((n, got["peak_mib"]))
            print(
                f"    {name:<20} {rate:7.1f} MB/s {recs:>11,.0f} rec/s  peak "
                f"{got['peak_mib']:4.0f} MiB  (cpu {got['seconds']:.1f} s)"
            )
            print(
                f"      vs bulk SHA-256 of the same bytes ({ceil_rate:6.0f} MB/s): "
                f"{rate / ceil_rate:6.1%} (bound {bound:.1%}, so {rate / ceil_rate / bound:.0%} "
                f"of what a tree can reach)   vs one sha256 per record "
                f"({floor_recs:>11,.0f} rec/s): {recs / floor_recs:6.1%}"
            )
            met = "MET" if rate / ceil_rate >= 0.70 else "NOT MET"
            reachable = "reachable" if bound >= 0.70 else "unreachable for any tree on one core"
            verdicts.append(
                f"{name}, {n:,} x ~{record_bytes:.0f} B: {rate / ceil_rate:.1%} of the ceiling "
                f"-> goal (>= 70%) {met} (bound {bound:.1%}: {reachable})"
            )
        if workers > 1:
            serial = in_process("commit", [up])
            par = in_process(f"commit:{workers}", [up])
            cpu_par = par["seconds"] + par["children_cpu"]
            print(
                f"    commitment, {workers} worker processes: wall {size_up / par['wall'] / mb:.1f}"
                f" MB/s against {size_up / serial['wall'] / mb:.1f} MB/s serial in the same run "
                f"({serial['wall'] / par['wall']:.2f}x; load {os.getloadavg()[0]:.1f}), "
                f"{size_up / cpu_par / mb:.1f} MB per CPU second (all processes), peak "
                f"{par['peak_mib']:.0f} MiB in the reader"
            )
        print(f"    diff found {diff['summary']}; {diff['proved']} changes proved")
    print("  goal check (>= 70% of the SHA-256 ceiling of the same bytes):")
    for line in verdicts:
        print(f"    {line}")
    from glassbox.digest.diff import RUN_RECORDS

    print(
        "  memory check (peak RSS flat in dataset size; the diff sorts runs of up to "
        f"{RUN_RECORDS:,} records in memory and spills them, so it is flat only beyond that):"
    )
    for name, points in peaks.items():
        if len(points) < 2:
            continue
        (n0, p0), (n1, p1) = points[0], points[-1]
        flat = "MET" if p1 <= p0 * 1.25 + 8 else "NOT MET"
        print(
            f"    {name}: {p0:.0f} MiB at {n0:,} records, {p1:.0f} MiB at {n1:,} "
            f"({n1 / n0:.0f}x the records) -> flat {flat}"
        )


def bookkeeping(directory: Path, records: int) -> None:
    overhead = pipeline_overhead(directory, records)
    print(f"pipeline bookkeeping, 2 data steps over {records:,} records")
    print(f"  plain scripts          {overhead['plain']:6.2f} CPU s")
    print(
        f"  glassbox pipeline run  {overhead['pipeline']:6.2f} CPU s  "
        f"= {overhead['pipeline'] / overhead['plain']:.2f}x the plain scripts"
    )
    print(f"  re-run, all reused     {overhead['reuse_check']:6.2f} CPU s")


if __name__ == "__main__":
    main()
