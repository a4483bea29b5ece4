"""hash_model against the real model_signing package: same resources, same order, same root."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from glassbox.digest import DEFAULT_IGNORES, HashMethod, Manifest, hash_file, hash_model
from glassbox.errors import InputError

oms_hashing = pytest.importorskip("model_signing.hashing")


def oms_manifest(
    path: Path,
    *,
    algorithm: str = "sha256",
    shard_size: int | None = None,
    allow_symlinks: bool = False,
    ignore: list[str] | None = None,
) -> tuple[list[tuple[str, bytes]], bytes, dict[str, object]]:
    """(resources, root digest, serialization) as model_signing computes them."""
    config = oms_hashing.Config()
    if shard_size is None:
        config.use_file_serialization(hashing_algorithm=algorithm)
    else:
        config.use_shard_serialization(hashing_algorithm=algorithm, shard_size=shard_size)
    config.set_allow_symlinks(allow_symlinks)
    if ignore:
        config.set_ignored_paths(paths=ignore)
    manifest = config.hash(path)
    resources = [(rd.identifier, rd.digest.digest_value) for rd in manifest.resource_descriptors()]
    root = hashlib.sha256(b"".join(d for _, d in resources)).digest()
    return resources, root, manifest.serialization_type


def ours(manifest: Manifest) -> tuple[list[tuple[str, bytes]], bytes]:
    return [(i.name, i.digest) for i in manifest.items], manifest.root_digest


def write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write(
        tmp_path / "model",
        {
            "config.json": b'{"a": 1}',
            "a/b": b"component order",
            "a.b": b"string order",
            "a/c/d.bin": os.urandom(70_000),
            "z/deep/er/file": b"x" * 5000,
            ".hidden": b"dotfile",
            "empty": b"",
            ".git/HEAD": b"ref: refs/heads/main\n",
            ".gitattributes": b"* binary",
            "sub/.git": b"not ignored: only top-level .git is",
        },
    )


def test_files_mode_matches_model_signing(model: Path) -> None:
    resources, root, _ = oms_manifest(model)
    manifest = hash_model(model, use_cache=False)
    assert ours(manifest) == (resources, root)
    # Path-component order: "a/b" sorts before "a.b" although "." < "/" as characters.
    names = [i.name for i in manifest.items]
    assert names.index("a/b") < names.index("a.b")
    assert manifest.model_name == "model"
    assert ".git/HEAD" not in names and "empty" in names


def test_sharded_mode_matches_model_signing(model: Path) -> None:
    (model / "big").write_bytes(os.urandom(10_000))
    resources, root, serialization = oms_manifest(model, shard_size=4096)
    manifest = hash_model(model, HashMethod("sha256", 4096), use_cache=False, workers=3)
    assert ours(manifest) == (resources, root)
    assert [i.name for i in manifest.items if i.path == "big"] == [
        "big:0:4096",
        "big:4096:8192",
        "big:8192:10000",
    ]
    assert all(i.path != "empty" for i in manifest.items)  # empty files have no shards
    assert serialization["shard_size"] == manifest.serialization()["shard_size"] == 4096


def test_sharded_resource_algorithm_is_the_method_name(model: Path) -> None:
    manifest = hash_model(model, HashMethod("sha256", 4096), use_cache=False)
    assert {r["algorithm"] for r in manifest.resources()} == {"sha256-sharded-4096"}


def test_blake3_matches_model_signing(model: Path) -> None:
    resources, root, _ = oms_manifest(model, algorithm="blake3")
    assert ours(hash_model(model, HashMethod("blake3"), use_cache=False)) == (resources, root)


def test_blake3_large_file_uses_internal_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import glassbox.digest.model as model_mod

    monkeypatch.setattr(model_mod, "BLAKE3_LARGE_FILE", 1024)
    root = write(tmp_path / "m", {"big": os.urandom(3_000_000), "small": b"s"})
    resources, digest, _ = oms_manifest(root, algorithm="blake3")
    assert ours(hash_model(root, HashMethod("blake3"), use_cache=False, workers=2)) == (
        resources,
        digest,
    )


def test_blake3_sharded_is_refused(model: Path) -> None:
    with pytest.raises(InputError, match="not sharded"):
        hash_model(model, HashMethod("blake3", 4096))


def test_single_file_model(tmp_path: Path) -> None:
    f = tmp_path / "weights.safetensors"
    f.write_bytes(os.urandom(9000))
    resources, root, _ = oms_manifest(f)
    manifest = hash_model(f, use_cache=False)
    assert ours(manifest) == (resources, root)
    assert [i.name for i in manifest.items] == ["."]
    assert manifest.model_name == "weights.safetensors"
    sharded = hash_model(f, HashMethod("sha256", 4000), use_cache=False)
    assert ours(sharded)[0] == oms_manifest(f, shard_size=4000)[0]
    assert [i.name for i in sharded.items] == [".:0:4000", ".:4000:8000", ".:8000:9000"]


def test_single_file_sibling_signature_is_not_recorded(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"w")
    manifest = hash_model(f, ignore_paths=[tmp_path / "w.bin.sig"])
    assert manifest.ignore_paths == tuple(sorted(DEFAULT_IGNORES))


def test_ignore_paths_are_recorded_and_match_model_signing(model: Path) -> None:
    resources, root, serialization = oms_manifest(model, ignore=["a", "config.json"])
    manifest = hash_model(model, ignore_paths=["a", model / "config.json"], use_cache=False)
    assert ours(manifest) == (resources, root)
    assert set(manifest.ignore_paths) == set(serialization["ignore_paths"])  # type: ignore[arg-type]
    assert manifest.ignore_paths == tuple(sorted(manifest.ignore_paths))
    # "a" is a whole component: "a.b" stays.
    assert "a.b" in {i.name for i in manifest.items}


def test_ignore_outside_model_is_dropped(model: Path, tmp_path: Path) -> None:
    manifest = hash_model(model, ignore_paths=["../elsewhere", tmp_path / "other"])
    assert manifest.ignore_paths == tuple(sorted(DEFAULT_IGNORES))


def test_allowed_symlinks_inside_match_model_signing(model: Path) -> None:
    (model / "link.bin").symlink_to("a/c/d.bin")
    (model / "linkdir").symlink_to("z")
    resources, root, _ = oms_manifest(model, allow_symlinks=True)
    manifest = hash_model(model, HashMethod(allow_symlinks=True), use_cache=False)
    assert ours(manifest) == (resources, root)
    names = {i.name for i in manifest.items}
    assert "link.bin" in names and not any(n.startswith("linkdir") for n in names)


def test_symlink_refused_unless_allowed(model: Path) -> None:
    (model / "link.bin").symlink_to("a/c/d.bin")
    with pytest.raises(InputError, match=r"link\.bin is a symlink"):
        hash_model(model)


@pytest.mark.parametrize("allow", [False, True])
def test_symlink_escape_is_refused(model: Path, tmp_path: Path, allow: bool) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"outside")
    (model / "a" / "escape").symlink_to(secret)
    with pytest.raises(InputError, match=r"a/escape points outside the model directory"):
        hash_model(model, HashMethod(allow_symlinks=allow))


def test_symlinked_directory_escape_is_refused(model: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"x": b"x"})
    (model / "dir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InputError, match="points outside"):
        hash_model(model, HashMethod(allow_symlinks=True))


def test_broken_symlink(model: Path) -> None:
    (model / "dangling").symlink_to(model / "nowhere")
    with pytest.raises(InputError, match="broken"):
        hash_model(model, HashMethod(allow_symlinks=True))


def test_fifo_is_refused_without_blocking(model: Path) -> None:
    os.mkfifo(model / "pipe")
    with pytest.raises(InputError, match="pipe is not a regular file"):
        hash_model(model)


def test_empty_model_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no files to hash"):
        hash_model(tmp_path / "empty")
    only_git = write(tmp_path / "only_git", {".git/config": b"x", ".gitignore": b"*"})
    with pytest.raises(InputError, match="no files to hash"):
        hash_model(only_git)


def test_only_empty_files_in_sharded_mode_is_an_error(tmp_path: Path) -> None:
    root = write(tmp_path / "m", {"a": b"", "b": b""})
    assert len(hash_model(root).items) == 2
    with pytest.raises(InputError, match="no content"):
        hash_model(root, HashMethod("sha256", 10))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        hash_model(tmp_path / "nope")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_named(model: Path) -> None:
    locked = model / "locked.bin"
    locked.write_bytes(b"secret")
    locked.chmod(0)
    try:
        with pytest.raises(InputError, match=r"cannot read .*locked\.bin"):
            hash_model(model, use_cache=False)
    finally:
        locked.chmod(0o600)


def test_unreadable_file_is_named_via_injected_fault(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def failing_open(path: object, flags: int, *args: object) -> int:
        if str(path).endswith("config.json"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(InputError, match=r"cannot read .*config\.json: Permission denied"):
        hash_model(model, use_cache=False)


def test_zero_byte_file_is_valid(tmp_path: Path) -> None:
    f = tmp_path / "zero"
    f.write_bytes(b"")
    manifest = hash_model(f)
    assert manifest.items[0].digest == hashlib.sha256(b"").digest()
    assert ours(manifest) == oms_manifest(f)[:2]


def test_progress_counts_every_byte(model: Path) -> None:
    seen: list[int] = []
    manifest = hash_model(model, use_cache=False, progress=seen.append)
    assert sum(seen) == manifest.total_size


def test_hash_file(tmp_path: Path) -> None:
    import blake3

    f = tmp_path / "f"
    data = os.urandom(20_000_000)
    f.write_bytes(data)
    assert hash_file(f) == hashlib.sha256(data).digest()
    assert hash_file(f, "blake3") == blake3.blake3(data).digest()
    with pytest.raises(InputError, match="not a regular file"):
        hash_file(tmp_path)


def test_truncated_while_hashing_is_detected(tmp_path: Path) -> None:
    from glassbox.digest.hashing import hash_range

    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    st = f.stat()
    f.write_bytes(b"x" * 50)
    with pytest.raises(InputError, match=r"shorter than expected|changed while"):
        hash_range(f, 0, 100, expect=st)


def test_replaced_file_is_detected(tmp_path: Path) -> None:
    from glassbox.digest.hashing import hash_range

    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    st = f.stat()
    f.unlink()
    (tmp_path / "keep").write_bytes(b"hold the old inode number")
    f.write_bytes(b"y" * 100)
    if f.stat().st_ino == st.st_ino:
        pytest.skip("file system reused the inode")
    with pytest.raises(InputError, match="replaced"):
        hash_range(f, 0, 100, expect=st)


def test_many_small_files_are_batched_and_still_match(tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i:04d}.bin": os.urandom(i % 300) for i in range(400)}
    files["big.bin"] = os.urandom(300_000)
    root = write(tmp_path / "many", files)
    resources, digest, _ = oms_manifest(root)
    assert ours(hash_model(root, use_cache=False, workers=4)) == (resources, digest)
    resources, digest, _ = oms_manifest(root, shard_size=1000)
    got = hash_model(root, HashMethod("sha256", 1000), use_cache=False, workers=3)
    assert ours(got) == (resources, digest)


def test_worker_count_does_not_change_the_result(model: Path) -> None:
    one = hash_model(model, use_cache=False, workers=1)
    assert hash_model(model, use_cache=False, workers=8) == one


def test_model_name_override(model: Path) -> None:
    assert hash_model(model, model_name="llama").model_name == "llama"


def test_memory_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing streams: a 48 MiB file must not be read into memory whole."""
    import tracemalloc

    import glassbox.digest.model as model_mod

    monkeypatch.setattr(model_mod, "BLAKE3_LARGE_FILE", 1 << 20)  # BLAKE3's parallel reader too

    f = tmp_path / "big.bin"
    with f.open("wb") as out:
        for _ in range(48):
            out.write(os.urandom(1 << 20))
    for method in (HashMethod(), HashMethod("sha256", 8 << 20), HashMethod("blake3")):
        tracemalloc.start()
        try:
            hash_model(f, method, use_cache=False, workers=2)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 12 << 20, (method.name, peak)


