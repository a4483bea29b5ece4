"""The differential fuzzer (``tests/scan/difffuzz.py``) in CI: each format for a bounded time
(``GBX_FUZZ_SECONDS``, default 4; ``GBX_FUZZ_SEED`` picks the run), and the mutants it once
found as differentials replayed as regressions."""

from __future__ import annotations

import os
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
