"""The verified store: what a warm load maps is what Glassbox wrote and hashed, nothing else."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import glassbox.digest.cache as digest_cache
from glassbox.errors import InputError
from glassbox.trust import store as store_module
from glassbox.trust.errors import ChangedFiles, StoreTampered
from glassbox.trust.loaders import load_pretrained, load_safetensors, open_verified
from glassbox.trust.store import CHUNK, store_root
from tests.trust.conftest import Keys, release, write_policy


@pytest.fixture(autouse=True)
def _no_racy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    # Files made a moment ago are "racily clean" for 2 s; these tests have no 2 s to wait.
    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 0)


def _signed(weights: Path) -> dict[str, torch.Tensor]:
    # load_file maps the file lazily: without the clone, the tensors would follow the file.
    return {k: v.clone() for k, v in load_file(weights).items()}


def _evil_bytes(weights: Path) -> bytes:
    raw = weights.read_bytes()
    start = 8 + int.from_bytes(raw[:8], "little")
    return raw[:start] + b"\x3f" * (len(raw) - start)  # same header and size, other floats


def _warm(model: Path, policy: Path, store: Path) -> Path:
    """Fill the store, then check that a second load copies and hashes nothing."""
    with open_verified(model, policy, store=store) as cold:
        assert cold.copy.hashed_bytes > 0
    with open_verified(model, policy, store=store) as warm:
        assert warm.copy.hashed_bytes == 0
        assert warm.copy.cached_files == len(warm.copy.files)
        weights = warm.path / "model.safetensors"
        assert weights.is_relative_to(store / "trees")
        assert not weights.is_symlink()
        return weights


def test_default_store_is_in_the_cache_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from glassbox import paths

    monkeypatch.delenv(store_module.STORE_ENV, raising=False)
    assert store_root(None) == paths.cache_dir() / "verified-store"
    assert store_root(False) is None
    monkeypatch.setenv(store_module.STORE_ENV, "off")
    assert store_root(None) is None
    monkeypatch.setenv(store_module.STORE_ENV, "/somewhere")
    assert store_root(None) == Path("/somewhere")
    assert store_root("/elsewhere") == Path("/elsewhere")


def test_warm_load_maps_the_store_and_reads_nothing(
    model: Path, policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm load neither copies nor hashes: it checks identities and maps the store file."""
    store = tmp_path / "store"
    entry = _warm(model, policy, store)
    assert entry.read_bytes() == (model / "model.safetensors").read_bytes()

    def no_reads(*args: object, **kwargs: object) -> object:
        raise AssertionError("a warm load read a file")

    monkeypatch.setattr(store_module, "_hash_fd", no_reads)
    monkeypatch.setattr(store_module, "_copy_and_hash", no_reads)
    loaded = load_pretrained(model, policy, store=store)
    signed = _signed(model / "model.safetensors")
    got = loaded.state_dict()
    assert all(torch.equal(got[k], v) for k, v in signed.items() if k in got)


@pytest.mark.parametrize("how", ["rename", "in-place"])
def test_change_in_the_users_directory_after_the_gate_is_not_loaded(
    model: Path, policy: Path, tmp_path: Path, how: str
) -> None:
    """The gate passes; then the user's file is swapped or rewritten in place before the load.
    The loader reads the store, so it gets the signed tensors; the next load refuses."""
    from transformers import BertModel

    store = tmp_path / "store"
    _warm(model, policy, store)
    weights = model / "model.safetensors"
    signed = _signed(weights)
    evil = _evil_bytes(weights)
    with open_verified(model, policy, store=store) as verified:
        if how == "rename":
            (tmp_path / "evil").write_bytes(evil)
            os.replace(tmp_path / "evil", weights)
        else:
            with open(weights, "r+b") as handle:
                handle.write(evil)
        loaded = BertModel.from_pretrained(str(verified.path), local_files_only=True)
    got = loaded.state_dict()
    assert all(torch.equal(got[k], v) for k, v in signed.items() if k in got)
    with pytest.raises(ChangedFiles, match=r"model\.safetensors differs"):
        load_pretrained(model, policy, store=store)


