"""Poisoned records are proved from one read of the dataset, and the proofs still verify."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from glassbox.digest import commit_dataset, prove_record, verify_record
from glassbox.errors import InputError
from glassbox.scan.behavior import scanner


def _dataset(path: Path, n: int) -> Path:
    path.write_text(
        "".join(json.dumps({"pixels": f"{i:064x}", "label": i % 3}) + "\n" for i in range(n))
    )
    return path


def test_record_proofs_equal_prove_record_from_a_single_read(tmp_path: Path) -> None:
    path = _dataset(tmp_path / "d.jsonl", 37)
    commitment = commit_dataset(path)
    indices = [0, 5, 36, 17]
    from glassbox.digest import dataset

    with mock.patch.object(dataset, "open_records", wraps=dataset.open_records) as reads:
        proofs = scanner._record_proofs(path, commitment, indices)
    assert reads.call_count == 1
    assert proofs == [prove_record(path, i) for i in indices]
    for proof in proofs:
        verify_record(proof, commitment)


def test_record_proofs_refuse_a_dataset_that_changed(tmp_path: Path) -> None:
    path = _dataset(tmp_path / "d.jsonl", 12)
    commitment = commit_dataset(path)
    _dataset(path, 13)
    with pytest.raises(InputError, match="changed"):
        scanner._record_proofs(path, commitment, [3])
