"""Canonical record bytes per format, and clear errors for malformed or hostile datasets."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.digest import canonical_json, iter_records
from glassbox.digest.records import open_records
from glassbox.errors import InputError


def test_csv_records_are_canonical_json_arrays(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_bytes(
        b'\xef\xbb\xbfid,text\r\n1,"hello, world"\r\n\r\n2,"multi\nline ""q"""\r\n3,\xc3\xa9\r\n'
    )
    stream = open_records(f)
    assert stream.metadata == {"header": ["id", "text"]}
    assert list(stream.records) == [
        b'["1","hello, world"]',
        b'["2","multi\\nline \\"q\\""]',
        '["3","é"]'.encode(),
    ]


def test_csv_quoting_style_does_not_change_records(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(b"x,y\n1,two\n")
    b.write_bytes(b'"x","y"\r\n"1","two"\r\n')
    assert list(iter_records(a)) == list(iter_records(b))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "CSV file is empty"),
        (b"a,b\n1,2,3\n", "line 2 has 3 fields, the header has 2"),
        (b'a,b\n1,"unterminated\n', "malformed CSV"),
        (b"a,b\n1,\xff\xfe\n", "not valid UTF-8"),
        (b"a\n" + b"x" * 200_000 + b"\n", "malformed CSV"),
    ],
)
def test_malformed_csv(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        list(iter_records(f))
    assert "bad.csv" in str(info.value)


def test_jsonl_records_are_lines_as_written(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_bytes(b'{"b": 1, "a": 2}\r\n\n   \n  [1, 2.50]  \n"s"')
    assert list(iter_records(f)) == [b'{"b": 1, "a": 2}', b"[1, 2.50]", b'"s"']


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n{"a": \n', "line 2 is not valid JSON"),
        (b"[NaN]\n", "line 1 is not valid JSON"),
        (b'{"a": 1, "a": 2}\n', "duplicate key"),
        (b'"\xff"\n', "line 1 is not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1 is not valid JSON"),
        (b'{"a": 1} {"b": 2}\n', "line 1 is not valid JSON"),
    ],
)
def test_malformed_jsonl(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_bytes(content)
    with pytest.raises(InputError, match=message):
        list(iter_records(f))


def test_jsonl_record_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import glassbox.digest.records as records

    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 1000)
    f = tmp_path / "huge.jsonl"
    f.write_bytes(b'"' + b"x" * 5000 + b'"')
    with pytest.raises(InputError, match="line 1 is longer than 1000 bytes"):
        list(iter_records(f))


def test_parquet_rows_are_canonical_json(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "id": [1, 2],
            "text": ["a", None],
            "score": [0.5, float("nan")],
            "blob": [b"\x00\x01", b""],
            "tags": [["x"], []],
        }
    )
    f = tmp_path / "d.parquet"
    pq.write_table(table, f)
    stream = open_records(f)
    assert "id: int64" in stream.metadata["schema"]
    assert list(stream.records) == [
        b'{"blob":{"$base64":"AAE="},"id":1,"score":0.5,"tags":["x"],"text":"a"}',
        b'{"blob":{"$base64":""},"id":2,"score":{"$float":"NaN"},"tags":[],"text":null}',
    ]


def test_malformed_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    f = tmp_path / "bad.parquet"
    f.write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(InputError, match=r"bad\.parquet: not a readable Parquet file"):
        list(iter_records(f))


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    f = tmp_path / "d.parquet"
    f.write_bytes(b"PAR1")
    with pytest.raises(InputError, match="Parquet needs pyarrow"):
        list(iter_records(f))


