"""No finding that fails the default gate on real library outputs (issue 18: the allowlist is
broad enough for full ``torch.save(model)`` of torch.nn and transformers modules, scikit-learn
estimators through pickle and every joblib compressor, numpy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox.scan import Severity, scan_path
from tests.scan import benign


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("benign")
    return root, benign.build(root)


def test_real_library_outputs_pass_the_default_gate(
    corpus: tuple[Path, dict[str, list[str]]],
) -> None:
    root, made = corpus
    assert len(made["torch"]) >= 20 and len(made["sklearn"]) >= 30
    assert made["transformers"] and made["numpy"]
    report = scan_path(root, workers=1)
    blocking = [f.to_dict() for f in report.findings if f.severity >= Severity.HIGH]
    assert blocking == []
    assert report.unrecognised == []  # every file was analysed, none passed unread


def test_calling_an_allowed_class_directly_is_reported(tmp_path: Path) -> None:
    """torch.nn classes pass as referenced (NEWOBJ with no arguments); a pickle that calls one
    with arguments runs its constructor with attacker-chosen values."""
    from tests.scan import make_corpus as mc

    p = tmp_path / "call.pkl"
    p.write_bytes(mc.call("torch.nn.modules.linear", "Linear", "x"))
    assert [f.rule_id for f in scan_path(p, workers=1).findings] == ["GBX-PKL-002"]