def test_error_in_one_file_stops_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write(tmp_path / "m", {f"f{i}": b"x" * i for i in range(1, 300)})
    real_open = os.open

    def failing_open(path: object, flags: int, *args: object) -> int:
        if str(path).endswith("f150"):
            raise OSError(5, "Input/output error", str(path))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(InputError, match=r"cannot read .*f150: Input/output error"):
        hash_model(root, use_cache=False, workers=2)


def test_symlink_loop_is_a_clear_error(model: Path) -> None:
    (model / "loop1").symlink_to("loop2")
    (model / "loop2").symlink_to("loop1")
    with pytest.raises(InputError, match=r"cannot read .*loop[12]: .*symbolic links"):
        hash_model(model, HashMethod(allow_symlinks=True))


def test_non_utf8_file_name_is_refused(model: Path) -> None:
    raw = os.fsencode(model) + b"/bad\xffname"
    with open(raw, "wb") as f:
        f.write(b"x")
    with pytest.raises(InputError, match="file name is not valid UTF-8"):
        hash_model(model)


def test_unusual_but_valid_names_match_model_signing(tmp_path: Path) -> None:
    root = write(
        tmp_path / "m",
        {"sp ace": b"1", "é/ü.bin": b"2", "new\nline": b"3", "tab\there": b"4", "a:b": b"5"},
    )
    resources, digest, _ = oms_manifest(root)
    assert ours(hash_model(root, use_cache=False)) == (resources, digest)


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_parallel_blake3_reads_match_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    import blake3

    from glassbox.digest import hashing

    monkeypatch.setattr(hashing, "BLAKE3_SLICE", 1000)  # many rounds, ragged last slices
    data = os.urandom(123_457)
    f = tmp_path / "f"
    f.write_bytes(data)
    seen: list[int] = []
    got = hashing.hash_range(f, 0, len(data), "blake3", threads=threads, progress=seen.append)
    assert got == blake3.blake3(data).digest()
    assert sum(seen) == len(data)
    assert hashing.hash_range(f, 5000, 70_001, "blake3", threads=threads) == (
        blake3.blake3(data[5000:70_001]).digest()
    )
    monkeypatch.delattr(os, "preadv")  # platforms without preadv: one reader, same digest
    assert hashing.hash_range(f, 0, len(data), "blake3", threads=threads) == got


def test_parallel_blake3_detects_a_short_file(tmp_path: Path) -> None:
    from glassbox.digest.hashing import hash_range

    f = tmp_path / "f"
    f.write_bytes(b"x" * 10_000)
    with pytest.raises(InputError, match="shorter than expected"):
        hash_range(f, 0, 20_000, "blake3", threads=2)