def test_files_records(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_bytes(b"b")
    (tmp_path / "d" / "a").mkdir()
    (tmp_path / "d" / "a" / "x.txt").write_bytes(b"")
    (tmp_path / "d" / ".git").mkdir()
    (tmp_path / "d" / ".git" / "HEAD").write_bytes(b"ignored")
    records = [json.loads(r) for r in iter_records(tmp_path / "d")]
    assert [r["path"] for r in records] == ["a/x.txt", "b.txt"]
    assert records[0]["sha256"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert records[1]["size"] == 1


def test_files_format_refuses_symlink_escape(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "secret").write_bytes(b"s")
    (tmp_path / "d" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(InputError, match="points outside"):
        list(iter_records(tmp_path / "d"))


def test_format_detection(tmp_path: Path) -> None:
    f = tmp_path / "data.txt"
    f.write_bytes(b"x")
    with pytest.raises(InputError, match="pass --format"):
        iter_records(f)
    with pytest.raises(InputError, match="does not exist"):
        iter_records(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="unknown dataset format"):
        iter_records(f, "xml")
    with pytest.raises(InputError, match="not a file"):
        iter_records(tmp_path, "csv")
    with pytest.raises(InputError, match="not valid JSON"):
        list(iter_records(f, "jsonl"))
    f.write_bytes(b"[1]\n")
    assert list(iter_records(f, "jsonl")) == [b"[1]"]


def test_canonical_json_special_values() -> None:
    import datetime as dt

    assert canonical_json({"b": 1, "a": [True, None]}) == b'{"a":[true,null],"b":1}'
    assert canonical_json(math.inf) == b'{"$float":"Infinity"}'
    assert canonical_json(-math.inf) == b'{"$float":"-Infinity"}'
    assert canonical_json(Decimal("1.10")) == b'"1.10"'
    assert canonical_json(dt.date(2024, 1, 2)) == b'"2024-01-02"'
    assert canonical_json(dt.timedelta(seconds=1, microseconds=5)) == b'{"$seconds":"1.000005"}'
    assert canonical_json("é") == '"é"'.encode()
    with pytest.raises(InputError, match="non-string key"):
        canonical_json({1: 2})
    with pytest.raises(InputError, match="no JSON form"):
        canonical_json(object())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


@given(json_values)
def test_canonical_json_round_trips(value: object) -> None:
    encoded = canonical_json(value)
    assert json.loads(encoded) == value
    assert canonical_json(json.loads(encoded)) == encoded


csv_field = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"), max_size=8)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.lists(csv_field.filter(bool), min_size=1, max_size=4),
    data=st.data(),
    crlf=st.booleans(),
)
def test_csv_parser_recovers_the_written_rows(
    tmp_path: Path, header: list[str], data: st.DataObject, crlf: bool
) -> None:
    import csv
    import io

    width = len(header)
    rows = data.draw(st.lists(st.lists(csv_field, min_size=width, max_size=width), max_size=10))
    # A lone empty field is written as a blank line, which is not a record; quote everything.
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_ALL).writerows(
        [header, *rows]
    )
    f = tmp_path / "p.csv"
    f.write_bytes(buf.getvalue().encode())
    stream = open_records(f)
    assert stream.metadata["header"] == header
    assert [json.loads(r) for r in stream.records] == rows


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(json_values, max_size=10))
def test_jsonl_parser_keeps_each_line(tmp_path: Path, values: list[object]) -> None:
    lines = [json.dumps(v, ensure_ascii=False).encode() for v in values]
    f = tmp_path / "p.jsonl"
    f.write_bytes(b"".join(line + b"\n" for line in lines))
    assert list(iter_records(f)) == lines


def test_parquet_temporal_columns_do_not_depend_on_pandas(tmp_path: Path) -> None:
    import datetime as dt

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "ts": pa.array([1_000_000_001], type=pa.timestamp("ns")),
            "day": pa.array([dt.date(2020, 1, 2)]),
            "utc": pa.array([1], type=pa.timestamp("us", tz="UTC")),
        }
    )
    f = tmp_path / "t.parquet"
    pq.write_table(table, f)
    assert list(iter_records(f)) == [
        b'{"day":"2020-01-02","ts":"1970-01-01 00:00:01.000000001",'
        b'"utc":"1970-01-01 00:00:00.000001Z"}'
    ]


def test_jsonl_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"b": 2}\n')
    assert list(iter_records(f)) == [b'{"a": 1}', b'{"b": 2}']


def test_csv_line_length_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import glassbox.digest.records as records

    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 1000)
    f = tmp_path / "huge.csv"
    f.write_bytes(b"a,b\n" + b"x," * 3000 + b"y\n")
    with pytest.raises(InputError, match="line 2 is longer than 1000 characters"):
        list(iter_records(f))
    f.write_bytes(b"a,b\n" + b"1," + b"x" * 900 + b"\n")
    assert len(list(iter_records(f))) == 1


@pytest.mark.parametrize("name", ["d.jsonl.gz", "d.csv.gz"])
def test_gzip_datasets_commit_to_the_uncompressed_records(tmp_path: Path, name: str) -> None:
    import gzip

    plain = b"a,b\n1,2\n3,4\n" if ".csv" in name else b'{"a": 1}\n{"b": 2}\n'
    f = tmp_path / name
    f.write_bytes(gzip.compress(plain))
    g = tmp_path / name.removesuffix(".gz")
    g.write_bytes(plain)
    assert list(iter_records(f)) == list(iter_records(g))
    assert len(list(iter_records(f))) == 2


def test_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    import gzip

    f = tmp_path / "bad.jsonl.gz"
    f.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:-30] + b"\x00" * 30)
    with pytest.raises(InputError, match=r"bad\.jsonl\.gz: corrupt gzip data"):
        list(iter_records(f))
    f.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="corrupt gzip data"):
        list(iter_records(f))
