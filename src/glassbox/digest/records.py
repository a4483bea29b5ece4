"""Records of a dataset, as canonical bytes: what a dataset commitment's leaves are made of.

A commitment is only useful if anyone can recompute a record's bytes from the data, so each
format defines them exactly:

``csv``
    RFC 4180 as Python's ``csv`` module reads it (comma, double quotes, strict), UTF-8 (a BOM is
    dropped). The first row is the header: it is *not* a leaf; it goes into the commitment's
    metadata (so the root alone does not fix the column names: publish the commitment JSON).
    Every other non-blank row is one record whose bytes are the canonical JSON array of its
    field strings, e.g. ``["1","a, b","x"]``: quoting style and line endings do not change a
    record, its values do. A row whose field count differs from the header's is an error.
``jsonl``
    One record per non-blank line: the line's own bytes without its line ending and outer
    whitespace. The line must be one valid JSON value (UTF-8, no NaN/Infinity, no duplicate
    keys); it is committed exactly as written, so re-serialising the data changes the root.
``parquet``
    One record per row: the canonical JSON object of the row (see ``canonical_json``), columns as
    keys. Top-level date, time, timestamp and duration columns are first cast to strings by
    Arrow (``2020-01-02 03:04:05.000000001``), so the bytes never depend on whether pandas is
    installed. The Arrow schema (with units and time zones) goes into the metadata.
``files``
    A directory: one record per file, in OMS path order, ``{"path":...,"sha256":...,"size":...}``
    as canonical JSON, hashed with ``hash_model`` (so ``.git*`` is left out and symlinks that
    leave the directory are refused).

CSV and JSON Lines files may be gzip-compressed (``.csv.gz``, ``.jsonl.gz``): records are those
of the uncompressed data, so compressing a dataset does not change its commitment.

Canonical JSON here is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8; values JSON cannot hold are tagged: bytes as
``{"$base64": ...}``, non-finite floats as ``{"$float": "NaN" | "Infinity" | "-Infinity"}``,
decimals as strings, dates and times as ISO 8601 strings.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from zlib import error as zlib_error

from glassbox.errors import InputError

FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet", "files")
# No single record may be larger than this: a hostile file with no line breaks must not be
# read into memory whole.
MAX_RECORD_BYTES = 64 * 1024 * 1024
_EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


BATCH_RECORDS = 4096  # records per batch from ``RecordStream.batches``


@dataclass
class RecordStream:
    """A dataset opened for reading: its format, metadata (CSV header, schema) and records.

    ``batches`` yields the records in lists (file order, no empty lists): the commitment and
    the diff hash a whole list in one comprehension, so their per-record cost carries no
    generator step. ``records`` is the same stream one record at a time; read one or the other.
    """

    fmt: str
    batches: Iterator[list[bytes]]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def records(self) -> Iterator[bytes]:
        return itertools.chain.from_iterable(self.batches)


def _batched(records: Iterator[bytes], size: int = BATCH_RECORDS) -> Iterator[list[bytes]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown dataset format {fmt!r} (use one of {', '.join(FORMATS)})")
        return fmt
    if path.is_dir():
        return "files"
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    found = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if found is None:
        raise InputError(
            f"{path}: cannot tell the dataset format from the name; pass --format "
            f"({', '.join(FORMATS)})"
        )
    return found


def open_records(
    path: str | Path, fmt: str | None = None, *, validate: bool = True
) -> RecordStream:
    """Open ``path`` and return its records in file order (commitment order when unsorted).

    ``validate=False`` skips the check that each JSON Lines line is one valid JSON value: only
    for a second pass over data already read whole, whose results are verified another way
    (the diff's proofs, checked against the commitment of the first pass).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"dataset {p} does not exist")
    kind = detect_format(p, fmt)
    if kind == "files":
        return _files_records(p)
    if not p.is_file():
        raise InputError(
            f"dataset {p} is not a file (a directory is committed with --format files)"
        )
    if kind == "csv":
        return _csv_records(p)
    if kind == "jsonl":
        return RecordStream("jsonl", _jsonl_batches(p, validate))
    return _parquet_records(p)


def iter_records(path: str | Path, fmt: str | None = None) -> Iterator[bytes]:
    """Canonical record bytes in file order: record ``i`` is leaf ``i`` when unsorted."""
    return open_records(path, fmt).records


def canonical_json(value: Any) -> bytes:
    """The one canonical JSON encoding used for records (see module docstring)."""
    try:
        text = json.dumps(
            _jsonable(value),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"record cannot be encoded as canonical JSON: {exc}") from exc
    return text.encode("utf-8")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {
            "$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        }
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return {
            "$seconds": str(
                decimal.Decimal(value.days * 86400 + value.seconds)
                + decimal.Decimal(value.microseconds) / 1_000_000
            )
        }
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"record has a non-string key {key!r}")
            out[key] = _jsonable(item)
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    raise InputError(f"record holds a value of type {type(value).__name__} with no JSON form")


# --- CSV ---------------------------------------------------------------------------------


def _csv_records(path: Path) -> RecordStream:
    raw = _open_binary(path)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="", errors="strict")
    reader = csv.reader(_bounded_lines(text, path), strict=True)
    try:
        header = _next_csv_row(reader, path)
        while header is not None and not header:
            header = _next_csv_row(reader, path)
    except InputError:
        text.close()
        raise
    if header is None:
        text.close()
        raise InputError(f"{path}: CSV file is empty (a header row is required)")
    rows = _batched(_csv_rows(text, reader, path, header))
    return RecordStream("csv", rows, {"header": header})


