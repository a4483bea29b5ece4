"""Export/import moves a log between SQLite and PostgreSQL with every hash recomputed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from glassbox.errors import InputError, VerificationError
from glassbox.tlog import TransparencyLog, open_store, parse_entry
from glassbox.tlog.note import Signer
from glassbox.tlog.transfer import export_log, import_log
from glassbox.tlog.tree import audit_store
from tests.tlog.conftest import drop_pg_schema, fresh_pg_schema, needs_pg, pg_url
from tests.tlog.helpers import bundle_submission, new_key


def make_log(url: str, n: int = 25) -> TransparencyLog:
    lg = TransparencyLog(open_store(url), Signer.generate("xfer.example/log"))
    key = new_key()
    for i in range(n):
        lg.add(parse_entry(bundle_submission(key, f"m{i % 4}", str(i))))
        if i in (9, 20):
            lg.issue_checkpoint()
    return lg


def round_trip(src_url: str, dst_url: str, tmp_path: Path) -> None:
    src = make_log(src_url)
    archive = tmp_path / "log.jsonl.gz"
    header = export_log(src.store, archive)
    dst = open_store(dst_url)
    result = import_log(dst, archive)
    assert result["root"] == header["root"] and result["size"] == 25
    assert audit_store(dst).hex() == header["root"]
    assert dst.search("name", "m1", 100) == src.store.search("name", "m1", 100)
    assert [s for s, _ in dst.checkpoints()] == [10, 21]
    moved = TransparencyLog(dst, src.signer)  # the same key signs on in the new store
    assert moved.get(7).entry().leaf == src.get(7).leaf
    assert moved.issue_checkpoint().checkpoint.size == 25
    moved.close()
    src.close()


def test_sqlite_to_sqlite(tmp_path: Path) -> None:
    round_trip(str(tmp_path / "a.db"), str(tmp_path / "b.db"), tmp_path)


@needs_pg
@pytest.mark.postgres
def test_sqlite_to_postgres_and_back(tmp_path: Path) -> None:
    schema = fresh_pg_schema()
    try:
        round_trip(str(tmp_path / "a.db"), pg_url(schema), tmp_path)
        back = tmp_path / "back"
        back.mkdir()
        src = open_store(pg_url(schema))
        export_log(src, back / "pg.jsonl.gz")
        src.close()
        dst = open_store(str(back / "c.db"))
        assert import_log(dst, back / "pg.jsonl.gz")["size"] == 25
        dst.close()
    finally:
        drop_pg_schema(schema)


def test_tampered_archive_is_refused(tmp_path: Path) -> None:
    src = make_log(str(tmp_path / "a.db"), 5)
    archive = tmp_path / "log.jsonl.gz"
    export_log(src.store, archive)
    src.close()
    lines = gzip.decompress(archive.read_bytes()).decode().splitlines()
    rec = json.loads(lines[2])
    rec["terms"] = [["name", "injected"]]
    leaf = bytearray(__import__("base64").b64decode(rec["leaf"]))
    leaf[5] ^= 1
    rec["leaf"] = __import__("base64").b64encode(bytes(leaf)).decode()
    lines[2] = json.dumps(rec)
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(VerificationError, match="does not match"):
        import_log(open_store(str(tmp_path / "x.db")), bad)
    (tmp_path / "junk.gz").write_bytes(b"junk")
    with pytest.raises(InputError):
        import_log(open_store(str(tmp_path / "y.db")), tmp_path / "junk.gz")
