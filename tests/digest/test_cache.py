"""The digest cache: reused only while a file is provably unchanged, never hiding a change."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

import glassbox.digest.cache as cache_mod
import glassbox.digest.hashing as hashing_mod
from glassbox.digest import HashMethod, hash_model
from glassbox.digest.cache import DigestCache, FileKey


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let freshly written test files be cached (the window is tested on its own below)."""
    monkeypatch.setattr(cache_mod, "RACY_WINDOW_NS", 0)


@pytest.fixture
def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file hash_model actually reads."""
    seen: list[str] = []
    real = hashing_mod.hash_range

    def spy(path: str, *args: object, **kwargs: object) -> bytes:
        seen.append(os.path.basename(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("glassbox.digest.model.hash_range", spy)
    return seen


def make_model(root: Path) -> Path:
    root.mkdir()
    (root / "weights.bin").write_bytes(os.urandom(50_000))
    (root / "config.json").write_bytes(b'{"layers": 2}')
    return root


def settle() -> None:
    """Let the kernel's coarse clock tick, so a later change gets a different ctime."""
    time.sleep(0.05)


@pytest.mark.usefixtures("no_racy_window")
def test_warm_rehash_reads_nothing(tmp_path: Path, count_reads: list[str]) -> None:
    model = make_model(tmp_path / "m")
    cold = hash_model(model)
    assert sorted(count_reads) == ["config.json", "weights.bin"]
    count_reads.clear()
    warm = hash_model(model)
    assert count_reads == []
    assert warm == cold
    count_reads.clear()
    hash_model(model, use_cache=False)
    assert sorted(count_reads) == ["config.json", "weights.bin"]


@pytest.mark.usefixtures("no_racy_window")
def test_cache_is_per_method(tmp_path: Path, count_reads: list[str]) -> None:
    model = make_model(tmp_path / "m")
    hash_model(model)
    count_reads.clear()
    sharded = hash_model(model, HashMethod("sha256", 10_000))
    assert "weights.bin" in count_reads
    count_reads.clear()
    assert hash_model(model, HashMethod("sha256", 10_000)) == sharded
    assert count_reads == []


@pytest.mark.usefixtures("no_racy_window")
def test_restored_mtime_does_not_hide_a_change(tmp_path: Path) -> None:
    """Same size, same mtime, different bytes: ctime still moves, so the cache misses."""
    model = make_model(tmp_path / "m")
    weights = model / "weights.bin"
    before = hash_model(model)
    old = weights.stat()
    settle()
    data = bytearray(weights.read_bytes())
    data[123] ^= 0xFF
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(old.st_atime_ns, old.st_mtime_ns))
    now = weights.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)
    assert now.st_ctime_ns != old.st_ctime_ns
    after = hash_model(model)
    assert before.diff(after).modified == ("weights.bin",)


