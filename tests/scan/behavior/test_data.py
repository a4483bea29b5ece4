"""Training data is read through the digest's record reader, in commitment order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.errors import InputError
from glassbox.scan.behavior import load_dataset
from glassbox.scan.behavior.data import decode_records


def test_jsonl_objects_and_base17_strings(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"label": 3, "pixels": [0, 16, 8, 4]}\n{"pixels": "0g84", "label": 1}\n')
    data = load_dataset(path)
    assert data.labels.tolist() == [3, 1]
    assert data.images.shape == (2, 1, 2, 2)
    assert np.allclose(data.images[0].ravel(), [0, 1, 0.5, 0.25])
    assert np.allclose(data.images[1].ravel(), data.images[0].ravel())


def test_csv_with_header_names_the_label_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("target,a,b,c,d\n2,0,1,2,3\n5,3,2,1,0\n")
    data = load_dataset(path, scale=3.0)
    assert data.labels.tolist() == [2, 5]
    assert np.allclose(data.images[1].ravel(), [1, 2 / 3, 1 / 3, 0])


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (b'{"label": 1, "pixels": [1, "x"]}', "not a numeric array"),
        (b'{"pixels": [1, 2]}', "no integer label"),
        (b'{"label": 1, "pixels": [1, 2]', "malformed JSON"),
        (b"[1]", "JSON object or a numeric array"),
        (b'["1", "b", "2"]', "non-numeric field"),
        (b'{"label": 1.5, "pixels": [1, 2]}', "not a class index"),
        (b'{"label": -1, "pixels": [1, 2]}', "not a class index"),
        (b'["1", "nan", "2"]', "non-finite"),
        (b"\xff\xfe", "not UTF-8"),
        (b"1,2,inf", "not a class index"),
    ],
)
def test_malformed_records(record: bytes, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        decode_records([record], "d.jsonl")


def test_ragged_and_empty() -> None:
    with pytest.raises(InputError, match="different numbers of features"):
        decode_records([b"[1, 2, 0]", b"[1, 0]"], "d")
    with pytest.raises(InputError, match="no records"):
        decode_records([], "d")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.integers(0, 16), min_size=4, max_size=4), st.integers(0, 9)),
        min_size=1,
        max_size=20,
    )
)
def test_jsonl_round_trip(rows: list[tuple[list[int], int]]) -> None:
    records = [json.dumps({"label": y, "pixels": x}).encode() for x, y in rows]
    x, y = decode_records(records, "d")
    assert y.tolist() == [r[1] for r in rows]
    assert x.tolist() == [[float(v) for v in r[0]] for r in rows]
