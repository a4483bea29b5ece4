"""Hugging Face cache snapshots: links into the cached repository are storage, not content.

The caches are laid out as ``huggingface_hub`` lays them out (``tests/trust/hfcache.py``), and
``huggingface_hub.scan_cache_dir`` reads them back, so these tests run on the real shape.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from huggingface_hub import scan_cache_dir

import glassbox.digest.cache as cache_mod
from glassbox.digest import HashMethod, hash_model
from glassbox.digest.walk import hf_snapshot_repo, list_model_files
from glassbox.errors import InputError
from tests.trust.hfcache import CachedRepo, add_to_hf_cache


def make_source(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(os.urandom(40_000))
    (root / "config.json").write_bytes(b'{"hidden_size": 16}')
    (root / "sub" / "tokenizer.json").write_bytes(b'{"vocab": {}}')
    return root


@pytest.fixture
def cached(tmp_path: Path) -> CachedRepo:
    return add_to_hf_cache(tmp_path / "hub", "org/tiny", make_source(tmp_path / "src"))


def test_layout_is_what_huggingface_hub_reads(cached: CachedRepo) -> None:
    info = scan_cache_dir(cached.cache_dir)
    assert not info.warnings
    (repo,) = info.repos
    (revision,) = repo.revisions
    assert repo.repo_id == "org/tiny"
    assert revision.commit_hash == cached.commit
    assert revision.refs == frozenset({"main"})
    assert {f.file_name for f in revision.files} == {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
    }


def test_snapshot_hashes_like_a_plain_copy(cached: CachedRepo, tmp_path: Path) -> None:
    snap = hash_model(cached.snapshot)
    plain = hash_model(tmp_path / "src")
    assert snap.items == plain.items
    assert snap.root_digest == plain.root_digest
    assert [i.name for i in snap.items] == [
        "config.json",
        "model.safetensors",
        "sub/tokenizer.json",
    ]
    # Storage links are followed whatever allow_symlinks says; the recorded method is unchanged.
    assert snap.method == HashMethod()


def test_shared_blob_store_is_followed(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    repo = add_to_hf_cache(tmp_path / "hub", "org/tiny", src, shared_store=True)
    blob = repo.repo_dir / "blobs" / os.readlink(repo.snapshot / "model.safetensors").split("/")[-1]
    assert blob.is_symlink()  # repo blob -> <cache>/blobs/<hh>/<hash>
    assert not scan_cache_dir(repo.cache_dir).warnings
    assert hash_model(repo.snapshot).root_digest == hash_model(src).root_digest


def test_shared_store_needs_its_marker(tmp_path: Path) -> None:
    repo = add_to_hf_cache(
        tmp_path / "hub", "org/tiny", make_source(tmp_path / "src"), shared_store=True
    )
    (repo.cache_dir / "blobs" / ".huggingface-shared-blobs").unlink()
    with pytest.raises(InputError, match="points at another symlink"):
        hash_model(repo.snapshot)


def test_detects_snapshot_and_subfolder(cached: CachedRepo, tmp_path: Path) -> None:
    assert hf_snapshot_repo(cached.snapshot) == cached.repo_dir.resolve()
    assert hf_snapshot_repo(cached.snapshot / "sub") == cached.repo_dir.resolve()
    assert hf_snapshot_repo(tmp_path / "src") is None
    # A link to a snapshot (how users often name one) is judged by where it really is.
    alias = tmp_path / "alias"
    alias.symlink_to(cached.snapshot)
    assert hash_model(alias).root_digest == hash_model(tmp_path / "src").root_digest
    # A subfolder of a snapshot (a model stored in a repository's folder) works too.
    assert [i.name for i in hash_model(cached.snapshot / "sub").items] == ["tokenizer.json"]


def test_explicit_link_root(cached: CachedRepo) -> None:
    files = list_model_files(cached.snapshot, (), link_root=cached.repo_dir)
    assert sorted(f.name for f in files) == [
        "config.json",
        "model.safetensors",
        "sub/tokenizer.json",
    ]
    with pytest.raises(InputError, match="not inside"):
        list_model_files(cached.snapshot, (), link_root=cached.cache_dir / "elsewhere")


# --- hostile layouts: every one is refused with one line naming the link --------------------


def test_link_escaping_the_repository(cached: CachedRepo, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of the model")
    (cached.snapshot / "evil.json").symlink_to(secret)
    with pytest.raises(InputError, match=r"evil\.json points outside the cached repository"):
        hash_model(cached.snapshot)


def test_link_into_another_cached_repository(cached: CachedRepo, tmp_path: Path) -> None:
    other_src = tmp_path / "other"
    other_src.mkdir()
    (other_src / "weights.bin").write_bytes(b"other repo")
    other = add_to_hf_cache(cached.cache_dir, "org/other", other_src)
    blob = other.repo_dir / "blobs" / os.listdir(other.repo_dir / "blobs")[0]
    (cached.snapshot / "borrowed.bin").symlink_to(os.path.relpath(blob, cached.snapshot))
    assert not scan_cache_dir(cached.cache_dir).warnings  # huggingface_hub does not mind...
    with pytest.raises(InputError, match="points outside the cached repository"):
        hash_model(cached.snapshot)  # ...but a digest must describe this repository only


def test_dangling_link(cached: CachedRepo) -> None:
    (cached.snapshot / "gone.bin").symlink_to("../../blobs/" + "0" * 64)
    with pytest.raises(InputError, match=r"gone\.bin is broken"):
        hash_model(cached.snapshot)


def test_link_loop(cached: CachedRepo) -> None:
    (cached.snapshot / "a").symlink_to("b")
    (cached.snapshot / "b").symlink_to("a")
    with pytest.raises(InputError, match="symlink loop"):
        hash_model(cached.snapshot)


def test_link_chain_inside_the_repository(cached: CachedRepo) -> None:
    (cached.snapshot / "again.json").symlink_to("config.json")
    with pytest.raises(InputError, match=r"again\.json points at another symlink"):
        hash_model(cached.snapshot)


def test_link_to_a_directory(cached: CachedRepo) -> None:
    (cached.snapshot / "dir").symlink_to("../../blobs")
    with pytest.raises(InputError, match="points at a directory"):
        hash_model(cached.snapshot)


def test_link_to_a_fifo(cached: CachedRepo) -> None:
    fifo = cached.repo_dir / "blobs" / "fifo"
    os.mkfifo(fifo)
    (cached.snapshot / "pipe.bin").symlink_to("../../blobs/fifo")
    with pytest.raises(InputError, match="not a regular file"):
        hash_model(cached.snapshot)  # and never hangs opening it


def test_link_through_a_linked_directory_leaving_the_repo(
    cached: CachedRepo, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x").write_text("outside")
    (cached.repo_dir / "blobs" / "door").symlink_to(outside)
    (cached.snapshot / "x.json").symlink_to("../../blobs/door/x")
    with pytest.raises(InputError, match="points outside the cached repository"):
        hash_model(cached.snapshot)


def test_plain_directory_rules_unchanged(tmp_path: Path) -> None:
    """Outside a cache the old rule holds: links refused unless allowed, never leaving."""
    model = make_source(tmp_path / "m")
    (model / "link.json").symlink_to("config.json")
    with pytest.raises(InputError, match="symlinks are refused unless allowed"):
        hash_model(model)
    assert "link.json" in {i.name for i in hash_model(model, HashMethod(allow_symlinks=True)).items}


# --- the digest cache keys a storage link on the blob it reaches ------------------------------


def test_cache_is_keyed_on_the_blob(
    cached: CachedRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_mod, "RACY_WINDOW_NS", 0)
    reads: list[str] = []
    import glassbox.digest.hashing as hashing_mod

    real = hashing_mod.hash_range

    def spy(path: str, *args: object, **kwargs: object) -> bytes:
        reads.append(os.path.basename(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("glassbox.digest.model.hash_range", spy)
    first = hash_model(cached.snapshot)
    assert len(reads) == 3
    reads.clear()
    assert hash_model(cached.snapshot) == first
    assert reads == []  # warm: the blobs are unchanged
    # Re-point a link at a different blob: the old digest must not be reused for it.
    (cached.repo_dir / "blobs" / "newblob").write_bytes(b'{"hidden_size": 32}')
    link = cached.snapshot / "config.json"
    link.unlink()
    link.symlink_to("../../blobs/newblob")
    changed = hash_model(cached.snapshot)
    assert reads == ["config.json"]
    assert changed.file_digests()["config.json"] != first.file_digests()["config.json"]
