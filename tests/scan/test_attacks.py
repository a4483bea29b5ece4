"""Issue 18's attack classes: each file really runs its payload under its real loader (checked
in a throw-away subprocess), and the scanner fails each at the default gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox.scan import Severity, scan_path
from tests.scan import attacks, sandbox


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[attacks.Attack]]:
    root = tmp_path_factory.mktemp("attacks")
    marker = root / "MARKER"
    return root, marker, attacks.build(root / "files", marker)


def _ids() -> list[str]:
    return [a.file for a, _ in attacks._FILES] + [a.file for a, _ in attacks._DIRS]


@pytest.mark.parametrize("name", _ids())
def test_scanner_fails_every_attack_at_the_default_gate(
    corpus: tuple[Path, Path, list[attacks.Attack]], name: str
) -> None:
    root, _marker, _ = corpus
    report = scan_path(root / "files" / name, workers=1)
    assert report.fails(Severity.HIGH), [f.to_dict() for f in report.findings]


@pytest.mark.parametrize("name", _ids())
def test_attack_really_runs_under_its_real_loader(
    corpus: tuple[Path, Path, list[attacks.Attack]], name: str
) -> None:
    root, marker, made = corpus
    (attack,) = [a for a in made if a.file == name]
    result = sandbox.run_loader(attack.loader, root / "files" / name, marker)
    assert result.executed, result.status


def test_payload_classes_are_named_precisely(
    corpus: tuple[Path, Path, list[attacks.Attack]],
) -> None:
    """Not only "something is off": the callable the loader reaches is reported critical."""
    root, _, _ = corpus
    expect = {
        "dotted.pkl": "logging.os.system",
        "submodule_os.pt": "torch.serialization.os.system",
        "nested_loads.pt": "torch.serialization.pickle.loads",
        "subinterp.pkl": "_xxsubinterpreters.run_string",
        "sympify.pkl": "sympy.sympify",
        "hexint.pkl": "os.system",
        "octal.pkl": "os.system",
        "multi.pkl.gz": "os.system",
        "model.pkl.lz4": "os.system",
        "model.pkl.zst": "os.system",
        "legacy.pkl": "os.system",
        "obj_word.npy": "os.system",
        "obj_comma.npy": "os.system",
        "cd_shift.pt": "os.system",
    }
    for name, subject in expect.items():
        found = scan_path(root / "files" / name, workers=1).findings
        assert any(f.subject == subject and f.severity is Severity.CRITICAL for f in found), (
            name,
            [f.to_dict() for f in found],
        )
    remote = scan_path(root / "files" / "remote_code", workers=1).findings
    assert [(f.rule_id, f.subject) for f in remote] == [("GBX-CODE-001", "modeling_evil.py")]