def _bounded_lines(text: io.TextIOWrapper, path: Path) -> Iterator[str]:
    """Physical lines, none longer than ``MAX_RECORD_BYTES`` characters.

    The ``csv`` module bounds each field (``csv.field_size_limit``) but only after a whole line
    is in memory; a hostile file with no line breaks must fail before that.
    """
    line_no = 0
    while line := text.readline(MAX_RECORD_BYTES + 1):
        line_no += 1
        if len(line) > MAX_RECORD_BYTES:
            raise InputError(f"{path}: line {line_no} is longer than {MAX_RECORD_BYTES} characters")
        yield line


def _next_csv_row(reader: Any, path: Path) -> list[str] | None:
    try:
        row: list[str] = next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not valid UTF-8 near line {reader.line_num + 1}: {exc.reason}"
        ) from exc
    return row


def _csv_rows(
    text: io.TextIOWrapper, reader: Any, path: Path, header: list[str]
) -> Iterator[bytes]:
    with text:
        while (row := _next_csv_row(reader, path)) is not None:
            if not row:
                continue  # a blank line is not a record
            if len(row) != len(header):
                raise InputError(
                    f"{path}: line {reader.line_num} has {len(row)} fields, the header has "
                    f"{len(header)}"
                )
            yield canonical_json(row)


# --- JSON Lines --------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


# One decoder for every line: ``json.loads`` with hooks builds a new decoder per call, which
# was a fifth of the cost of reading a JSON Lines record.
_STRICT = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
_STRICT_DECODE = _STRICT.decode
# The decoder's C scanner, called directly: ``decode`` wraps it in two regular-expression
# matches and a Python frame, a third of the per-record cost. A line is stripped of JSON
# whitespace, so it is one value exactly when the scan starts at 0 and ends at its length.
_STRICT_SCAN: Callable[[str, int], tuple[Any, int]] = _STRICT.scan_once  # type: ignore[attr-defined]