def test_tampered_store_file_is_copied_again_never_loaded(
    model: Path, policy: Path, tmp_path: Path
) -> None:
    """A store file changed behind Glassbox's back (chmod, write) no longer has the identity
    recorded with its digests: it is replaced by a fresh verified copy, never loaded as is."""
    store = tmp_path / "store"
    entry = _warm(model, policy, store)
    tampered = entry.stat().st_ino
    entry.chmod(0o600)
    entry.write_bytes(_evil_bytes(model / "model.safetensors"))
    entry.chmod(0o444)  # and made to look untouched
    with open_verified(model, policy, store=store) as again:
        assert again.copy.hashed_bytes >= entry.stat().st_size
        assert again.path / "model.safetensors" == entry
        assert entry.stat().st_ino != tampered
        assert entry.read_bytes() == (model / "model.safetensors").read_bytes()
    got = load_pretrained(model, policy, store=store).state_dict()
    signed = _signed(model / "model.safetensors")
    assert all(torch.equal(got[k], v) for k, v in signed.items() if k in got)


def test_tampered_store_and_changed_model_is_refused(
    model: Path, policy: Path, tmp_path: Path
) -> None:
    """With the store file tampered and the user's file changed too, nothing signed is left to
    copy: refused, naming the file."""
    store = tmp_path / "store"
    entry = _warm(model, policy, store)
    entry.chmod(0o600)
    entry.write_bytes(_evil_bytes(model / "model.safetensors"))
    weights = model / "model.safetensors"
    weights.write_bytes(_evil_bytes(weights))
    with pytest.raises(ChangedFiles, match=r"model\.safetensors differs"):
        load_pretrained(model, policy, store=store)


def test_a_writable_store_file_is_not_trusted(model: Path, policy: Path, tmp_path: Path) -> None:
    """Store files are read-only; one that was made writable is re-verified (copied again)."""
    store = tmp_path / "store"
    entry = _warm(model, policy, store)
    for path in (store / "trees").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path
    if os.geteuid() != 0:  # root ignores permission bits
        with pytest.raises(PermissionError):
            open(entry, "r+b")  # noqa: SIM115
    entry.chmod(0o644)
    with open_verified(model, policy, store=store) as again:
        assert again.copy.hashed_bytes > 0
    assert stat.S_IMODE(entry.stat().st_mode) & 0o222 == 0


def test_use_cache_false_reads_and_hashes_everything_again(
    model: Path, policy: Path, tmp_path: Path
) -> None:
    """Cold, nothing recorded is trusted: every store file is hashed again and compared with
    the user's file, and kept (not rewritten) when they agree."""
    store = tmp_path / "store"
    entry = _warm(model, policy, store)
    inode = entry.stat().st_ino
    total = sum(p.stat().st_size for p in model.iterdir() if p.name != "model.sig")
    with open_verified(model, policy, store=store, use_cache=False) as cold:
        assert cold.copy.hashed_bytes == total
        assert cold.copy.cached_files == 0
    assert entry.stat().st_ino == inode


