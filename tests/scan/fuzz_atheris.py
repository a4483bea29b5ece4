"""Coverage-guided fuzzing of the scanner's parsers with atheris (optional; hypothesis covers CI).

    pip install atheris
    python tests/scan/fuzz_atheris.py -atheris_runs=200000 -max_len=4096

Each input is scanned as a file whose first byte picks a wrapper (raw, zip member, tar member,
gzip) so the fuzzer reaches every format through every container. Any exception escaping
``scan_path`` or a report error is a crash; a hang is caught by libFuzzer's -timeout.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from glassbox.scan import Limits, scan_path
from tests.scan.make_corpus import plain_zip, tar_of

WORK = Path(tempfile.mkdtemp(prefix="gbx-fuzz-"))
LIMITS = Limits(seconds_per_file=5.0, max_decompressed=64 << 20, max_materialize=64 << 20)


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    if mode == 1:
        body = plain_zip({"archive/data.pkl": body})
    elif mode == 2:
        body = tar_of({"pickle": body})
    elif mode == 3:
        body = gzip.compress(body)
    path = WORK / "input"
    path.write_bytes(body)
    report = scan_path(path, workers=1, limits=LIMITS)
    if report.errors:
        raise RuntimeError(report.errors)
    for f in report.findings:
        if "scanner failed" in f.message:
            raise RuntimeError(f.message)


def main() -> None:
    import atheris

    from tests.scan import make_corpus as mc

    seeds = Path(os.environ.get("GBX_FUZZ_SEEDS", WORK / "seeds"))
    seeds.mkdir(exist_ok=True)
    starts = [t for _, t in mc.technique_pickles()[:20]] + [
        mc.benign_pickle(),
        mc.npy_object(mc.benign_pickle()),
        mc.safetensors_raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"1234"),
        mc.legacy_torch_tar(),
        mc.torch_zip(mc.benign_pickle()),
    ]
    for i, seed in enumerate(starts):
        (seeds / f"seed{i}").write_bytes(b"\x00" + seed)
    atheris.instrument_all()
    atheris.Setup([*sys.argv, str(seeds)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
