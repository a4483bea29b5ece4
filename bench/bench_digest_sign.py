"""Benchmark: Glassbox sign/verify vs model_signing, the OpenSSL SHA-256 ceiling and b3sum.

Builds two synthetic models under a temporary directory (``--size-gib`` each, default 2):

* ``multi``: four large weight shards (90% of the bytes) plus 1000 small files;
* ``single``: one file of the whole size.

Then times, in this one run and as whole processes (start-up included), each of:

* ``glassbox sign`` / ``glassbox verify`` vs ``model_signing sign key`` / ``verify key`` (its CLI,
  SHA-256 per file, ECDSA P-256 keys for both); sharded SHA-256 and BLAKE3 vs model_signing's
  Python API in a subprocess with the same shard size / algorithm;
* the SHA-256 ceiling: ``openssl speed -bytes 8192 -seconds 2 sha256`` single-core rate times the
  cores (one core for a single file hashed whole, which SHA-256 cannot split);
* ``b3sum`` (the BLAKE3 team's Rust CLI, not on PyPI: ``apt-get install b3sum`` on Debian; if it
  is missing, the ``blake3`` module's multithreaded ``update_mmap`` in a subprocess stands in,
  and the output says so);
* a warm ``glassbox verify --cache`` against a cold ``glassbox verify``, and ``glassbox sign``
  with a warm digest cache against ``sign --no-cache`` (both as wall and as CPU-time ratios);
* ``hash_model`` alone in one process (cold, warm cache, BLAKE3), and every command on a 1-byte
  model, so the hashing can be read net of start-up.

Each command runs ``--repeat`` times (interleaved) and the fastest run counts, since the machine
may be shared; CPU seconds (user + system of the child) are printed too, because on a busy
machine they say more than wall time. Peak memory is each child's own ``ru_maxrss``
(``os.wait4``); a tool that mmaps the file (b3sum, model_signing's BLAKE3) shows the mapped file
in it. Files are in the page cache throughout (the models were just written), so this measures
hashing, not the disk.

Children run with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE`` removed, bytecode
written under the work directory via ``PYTHONPYCACHEPREFIX``), as an installed tool runs:
``pip install`` compiles bytecode, and a development shell that sets ``PYTHONDONTWRITEBYTECODE``
would otherwise add ~60 ms of compiling to every ``glassbox`` start. A warm-up pass on a 1-byte
model fills that cache before anything is timed. ``--no-pyc`` measures the other way.

    python bench/bench_digest_sign.py --size-gib 1
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1 << 30
MIB = 1 << 20


@dataclass
class Timing:
    label: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_kib: int = 0

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_timed(cmd: list[str], env: dict[str, str], timing: Timing) -> None:
    """Run ``cmd`` to completion; record its wall time and its own peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(out.decode(errors="replace") + err.decode(errors="replace"))
        raise SystemExit(f"{timing.label}: {' '.join(cmd)} exited {proc.returncode}")
    timing.seconds.append(elapsed)
    timing.cpu.append(usage.ru_utime + usage.ru_stime)
    timing.peak_kib = max(timing.peak_kib, usage.ru_maxrss)


_BLOCK = bytearray(os.urandom(8 * MIB))


def write_file(path: Path, size: int, seed: int) -> None:
    """Incompressible-looking content, fast: one random block, varied per 8 MiB."""
    block = _BLOCK
    with path.open("wb") as f:
        written = 0
        n = 0
        while written < size:
            n += 1
            block[:16] = seed.to_bytes(8, "little") + n.to_bytes(8, "little")
            chunk = memoryview(block)[: min(len(block), size - written)]
            f.write(chunk)
            written += len(chunk)