@pytest.mark.parametrize("where", [None, 5, CHUNK + 7, 2 * CHUNK + 100])
def test_pipelined_verify_and_copy_of_a_large_file(tmp_path: Path, where: int | None) -> None:
    """Past two chunks the hashing runs in a second thread: the digests are still those of
    every byte, sharded too, and a difference anywhere (first, middle, last partial chunk) is
    found."""
    import hashlib

    from glassbox.digest import HashMethod
    from glassbox.trust.memory import ShardHasher

    data = os.urandom(2 * CHUNK + 123)
    src = tmp_path / "src"
    src.write_bytes(data)
    other = bytearray(data)
    if where is not None:
        other[where] ^= 1
    (tmp_path / "store").write_bytes(bytes(other))
    sharded = HashMethod(shard_size=1 << 20)
    reference = ShardHasher(sharded)
    reference.feed(memoryview(data))
    a = os.open(tmp_path / "store", os.O_RDONLY)
    b = os.open(src, os.O_RDONLY)
    try:
        got = store_module._verify_pair(a, b, len(data), HashMethod())
        assert got == (None if where is not None else (hashlib.sha256(data).digest(),))
        assert store_module._hash_fd(b, len(data), sharded) == reference.finish()
        out = os.open(tmp_path / "copy", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            copied = store_module._copy_and_hash(b, out, len(data), HashMethod())
        finally:
            os.close(out)
    finally:
        os.close(a)
        os.close(b)
    assert copied == (hashlib.sha256(data).digest(),)
    assert (tmp_path / "copy").read_bytes() == data


def test_symlink_in_the_store_is_refused(model: Path, policy: Path, tmp_path: Path) -> None:
    """A symbolic link where a store file belongs is refused, never followed."""
    store = tmp_path / "store"
    entry = _warm(model, policy, store)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(_evil_bytes(model / "model.safetensors"))
    entry.unlink()
    entry.symlink_to(evil)
    with pytest.raises(StoreTampered, match="symbolic link"):
        load_pretrained(model, policy, store=store)


def test_symlinked_tree_is_refused(model: Path, policy: Path, tmp_path: Path) -> None:
    """The release's whole tree replaced by a link to a look-alike directory: refused."""
    store = tmp_path / "store"
    entry = _warm(model, policy, store)
    tree = entry.parent
    elsewhere = tmp_path / "elsewhere"
    tree.rename(elsewhere)
    tree.symlink_to(elsewhere)
    with pytest.raises(StoreTampered, match="symbolic link"):
        load_pretrained(model, policy, store=store)


def test_store_root_must_be_private_and_real(model: Path, policy: Path, tmp_path: Path) -> None:
    real = tmp_path / "real-store"
    real.mkdir(mode=0o700)
    link = tmp_path / "linked-store"
    link.symlink_to(real)
    with pytest.raises(InputError, match="not a directory"):
        load_pretrained(model, policy, store=link)
    real.chmod(0o755)
    with pytest.raises(InputError, match="open to other users"):
        load_pretrained(model, policy, store=real)


def test_store_off_uses_private_memory(
    model: Path, policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glassbox.trust.loaders import is_weights_file

    monkeypatch.setenv(store_module.STORE_ENV, "off")
    with open_verified(model, policy, in_memory=is_weights_file) as verified:
        assert set(verified.copy.buffers) == {"model.safetensors"}
        assert not verified.copy.persistent
    with open_verified(model, policy, in_memory=is_weights_file, store=None) as verified:
        assert verified.copy.buffers
    assert load_pretrained(model, policy).config.hidden_size == 16


def test_single_file_loads_from_the_store(tmp_path: Path, keys: Keys) -> None:
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    save_file(tensors, tmp_path / "src.safetensors")
    path = release(tmp_path / "src.safetensors", tmp_path / "w.safetensors", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub)
    store = tmp_path / "store"
    assert torch.equal(load_safetensors(path, policy, store=store)["w"], tensors["w"])
    with open_verified(path, policy, store=store) as verified:
        assert verified.path.parent.parent == store / "trees"
        assert verified.path.name == "w.safetensors"
        assert verified.copy.hashed_bytes == 0
    path.write_bytes(b"\0" * path.stat().st_size)
    with pytest.raises(ChangedFiles):
        load_safetensors(path, policy, store=store)


def _acme(keys: Keys) -> tuple[Path, Path]:
    return keys.acme_key, keys.acme_pub


def test_swap_between_listing_and_the_store_copy_is_caught(
    model: Path, policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's file is renamed over between the listing and the copy into the store: the
    copy is made from the descriptor of the file that was listed, or refused."""
    save_file({"x": torch.zeros(2)}, tmp_path / "evil.safetensors")
    real = store_module._write_entry

    def swap_then_write(f, dest, method, want, out):  # type: ignore[no-untyped-def]
        if f.name == "model.safetensors":
            os.replace(tmp_path / "evil.safetensors", model / "model.safetensors")
        return real(f, dest, method, want, out)

    monkeypatch.setattr(store_module, "_write_entry", swap_then_write)
    with pytest.raises(InputError, match="was replaced while the model was being verified"):
        load_pretrained(model, policy, store=tmp_path / "store")
    assert not list((tmp_path / "store").rglob("model.safetensors"))


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_weights_are_mapped_from_the_store_not_the_users_file(
    model: Path, policy: Path, tmp_path: Path
) -> None:
    """The store path keeps from_pretrained's lazy mapping, of the store's file: the loaded
    parameters live in a mapping of it, none in one of the user's file."""
    store = tmp_path / "store"
    loaded = load_pretrained(model, policy, store=store)

    def mapped(path: Path) -> list[tuple[int, int]]:
        with open("/proc/self/maps") as maps:
            return [
                (int(lo, 16), int(hi, 16))
                for line in maps
                if line.rstrip().endswith(str(path))
                for lo, hi in [line.split()[0].split("-")]
            ]

    (entry,) = (store / "trees").rglob("model.safetensors")
    in_store = mapped(entry)
    in_users = mapped((model / "model.safetensors").resolve())
    params = list(loaded.parameters())
    assert in_store and not in_users
    assert all(any(lo <= p.data_ptr() < hi for lo, hi in in_store) for p in params)