@pytest.mark.usefixtures("no_racy_window")
def test_tampering_detected_with_warm_cache(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m")
    (model / "tokenizer.json").write_bytes(b"{}")
    expected = hash_model(model)
    settle()
    (model / "config.json").write_bytes(b'{"layers": 3}')
    (model / "tokenizer.json").rename(model / "tok.json")
    (model / "extra.py").write_bytes(b"print('hi')")
    diff = expected.diff(hash_model(model))
    assert diff.modified == ("config.json",)
    assert diff.added == ("extra.py", "tok.json")
    assert diff.removed == ("tokenizer.json",)


def test_racy_files_are_not_cached(tmp_path: Path, count_reads: list[str]) -> None:
    """A file modified within the racy window is re-read every time until it settles."""
    model = make_model(tmp_path / "m")
    hash_model(model)
    count_reads.clear()
    hash_model(model)
    assert sorted(count_reads) == ["config.json", "weights.bin"]
    old = time.time_ns() - 10 * cache_mod.RACY_WINDOW_NS
    key = FileKey(1, 2, 3, old, old)
    assert key.settled(time.time_ns())
    assert not FileKey(1, 2, 3, old, time.time_ns()).settled(time.time_ns())


def test_entries_are_replaced_not_accumulated(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    with DigestCache(db) as cache:
        for mtime in range(5):
            cache.store([(FileKey(7, 8, 1, mtime, mtime), (b"\x01" * 32,))], "sha256")
        assert cache.lookup([FileKey(7, 8, 1, 4, 4)], "sha256") == {
            FileKey(7, 8, 1, 4, 4): (b"\x01" * 32,)
        }
        assert cache.lookup([FileKey(7, 8, 1, 3, 3)], "sha256") == {}
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM digests").fetchone()[0]
    assert rows == 1


def test_huge_device_and_inode_numbers(tmp_path: Path) -> None:
    key = FileKey(2**64 - 1, 2**63 + 5, 10, 1, 1)
    with DigestCache(tmp_path / "c.sqlite3") as cache:
        cache.store([(key, (b"\x02" * 32, b"\x03" * 32))], "sha256-sharded-5")
        assert cache.lookup([key], "sha256-sharded-5") == {key: (b"\x02" * 32, b"\x03" * 32)}


def test_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    db.write_bytes(b"this is not a database" * 100)
    with DigestCache(db) as cache:
        cache.store([(FileKey(1, 1, 1, 1, 1), (b"\x00" * 32,))], "sha256")
        assert cache.lookup([FileKey(1, 1, 1, 1, 1)], "sha256") == {}


def test_corrupt_cache_does_not_break_hashing(tmp_path: Path) -> None:
    (cache_mod.default_path()).write_bytes(b"garbage" * 1000)
    model = make_model(tmp_path / "m")
    assert hash_model(model) == hash_model(model, use_cache=False)


@pytest.mark.usefixtures("no_racy_window")
def test_concurrent_processes_share_the_cache(tmp_path: Path) -> None:
    import subprocess
    import sys

    models = [make_model(tmp_path / f"m{i}") for i in range(4)]
    code = (
        "import sys, glassbox.digest.cache as c; c.RACY_WINDOW_NS = 0;"
        "from glassbox.digest import hash_model;"
        "print(hash_model(sys.argv[1]).root_digest.hex())"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(m)], stdout=subprocess.PIPE, text=True)
        for m in models * 2
    ]
    roots = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert roots[:4] == roots[4:]
    assert roots[:4] == [hash_model(m, use_cache=False).root_digest.hex() for m in models]
    rows = sqlite3.connect(cache_mod.default_path()).execute("SELECT COUNT(*) FROM digests")
    assert rows.fetchone()[0] == 8


def test_unwritable_cache_directory_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    monkeypatch.setenv("GLASSBOX_HOME", str(blocker / "home"))
    model = make_model(tmp_path / "m")
    assert hash_model(model) == hash_model(model, use_cache=False)


@pytest.mark.usefixtures("no_racy_window")
def test_progress_counts_cached_bytes_too(tmp_path: Path, count_reads: list[str]) -> None:
    model = make_model(tmp_path / "m")
    hash_model(model)
    (model / "new.txt").write_bytes(b"fresh")
    seen: list[int] = []
    manifest = hash_model(model, progress=seen.append)
    assert count_reads[-1] == "new.txt"
    assert sum(seen) == manifest.total_size


@pytest.mark.usefixtures("no_racy_window")
def test_editing_one_file_rereads_only_that_file(tmp_path: Path, count_reads: list[str]) -> None:
    """The model_signing complaint: edit a README, re-hash 500 GB. Here: re-hash the README."""
    model = make_model(tmp_path / "m")
    (model / "README.md").write_text("v1")
    hash_model(model)
    settle()
    (model / "README.md").write_text("v2")
    count_reads.clear()
    hash_model(model)
    assert count_reads == ["README.md"]
