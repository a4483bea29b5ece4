"""The one bounded reader and JSON decoder for small input files."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox.errors import InputError
from glassbox.files import check_output_file, parse_json, read_json_file


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not UTF-8 text"),
        (b"{", r"not valid JSON \("),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    ],
)
def test_bad_json_is_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=rf"^in\.json: {message}"):
        parse_json(data, "in.json")


def test_json_file_is_bounded_and_parsed(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text('{"k": 1}')
    assert read_json_file(path, 100, "policy") == {"k": 1}
    path.write_text('{"k": "' + "x" * 200 + '"}')
    with pytest.raises(InputError, match="too large to be a policy file"):
        read_json_file(path, 100, "policy")
    with pytest.raises(InputError, match="too large to be a policy file"):
        read_json_file(Path("/dev/zero"), 100, "policy")  # endless: refused after 101 bytes
    with pytest.raises(InputError, match="policy file not found"):
        read_json_file(tmp_path / "missing.json", 100, "policy")


def test_check_output_file_refuses_what_cannot_be_written(tmp_path: Path) -> None:
    """One rule for every output file (--html, bom --out): the directory must exist; the part
    of the path that is a file is named; no "File exists"; nothing is created."""
    check_output_file(tmp_path / "ok.html", "report")
    blocker = tmp_path / "passwd"
    blocker.write_text("x")
    cases = {
        tmp_path / "a" / "b" / "r.html": f"directory {tmp_path / 'a' / 'b'} does not exist",
        blocker / "r.html": f"{blocker} is not a directory",
        blocker / "deeper" / "r.html": f"{blocker} is not a directory",
        tmp_path: "is a directory; give a file name for the report",
    }
    for path, message in cases.items():
        with pytest.raises(InputError) as caught:
            check_output_file(path, "report")
        assert str(caught.value) == f"{path}: {message}"
    assert not (tmp_path / "a").exists()
