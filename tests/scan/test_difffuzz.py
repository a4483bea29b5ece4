"""The differential fuzzer (``tests/scan/difffuzz.py``) in CI: each format for a bounded time
(``GBX_FUZZ_SECONDS``, default 4; ``GBX_FUZZ_SEED`` picks the run), and the mutants it once
found as differentials replayed as regressions."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from glassbox.scan import Severity, scan_path
from tests.scan import difffuzz

SECONDS = float(os.environ.get("GBX_FUZZ_SECONDS", "4"))
SEED = int(os.environ.get("GBX_FUZZ_SEED", "18"))
REGRESSIONS = Path(__file__).parent / "regressions" / "difffuzz"


@pytest.mark.parametrize("fmt", sorted(difffuzz.TARGETS))
def test_no_differential_against_the_real_loader(fmt: str) -> None:
    stats = difffuzz.fuzz(fmt, SECONDS, seed=SEED)
    assert stats.tried >= 1
    shown = [(d.reached, d.executed, d.findings, d.data[:120]) for d in stats.differentials]
    assert shown == [], f"{fmt}: the loader reached callables the scanner let pass"


@pytest.mark.parametrize("name", sorted(p.name for p in REGRESSIONS.iterdir()))
def test_found_differentials_stay_fixed(name: str) -> None:
    # Each file made its real loader import or call os.system while the scanner passed it.
    report = scan_path(REGRESSIONS / name, workers=1)
    assert report.fails(Severity.HIGH)
    assert any(f.subject and f.subject.endswith("os.system") for f in report.findings)


def test_the_oracle_sees_a_payload_run(tmp_path: Path) -> None:
    """The fuzzer is only as good as its oracle: a plain payload is reported as reached."""
    marker = Path("MARKER")
    evil = difffuzz.seed_pickles(marker)[0]
    risky, diff = difffuzz.check_one("pickle", evil, tmp_path, marker)
    assert risky and diff is None
    from tests.scan import sandbox

    (tmp_path / "evil.pkl").write_bytes(evil)
    assert sandbox.run_loader("pickle", tmp_path / "evil.pkl", marker).marker  # it really ran
    assert not Path("MARKER").exists()  # ... in the loader's own directory


@pytest.mark.parametrize("layout", difffuzz.ZIP_LAYOUTS)
def test_every_zip_layout_the_torch_reader_loads_is_caught(layout: str, tmp_path: Path) -> None:
    """Each zip layout once, deterministically, with the payload seed: whatever torch.load
    makes of it (it refuses some layouts outright), the scanner fails whatever it runs."""
    marker = Path("MARKER")
    evil = difffuzz.seed_pickles(marker)[2]
    data = difffuzz.zip_layout(random.Random(layout), evil, layout)
    risky, diff = difffuzz.check_one("torch-zip-layout", data, tmp_path, marker)
    assert diff is None, f"{layout}: torch reached {diff.reached}, scanner said {diff.findings}"
    if layout in ("data-descriptor", "mixed-compression", "zip64", "member-order"):
        assert risky  # ordinary layouts: torch loads them and reaches the payload


EOF_CASES = Path(__file__).parent / "regressions" / "difffuzz-eof"


@pytest.mark.parametrize("name", sorted(p.name for p in EOF_CASES.iterdir()))
def test_a_global_cut_off_by_the_end_is_read_as_python_reads_it(name: str) -> None:
    """Found by the fuzzer (2 of 5644 joblib mutants): a compressed stream ending inside a
    GLOBAL (``cos\\nsystem``, no last newline). joblib's pure-Python unpickler takes
    ``readline()[:-1]`` and imports ``os`` for ``os.syste``; the scanner called the stream
    "not a pickle" (a line without its newline) and passed the file."""
    report = scan_path(EOF_CASES / name, workers=1)
    assert report.fails(Severity.CRITICAL)
    subjects = {f.subject for f in report.findings if f.rule_id == "GBX-PKL-001"}
    assert subjects & {"os.syste", "posix.sy"}


def test_name_line_matches_the_python_unpickler() -> None:
    import io

    from glassbox.scan.pickle_ops import ByteReader

    # pickle._Unpickler.load_global: module = self.readline()[:-1], the file's own readline
    for data in (b"os\nsystem", b"os\nsystem\n", b"posix", b"", b"x\n"):
        ours = ByteReader(io.BytesIO(data))
        theirs = io.BytesIO(data)
        for _ in range(2):
            assert ours.name_line() == theirs.readline()[:-1], data


def test_the_oracle_ignores_imports_that_cannot_happen() -> None:
    # find_class events the fuzzer saw for truncated GLOBAL lines: the module does not exist
    # (or is empty), so the loader's import failed and nothing ran.
    assert difffuzz._risky(["po.", ".", "os.syste", "posix.sy"]) == ["os.syste", "posix.sy"]