def _check_json_line(record: bytes, path: Path, line_no: int) -> None:
    try:
        _STRICT_DECODE(record.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: line {line_no} is not valid UTF-8") from exc
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: line {line_no} is not valid JSON: {exc}") from exc


def valid_json_lines(records: list[bytes]) -> bool:
    """Whether each record (a stripped, non-blank line) is one strict JSON value: UTF-8, no
    NaN/Infinity, no duplicate keys. The batch form of ``_check_json_line`` (which names the
    line); a parallel commitment's workers run it too."""
    scan = _STRICT_SCAN
    try:
        for text in map(bytes.decode, records):
            if scan(text, 0)[1] != len(text):
                return False
    except (ValueError, RecursionError, StopIteration):  # a Unicode error is a ValueError
        return False
    return True


_READ_BYTES = 1 << 20


def _jsonl_batches(path: Path, validate: bool = True) -> Iterator[list[bytes]]:
    """The records of a JSON Lines file, a list per 1 MiB read.

    The same records and errors as one ``readline`` and one strict decode per line (the
    reference reader in ``tests/digest/test_fast_paths.py``), for less per-record work: lines
    are cut out of each read with one ``split``, stripped and decoded in comprehensions, and
    each one is still checked on its own by the strict decoder (one JSON value per line is the
    format's definition, so no shortcut through a joined parse). A line with no end yet is
    carried to the next read as parts, and refused once longer than the reference reader
    allows, before more of it is read.
    """
    # The reference reads ``readline(MAX + 2)``: a line of MAX + 1 bytes still fits with its
    # newline; at the end of the file, with no newline, MAX is the most.
    limit = MAX_RECORD_BYTES + 1
    strip = bytes.strip
    with _open_binary(path) as f:
        line_no = 0
        carry: list[bytes] = []
        carried = 0
        while True:
            chunk = f.read(_READ_BYTES)
            if chunk and b"\n" not in chunk:
                carry.append(chunk)
                carried += len(chunk)
                if carried > limit:
                    raise InputError(
                        f"{path}: line {line_no + 1} is longer than {MAX_RECORD_BYTES} bytes"
                    )
                continue
            # ``bad``: the offset of the first line too long, if any. The lines before it are
            # still checked and given first, so errors come in line order, as the reference's.
            bad: int | None = None
            if chunk:
                lines = chunk.split(b"\n")
                if carry:  # the carried start of the first line; the rest is not copied again
                    lines[0] = b"".join([*carry, lines[0]])
                tail = lines.pop()
                carry, carried = ([tail], len(tail)) if tail else ([], 0)
                if max(map(len, lines), default=0) > limit:
                    bad = next(i for i, line in enumerate(lines) if len(line) > limit)
                elif carried > limit:
                    bad = len(lines)
            else:
                lines = [b"".join(carry)] if carried else []
                if carried > MAX_RECORD_BYTES:
                    bad = 0
            if bad is not None:
                del lines[bad:]
            if line_no == 0 and lines and lines[0].startswith(b"\xef\xbb\xbf"):
                lines[0] = lines[0][3:]  # a UTF-8 byte order mark is not part of the record
            stripped = [strip(line, b" \t\r\n") for line in lines]
            records = [record for record in stripped if record]
            if validate and not valid_json_lines(records):
                for offset, record in enumerate(stripped):  # again, one by one, to name the line
                    if record:
                        _check_json_line(record, path, line_no + offset + 1)
                raise InputError(f"{path}: not valid JSON Lines")  # (the loop names the line)
            line_no += len(lines)
            if records:
                yield records
            if bad is not None:
                raise InputError(
                    f"{path}: line {line_no + 1} is longer than {MAX_RECORD_BYTES} bytes"
                )
            if not chunk:
                return


# --- Parquet -----------------------------------------------------------------------------


def _parquet_records(path: Path) -> RecordStream:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            f"{path}: Parquet needs pyarrow (pip install 'glassbox[formats]')"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
        schema = str(parquet.schema_arrow)
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    return RecordStream("parquet", _batched(_parquet_rows(parquet, path)), {"schema": schema})


def _parquet_rows(parquet: Any, path: Path) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        for batch in parquet.iter_batches(batch_size=4096):
            # Dates, times, timestamps and durations become Arrow's own ISO-style strings:
            # Python conversion would depend on whether pandas is installed (nanoseconds).
            columns = [
                pc.cast(column, pa.string()) if pa.types.is_temporal(column.type) else column
                for column in batch.columns
            ]
            rows = pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pylist()
            for row in rows:
                yield canonical_json(row)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read Parquet rows: {exc}") from exc


# --- directory of files ------------------------------------------------------------------


def _files_records(path: Path) -> RecordStream:
    from glassbox.digest.model import hash_model

    if not path.is_dir():
        raise InputError(f"{path}: the 'files' format needs a directory")
    manifest = hash_model(path)
    records = (
        canonical_json({"path": item.name, "sha256": item.digest.hex(), "size": item.size})
        for item in manifest.items
    )
    return RecordStream("files", _batched(records), {"ignore_paths": list(manifest.ignore_paths)})


def _open_binary(path: Path) -> BinaryIO:
    """The file's bytes; a ``.gz`` file is decompressed as it streams (the records, and so
    the commitment, are those of the uncompressed data)."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix.lower() != ".gz":
        return raw
    import gzip

    return io.BufferedReader(_GzipErrors(gzip.GzipFile(fileobj=raw, mode="rb"), raw, path))


class _GzipErrors(io.RawIOBase):
    """A gzip stream whose corruption errors become ``InputError`` naming the file."""

    def __init__(self, inner: Any, raw: BinaryIO, path: Path) -> None:
        super().__init__()
        self._inner, self._raw, self._path = inner, raw, path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            n: int = self._inner.readinto(buffer)
        except (OSError, EOFError, zlib_error) as exc:
            raise InputError(f"{self._path}: corrupt gzip data: {exc}") from exc
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._raw.close()
            super().close()