def build_models(root: Path, size: int) -> tuple[Path, Path]:
    multi = root / "multi"
    (multi / "tokenizer").mkdir(parents=True)
    big = size * 9 // 10 // 4
    for i in range(4):
        write_file(multi / f"model-{i + 1:05d}-of-00004.safetensors", big, i)
    small_total = size - 4 * big
    for i in range(1000):
        sub = multi / "tokenizer" if i % 2 else multi
        write_file(sub / f"part{i:04d}.json", small_total // 1000, 100 + i)
    single = root / "single"
    single.mkdir()
    write_file(single / "model.gguf", size, 9999)
    return multi, single / "model.gguf"


def openssl_sha256_rate() -> float:
    """Single-core SHA-256 bytes/second, as OpenSSL measures it on 8 KiB blocks."""
    out = subprocess.run(
        ["openssl", "speed", "-bytes", "8192", "-seconds", "2", "sha256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^sha256\s+([\d.]+)k", out, re.MULTILINE)
    if match is None:
        raise SystemExit(f"cannot parse openssl speed output:\n{out}")
    return float(match.group(1)) * 1000


OMS_SIGN = """
import sys
from model_signing import hashing, signing
model, sig, key, method, shard = sys.argv[1:6]
h = hashing.Config()
if method == "shards":
    h.use_shard_serialization(shard_size=int(shard))
elif method == "blake3":
    h.use_file_serialization(hashing_algorithm="blake3")
signing.Config().use_elliptic_key_signer(private_key=key).set_hashing_config(h).sign(model, sig)
"""
# model_signing 1.1.1 cannot guess a sharded configuration from its own signature (the shard
# size comes back from protobuf as a float), so the hashing configuration is given explicitly.
OMS_VERIFY = """
import sys
from model_signing import hashing, verifying
model, sig, pub, shard = sys.argv[1:5]
h = hashing.Config().use_shard_serialization(shard_size=int(shard))
v = verifying.Config().use_elliptic_key_verifier(public_key=pub)
v.set_hashing_config(h).verify(model, sig)
"""
# Hashing alone, in one process: SHA-256 cold, then warm (the digest cache's speed-up without
# start-up), then BLAKE3 cold (hashing-only, to set beside b3sum).
IN_PROCESS = """
import sys, time
from glassbox.digest import HashMethod, hash_model
times = []
runs = ((HashMethod(), False), (HashMethod(), True), (HashMethod("blake3"), False))
for method, use_cache in runs:
    start = time.perf_counter()
    hash_model(sys.argv[1], method, use_cache=use_cache)
    times.append(time.perf_counter() - start)
print(*times)
"""
BLAKE3_ANCHOR = """
import sys, blake3
for p in sys.argv[1:]:
    blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(p).digest()
"""


def files_of(model: Path) -> list[str]:
    if model.is_file():
        return [str(model)]
    return sorted(str(p) for p in model.rglob("*") if p.is_file() and p.suffix != ".sig")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0, help="size of each model")
    parser.add_argument("--repeat", type=int, default=2, help="runs per command (best counts)")
    parser.add_argument("--workdir", type=Path, help="where to build models (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the models afterwards")
    parser.add_argument(
        "--no-pyc",
        action="store_true",
        help="leave PYTHONDONTWRITEBYTECODE as it is (every start compiles glassbox from source)",
    )
    args = parser.parse_args()

    size = int(args.size_gib * GIB)
    n = cores()
    shard = max(MIB, math.ceil(size / n / MIB) * MIB)  # one shard per core for the single file
    bindir = Path(sys.executable).parent
    glassbox = shutil.which("glassbox", path=str(bindir)) or "glassbox"
    oms_cli = shutil.which("model_signing", path=str(bindir)) or "model_signing"
    b3sum = shutil.which("b3sum")
    workdir = Path(tempfile.mkdtemp(prefix="gb-bench-", dir=args.workdir))
    env = {**os.environ, "GLASSBOX_HOME": str(workdir / "home")}
    if not args.no_pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    pyc = "compiled on every start" if "PYTHONDONTWRITEBYTECODE" in env else "bytecode cached"
    print(f"# {n} cores, load average {os.getloadavg()}, models of {size / GIB:.2f} GiB, {pyc}")
    try:
        t0 = time.perf_counter()
        multi, single = build_models(workdir, size)
        keys = workdir / "keys"
        subprocess.run(
            [glassbox, "keygen", "--out", str(keys)], env=env, check=True, capture_output=True
        )
        key, pub = f"{keys}.key", f"{keys}.pub"
        print(f"# built models in {time.perf_counter() - t0:.1f} s; shard size {shard}")
        time.sleep(2.1)  # past the digest cache's racy window, so sign's digests get cached
        rate = openssl_sha256_rate()
        print(f"# openssl sha256: {rate / 1e9:.3f} GB/s per core")

        # Start-up: the same commands on a 1-byte model, so the tables can be read net of it.
        # One untimed pass first, which also fills the bytecode cache.
        tiny = workdir / "tiny.bin"
        tiny.write_bytes(b"x")
        tiny_sig = str(workdir / "tiny.sig")
        startup_plan = {
            "glassbox --version": [glassbox, "--version"],
            "glassbox digest": [glassbox, "digest", str(tiny), "--no-cache"],
            "glassbox sign": [glassbox, "sign", "--force", str(tiny), "--key", key,
                              "--signature", tiny_sig],
            "glassbox verify --cache": [glassbox, "verify", str(tiny), "--key", pub,
                                        "--signature", tiny_sig, "--cache"],
            "model_signing sign": [oms_cli, "sign", "key", str(tiny), "--private_key", key,
                                   "--signature", str(workdir / "tiny.ms.sig")],
        }  # fmt: skip
        for cmd in startup_plan.values():
            run_timed(cmd, env, Timing("warm-up"))

        results: dict[str, dict[str, Timing]] = {}
        in_process: dict[str, tuple[float, ...]] = {}
        for name, model in (("multi", multi), ("single", single)):
            kinds = ("gb", "ms", "gbs", "mss", "gb3", "ms3", "gbw")
            sig = {k: str(workdir / f"{name}.{k}.sig") for k in kinds}
            plan: list[tuple[str, list[str]]] = [
                ("glassbox sign sha256", [glassbox, "sign", "--force", str(model), "--key", key,
                                          "--signature", sig["gb"], "--no-cache"]),
                ("model_signing sign sha256", [oms_cli, "sign", "key", str(model),
                                               "--private_key", key, "--signature", sig["ms"]]),
                ("glassbox sign, warm cache", [glassbox, "sign", "--force", str(model),
                                               "--key", key, "--signature", sig["gbw"]]),
                ("glassbox verify sha256", [glassbox, "verify", str(model), "--key", pub,
                                            "--signature", sig["gb"]]),
                ("model_signing verify sha256", [oms_cli, "verify", "key", str(model),
                                                 "--signature", sig["ms"], "--public_key", pub]),
                ("glassbox verify --cache", [glassbox, "verify", str(model), "--key", pub,
                                             "--signature", sig["gb"], "--cache"]),
                ("glassbox sign sharded", [glassbox, "sign", "--force", str(model), "--key", key,
                                           "--signature", sig["gbs"], "--no-cache",
                                           "--method", f"sha256-sharded-{shard}"]),
                ("model_signing sign sharded", [sys.executable, "-c", OMS_SIGN, str(model),
                                                sig["mss"], key, "shards", str(shard)]),
                ("glassbox verify sharded", [glassbox, "verify", str(model), "--key", pub,
                                             "--signature", sig["gbs"]]),
                ("model_signing verify sharded", [sys.executable, "-c", OMS_VERIFY, str(model),
                                                  sig["mss"], pub, str(shard)]),
                ("glassbox sign blake3", [glassbox, "sign", "--force", str(model), "--key", key,
                                          "--signature", sig["gb3"], "--no-cache",
                                          "--method", "blake3"]),
                ("model_signing sign blake3", [sys.executable, "-c", OMS_SIGN, str(model),
                                               sig["ms3"], key, "blake3", "0"]),
                ("glassbox digest blake3", [glassbox, "digest", str(model), "--no-cache",
                                            "--method", "blake3"]),
                ("b3sum" if b3sum else "blake3 module (b3sum stand-in)",
                 [b3sum, *files_of(model)] if b3sum
                 else [sys.executable, "-c", BLAKE3_ANCHOR, *files_of(model)]),
            ]  # fmt: skip
            timings = {label: Timing(label) for label, _ in plan}
            for _ in range(args.repeat):
                for label, cmd in plan:
                    run_timed(cmd, env, timings[label])
            results[name] = timings
            runs = [
                subprocess.run(
                    [sys.executable, "-c", IN_PROCESS, str(model)],
                    env=env, capture_output=True, text=True, check=True,
                ).stdout.split()
                for _ in range(args.repeat)
            ]  # fmt: skip
            in_process[name] = tuple(min(float(r[i]) for r in runs) for i in range(3))

        startups = {label: Timing(label) for label in startup_plan}
        for _ in range(3):
            for label, cmd in startup_plan.items():
                run_timed(cmd, env, startups[label])
        report(results, in_process, size, rate, n, startups)
        print(f"# load average at the end {os.getloadavg()}")
    finally:
        if args.keep:
            print(f"# models kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(
    results: dict[str, dict[str, Timing]],
    in_process: dict[str, tuple[float, ...]],
    size: int,
    rate: float,
    n: int,
    startups: dict[str, Timing],
) -> None:
    print("\nstart-up (1-byte model): " + ", ".join(
        f"`{label}` {t.best:.3f} s ({t.best_cpu:.3f} s CPU)" for label, t in startups.items()
    ))  # fmt: skip
    for name, timings in results.items():
        ceiling_all = size / (rate * n)
        ceiling_one = size / rate
        print(f"\n== model '{name}' ({size / GIB:.2f} GiB)")
        print(f"{'command':<34} {'best s':>8} {'GB/s':>7} {'CPU s':>7} {'peak MiB':>9}")
        for t in timings.values():
            print(f"{t.label:<34} {t.best:>8.3f} {size / t.best / 1e9:>7.2f} "
                  f"{t.best_cpu:>7.3f} {t.peak_kib / 1024:>9.0f}")  # fmt: skip
        print(f"{'SHA-256 ceiling, all cores':<34} {ceiling_all:>8.3f} {rate * n / 1e9:>7.2f} "
              f"{ceiling_one:>7.3f}")  # fmt: skip
        print(f"{'SHA-256 ceiling, one core':<34} {ceiling_one:>8.3f} {rate / 1e9:>7.2f} "
              f"{ceiling_one:>7.3f}")  # fmt: skip
        cold, warm, cold_b3 = in_process[name]
        print(f"{'hash_model in-process, cold':<34} {cold:>8.3f} {size / cold / 1e9:>7.2f}")
        print(f"{'hash_model in-process, warm cache':<34} {warm:>8.3f}")
        print(f"{'hash_model in-process, blake3':<34} {cold_b3:>8.3f} {size / cold_b3 / 1e9:>7.2f}")

        best = {label: t.best for label, t in timings.items()}
        # Files mode can use every core only when there are several files.
        files_ceiling = ceiling_all if name == "multi" else ceiling_one
        b3 = next(k for k in timings if k.startswith(("b3sum", "blake3 module")))
        pairs = [
            ("sign sha256", "glassbox sign sha256", "model_signing sign sha256"),
            ("verify sha256", "glassbox verify sha256", "model_signing verify sha256"),
            ("sign sharded", "glassbox sign sharded", "model_signing sign sharded"),
            ("verify sharded", "glassbox verify sharded", "model_signing verify sharded"),
            ("sign blake3", "glassbox sign blake3", "model_signing sign blake3"),
            ("sign blake3", "glassbox sign blake3", b3),
            ("digest blake3", "glassbox digest blake3", b3),
        ]
        print("ratios (wall time / wall time; < 1 means the first is faster):")
        for what, a, b in pairs:
            print(f"  {what:<22} {a} / {b}: {best[a] / best[b]:.2f}x")
        print(f"  {'hashing cold / warm':<22} hash_model in-process: {cold / warm:.1f}x")
        # The digest cache's whole-process gain; CPU time too, since wall time on a shared
        # machine includes waiting for a core.
        for what, cold_label, warm_label in (
            ("verify cold / --cache", "glassbox verify sha256", "glassbox verify --cache"),
            ("sign cold / warm cache", "glassbox sign sha256", "glassbox sign, warm cache"),
        ):
            c, w = timings[cold_label], timings[warm_label]
            goal = ""
            if what.startswith("verify"):
                goal = f" (goal: >= 20x: {'met' if c.best / w.best >= 20 else 'NOT met'})"
            print(f"  {what:<22} {c.best / w.best:.1f}x wall, "
                  f"{c.best_cpu / w.best_cpu:.1f}x CPU{goal}")  # fmt: skip
        print(f"  {'hashing blake3':<22} hash_model in-process / {b3}: {cold_b3 / best[b3]:.2f}x")
        for what, label, ceiling in (
            ("sign sha256", "glassbox sign sha256", files_ceiling),
            ("sign sharded", "glassbox sign sharded", ceiling_all),
        ):
            t = best[label]
            verdict = "met" if t <= 1.1 * ceiling + 0.2 else "NOT met"
            print(f"  {what:<22} {label} / SHA-256 ceiling: {t / ceiling:.2f}x "
                  f"(goal: <= 1.10 x ceiling + 0.2 s: {verdict})")  # fmt: skip
        # CPU seconds are robust to a shared machine: hashing needs size / rate of them at best.
        for label, start in (
            ("glassbox sign sha256", "glassbox sign"),
            ("glassbox sign sharded", "glassbox sign"),
            ("model_signing sign sha256", "model_signing sign"),
        ):
            extra = timings[label].best_cpu - startups[start].best_cpu
            print(f"  CPU: {label} minus start-up / ideal SHA-256 CPU: "
                  f"{extra / ceiling_one:.2f}x")  # fmt: skip
        net_b3 = timings["glassbox digest blake3"].best_cpu - startups["glassbox digest"].best_cpu
        print(f"  CPU: glassbox digest blake3 minus start-up / {b3}: "
              f"{net_b3 / timings[b3].best_cpu:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
