"""Verify, then load: every loader runs the gate, and loads exactly the bytes it verified."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import glassbox
from glassbox.errors import InputError
from glassbox.sign import load_private_key, sign_model
from glassbox.trust import copy as copy_module
from glassbox.trust.errors import (
    ChangedFiles,
    PickleRefused,
    RemoteCodeRefused,
    ScanFindings,
    TrustRefused,
    UnknownPublisher,
)
from glassbox.trust.loaders import (
    load_gguf,
    load_pretrained,
    load_safetensors,
    load_torch,
    open_verified,
)
from glassbox.trust.unpickler import RestrictedUnpickler
from tests.trust.conftest import Keys, log_release, release, write_policy
from tests.trust.hfcache import add_to_hf_cache, save_tiny_model
from tests.trust.test_gate import malicious_torch_zip


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_load_pretrained_plain_directory(model: Path, policy: Path, tiny_source: Path) -> None:
    from transformers import BertModel

    loaded = load_pretrained(model, policy)
    expected = state(BertModel.from_pretrained(tiny_source, local_files_only=True))
    got = state(loaded)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in got)


def test_load_pretrained_cache_snapshot(
    tmp_path: Path, tiny_source: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = add_to_hf_cache(tmp_path / "hub", "acme/tiny-bert", tiny_source)
    monkeypatch.setenv("HF_HUB_CACHE", str(repo.cache_dir))
    signature = tmp_path / "tiny-bert.sig"
    sign_model(repo.snapshot, load_private_key(keys.acme_key), signature_path=signature)
    proof = log_release(repo.snapshot, signature, keys.acme_pub)
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub, models='["acme/*"]')
    loaded = load_pretrained("hf:acme/tiny-bert@main", policy, signature=signature, proofs=[proof])
    assert loaded.config.hidden_size == 16
    with pytest.raises(UnknownPublisher):
        load_pretrained("hf:acme/tiny-bert", policy, signature=signature, name="mallory/x")


def test_top_level_names_are_lazy() -> None:
    assert glassbox.load_pretrained is load_pretrained
    assert glassbox.load_safetensors is load_safetensors


def test_unknown_publisher_refuses_before_copying(
    tmp_path: Path, tiny_source: Path, keys: Keys
) -> None:
    model = release(tiny_source, tmp_path / "m", keys.other_key, keys.other_pub)
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub)
    with pytest.raises(UnknownPublisher) as caught:
        load_pretrained(model, policy)
    assert caught.value.reasons[0].link == "publisher"
    assert caught.value.exit_code == 1


def test_changed_file_is_refused_and_named(model: Path, policy: Path) -> None:
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x40
    weights.write_bytes(bytes(data))
    with pytest.raises(ChangedFiles, match=r"model\.safetensors differs"):
        load_pretrained(model, policy)


def test_added_file_is_refused(model: Path, policy: Path) -> None:
    (model / "extra.py").write_text("print('hi')\n")
    with pytest.raises(ChangedFiles, match=r"not covered by the signature: extra\.py"):
        load_pretrained(model, policy)


def test_missing_log_proof_refuses_load(model: Path, policy: Path) -> None:
    from glassbox.trust.errors import LogProofMissing

    model.with_name(model.name + ".proof.json").unlink()
    with pytest.raises(LogProofMissing, match="log: no log proof holds"):
        load_pretrained(model, policy)


def test_swap_after_verification_cannot_be_loaded(
    model: Path, policy: Path, tmp_path: Path
) -> None:
    """The gate passes, then the weights on disk are replaced before the load: the load
    reads the verified private copy, so it gets the signed tensors, not the swapped ones."""
    signed = load_file(model / "model.safetensors")
    evil = {k: torch.full_like(v, 7.0) for k, v in signed.items()}
    save_file(evil, tmp_path / "evil.safetensors")
    with open_verified(model, policy) as verified:
        os.replace(tmp_path / "evil.safetensors", model / "model.safetensors")  # the swap
        from transformers import BertModel

        loaded = BertModel.from_pretrained(str(verified.path), local_files_only=True)
    for name, tensor in loaded.state_dict().items():
        if name in signed:
            assert torch.equal(tensor, signed[name]), name
    # And the swapped file itself is refused by the next load.
    with pytest.raises(ChangedFiles, match=r"model\.safetensors"):
        load_pretrained(model, policy)


def test_swap_between_listing_and_copy_is_caught(
    model: Path, policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A swap in the window between listing the files and opening them for the copy."""
    save_file({"x": torch.zeros(2)}, tmp_path / "evil.safetensors")
    real = copy_module._copy_one

    def swap_then_copy(f, dest, method, *, hash_it):  # type: ignore[no-untyped-def]
        if f.name == "model.safetensors":
            os.replace(tmp_path / "evil.safetensors", model / "model.safetensors")
        return real(f, dest, method, hash_it=hash_it)

    monkeypatch.setattr(copy_module, "_copy_one", swap_then_copy)
    with (
        pytest.raises(InputError, match="was replaced while the model was being verified"),
        open_verified(model, policy, store=False),
    ):
        pass


def test_swap_between_listing_and_read_is_caught(
    model: Path, policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same window on the in-memory path (weights read, not copied)."""
    save_file({"x": torch.zeros(2)}, tmp_path / "evil.safetensors")
    real = copy_module._read_one

    def swap_then_read(f, method, *, hash_it):  # type: ignore[no-untyped-def]
        if f.name == "model.safetensors":
            os.replace(tmp_path / "evil.safetensors", model / "model.safetensors")
        return real(f, method, hash_it=hash_it)

    monkeypatch.setattr(copy_module, "_read_one", swap_then_read)
    with pytest.raises(InputError, match="was replaced while the model was being verified"):
        load_pretrained(model, policy, store=False)


def _evil_bytes(weights: Path) -> bytes:
    """Other weights of the same names, shapes and byte size (an in-place write's payload)."""
    raw = weights.read_bytes()
    start = 8 + int.from_bytes(raw[:8], "little")
    evil = raw[:start] + b"\x3f" * (len(raw) - start)  # same header, every float 0.747
    assert evil != raw
    return evil


@pytest.mark.parametrize("how", ["rename", "in-place"])
def test_in_memory_weights_ignore_changes_after_the_gate(
    model: Path, policy: Path, tmp_path: Path, how: str
) -> None:
    """Weights read into memory by the gate are what loads, whatever happens to the file
    between the gate and the load (a rename over it, a write in place)."""
    from glassbox.trust.loaders import is_weights_file

    weights = model / "model.safetensors"
    # load_file maps the file lazily: without the clone, "signed" would change with the file.
    signed = {k: v.clone() for k, v in load_file(weights).items()}
    evil = _evil_bytes(weights)
    with open_verified(model, policy, in_memory=is_weights_file, store=False) as verified:
        assert set(verified.copy.buffers) == {"model.safetensors"}
        assert not (verified.path / "model.safetensors").exists()  # nothing copied to disk
        if how == "rename":
            (tmp_path / "evil").write_bytes(evil)
            os.replace(tmp_path / "evil", weights)
        else:
            with open(weights, "r+b") as handle:
                handle.write(evil)
        got = verified.tensors("model.safetensors")
    assert set(got) == set(signed)
    assert all(torch.equal(got[k], v) for k, v in signed.items())
    with pytest.raises(ChangedFiles, match=r"model\.safetensors differs"):
        load_pretrained(model, policy)


def test_loaded_model_is_not_backed_by_the_file(model: Path, policy: Path) -> None:
    """The in-memory path: the weights are not mapped from the model's file, so writing it
    after the load changes nothing in the model (a lazily mapped load would change)."""
    weights = model / "model.safetensors"
    loaded = load_pretrained(model, policy, store=False)
    before = state(loaded)
    with open("/proc/self/maps") as maps:
        file_maps = [
            tuple(int(x, 16) for x in line.split()[0].split("-"))
            for line in maps
            if line.rstrip().endswith(str(weights.resolve()))
        ]
    for param in loaded.parameters():
        assert not any(lo <= param.data_ptr() < hi for lo, hi in file_maps)
    with open(weights, "r+b") as handle:
        handle.write(_evil_bytes(weights))
    after = loaded.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("how", ["rename", "in-place"])
def test_change_during_the_read_is_refused(
    model: Path,
    policy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    warm: bool,
    how: str,
) -> None:
    """The file changes while the gate reads it into memory (after the last byte landed,
    before the descriptor's identity is checked again): refused, cold or warm. A rename over
    the file unlinks the inode being read, which moves its ctime too."""
    import glassbox.digest.cache as digest_cache
    from glassbox.trust.memory import read_into_memory

    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 0)
    weights = model / "model.safetensors"
    if warm:
        with open_verified(model, policy, store=False):  # fills the digest cache
            pass
    evil = _evil_bytes(weights)

    def read_then_change(fd, size, method):  # type: ignore[no-untyped-def]
        got = read_into_memory(fd, size, method)
        if size == weights.stat().st_size:
            if how == "rename":
                (tmp_path / "evil").write_bytes(evil)
                os.replace(tmp_path / "evil", weights)
            else:
                with open(weights, "r+b") as handle:
                    handle.write(evil)
        return got

    monkeypatch.setattr(copy_module, "read_into_memory", read_then_change)
    with pytest.raises(ChangedFiles, match=r"model\.safetensors was written to while being read"):
        load_pretrained(model, policy, use_cache=warm, store=False)


def test_sharded_safetensors_load_from_memory(
    tmp_path: Path, tiny_source: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards named by the index are read into memory; nothing of them is copied to disk."""
    from transformers import BertModel

    src = tmp_path / "src"
    reference = BertModel.from_pretrained(tiny_source)
    reference.save_pretrained(src, max_shard_size="5KB")
    shards = sorted(p.name for p in src.glob("model-*.safetensors"))
    assert len(shards) > 1 and (src / "model.safetensors.index.json").is_file()
    model = release(src, tmp_path / "sharded", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub)
    real = copy_module._copy_one

    def no_weights_on_disk(f, dest, method, *, hash_it):  # type: ignore[no-untyped-def]
        assert not f.name.endswith(".safetensors"), f.name
        return real(f, dest, method, hash_it=hash_it)

    monkeypatch.setattr(copy_module, "_copy_one", no_weights_on_disk)
    loaded = load_pretrained(model, policy, model_class=BertModel, store=False)
    expected = reference.state_dict()
    got = loaded.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], v) for k, v in expected.items())
    # The store (the default) loads the same shards, mapped from its tree.
    loaded = load_pretrained(model, policy, model_class=BertModel)
    expected = reference.state_dict()
    got = loaded.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], v) for k, v in expected.items())


def test_in_memory_load_matches_from_pretrained_for_a_tied_generative_model(
    tmp_path: Path, keys: Keys
) -> None:
    """A causal LM whose checkpoint leaves out the tied head and ships a generation config:
    the in-memory load ties the head and reads the generation config as a path load does;
    dtype= passes through."""
    from transformers import (
        AutoModelForCausalLM,
        GenerationConfig,
        GPT2Config,
        GPT2LMHeadModel,
    )

    torch.manual_seed(0)
    src = tmp_path / "src"
    config = GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=16,
        vocab_size=50,
        n_positions=32,
        bos_token_id=0,
        eos_token_id=0,
    )
    reference = GPT2LMHeadModel(config)
    reference.generation_config = GenerationConfig(max_new_tokens=7, do_sample=False)
    reference.save_pretrained(src)
    assert "lm_head.weight" not in load_file(src / "model.safetensors")
    model = release(src, tmp_path / "gpt", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub)
    plain = AutoModelForCausalLM.from_pretrained(src, local_files_only=True)
    loaded = load_pretrained(model, policy, model_class=AutoModelForCausalLM)
    assert type(loaded) is type(plain)
    got, expected = loaded.state_dict(), plain.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], v) for k, v in expected.items())
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()
    assert loaded.generation_config.max_new_tokens == 7
    assert not loaded.training
    half = load_pretrained(model, policy, model_class=AutoModelForCausalLM, dtype=torch.float16)
    assert half.transformer.wte.weight.dtype == torch.float16


def test_other_options_take_the_copy_path(model: Path, policy: Path) -> None:
    """An option the in-memory path does not pass through still works (copy on disk)."""
    assert load_pretrained(model, policy, output_attentions=True).config.output_attentions


def test_in_place_rewrite_with_old_mtime_is_caught_warm(
    model: Path, policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm loads trust the digest cache only for an unchanged (inode, size, mtime, ctime)."""
    import glassbox.digest.cache as digest_cache

    # Files made a moment ago are "racily clean" for 2 s; this test has no 2 s to wait.
    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 0)
    weights = model / "model.safetensors"
    with open_verified(model, policy, use_cache=False) as cold:
        assert cold.copy.cached_files == 0
        assert cold.copy.hashed_bytes >= weights.stat().st_size
    with open_verified(model, policy) as warm:
        assert warm.copy.hashed_bytes == 0  # every file vouched for by the cache
        assert warm.copy.cached_files == len(warm.copy.files)
        assert (warm.path / "model.safetensors").read_bytes() == weights.read_bytes()
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    with open(weights, "r+b") as handle:  # same inode, same size, old mtime put back
        handle.write(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ChangedFiles, match=r"model\.safetensors differs"):
        load_pretrained(model, policy)


def test_load_safetensors_single_file(tmp_path: Path, keys: Keys) -> None:
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(3)}
    save_file(tensors, tmp_path / "src.safetensors")
    path = release(tmp_path / "src.safetensors", tmp_path / "w.safetensors", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub)
    loaded = load_safetensors(path, policy)
    assert set(loaded) == {"w", "b"} and torch.equal(loaded["w"], tensors["w"])


def test_load_torch_needs_pickles_allowed(tmp_path: Path, keys: Keys) -> None:
    state_dict = {"w": torch.arange(4, dtype=torch.float32), "n": torch.tensor([1, 2])}
    torch.save(state_dict, tmp_path / "src.pt")
    path = release(tmp_path / "src.pt", tmp_path / "w.pt", *_acme(keys))
    strict = write_policy(tmp_path / "strict.toml", keys.acme_pub)
    with pytest.raises(PickleRefused, match=r"\[pickle\] allow = false"):
        load_torch(path, strict)
    allowing = write_policy(
        tmp_path / "allow.toml", keys.acme_pub, extra="[pickle]\nallow = true\n"
    )
    loaded = load_torch(path, allowing)
    assert torch.equal(loaded["w"], state_dict["w"]) and torch.equal(loaded["n"], state_dict["n"])


def test_pickle_payload_is_refused_by_the_gate(tmp_path: Path, keys: Keys) -> None:
    marker = Path("/tmp/glassbox-pwned")
    marker.unlink(missing_ok=True)
    (tmp_path / "src.bin").write_bytes(malicious_torch_zip())
    path = release(tmp_path / "src.bin", tmp_path / "pytorch_model.bin", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub, extra="[pickle]\nallow = true\n")
    with pytest.raises(ScanFindings) as caught:
        load_torch(path, policy)
    assert any("GBX-PKL" in r.message for r in caught.value.reasons)
    assert not marker.exists()


def test_restricted_unpickler_never_calls_what_is_not_allowed(tmp_path: Path) -> None:
    """Even past a scanner, the unpickler itself refuses before importing the global."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    import pickle

    data = pickle.dumps(Payload(), protocol=2)
    with pytest.raises(PickleRefused, match=r"posix\.system|os\.system"):
        RestrictedUnpickler(io.BytesIO(data), where="x.pkl").load()
    assert not marker.exists()
    ok = pickle.dumps({"a": [1, 2.5, "s"]}, protocol=4)
    assert RestrictedUnpickler(io.BytesIO(ok), where="ok.pkl").load() == {"a": [1, 2.5, "s"]}


def test_torch_loader_rejects_legacy_and_missing_storages(tmp_path: Path) -> None:
    from glassbox.trust.unpickler import load_torch_file

    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(InputError, match="legacy torch format"):
        load_torch_file(legacy, "legacy.pt")
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    broken = tmp_path / "broken.pt"
    with zipfile.ZipFile(tmp_path / "ok.pt") as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            if "/data/" not in info.filename:
                dst.writestr(info, src.read(info))
    with pytest.raises(InputError, match="missing from the zip"):
        load_torch_file(broken, "broken.pt")


def test_load_gguf(tmp_path: Path, keys: Keys) -> None:
    import numpy as np
    from gguf import GGUFWriter

    src = tmp_path / "src.gguf"
    writer = GGUFWriter(str(src), "llama")
    writer.add_name("tiny-llama")
    writer.add_tensor("tok_embd", np.arange(8, dtype=np.float32).reshape(2, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    path = release(src, tmp_path / "tiny.gguf", *_acme(keys))
    reader = load_gguf(path, write_policy(tmp_path / "p.toml", keys.acme_pub))
    field = reader.get_field("general.name")
    assert field is not None and bytes(field.parts[-1]).decode() == "tiny-llama"
    (tensor,) = reader.tensors
    assert tensor.name == "tok_embd"
    assert np.array_equal(np.asarray(tensor.data).reshape(-1), np.arange(8, dtype=np.float32))


REVIEWED = """[[code]]
path = "modeling_tiny.py"
reason = "reviewed: a BertModel subclass, nothing else"
"""


def remote_code_model(dest: Path, tiny_source: Path) -> Path:
    shutil.copytree(tiny_source, dest)
    config = json.loads((dest / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_tiny.TinyModel"}
    (dest / "config.json").write_text(json.dumps(config))
    (dest / "modeling_tiny.py").write_text(
        "from transformers import BertModel\n\nclass TinyModel(BertModel):\n    pass\n"
    )
    return dest


def test_remote_code_not_covered_is_refused(tmp_path: Path, tiny_source: Path, keys: Keys) -> None:
    src = remote_code_model(tmp_path / "src", tiny_source)
    model = release(src, tmp_path / "m", *_acme(keys), ignore=("modeling_tiny.py",))
    # Reviewed and listed, but left out of the signature: the scan's remote-code finding
    # stands (and the loader would refuse the unsigned code anyway).
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub, extra=REVIEWED)
    with pytest.raises(TrustRefused, match=r"GBX-CODE-001.*modeling_tiny\.py"):
        load_pretrained(model, policy, trust_remote_code=True)


def test_remote_code_module_missing_from_signature(
    tmp_path: Path, tiny_source: Path, keys: Keys
) -> None:
    src = remote_code_model(tmp_path / "src", tiny_source)
    (src / "modeling_tiny.py").unlink()
    model = release(src, tmp_path / "m", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub, extra=REVIEWED)
    with pytest.raises(TrustRefused, match=r"modeling_tiny\.py"):
        load_pretrained(model, policy, trust_remote_code=True)


def test_remote_code_signed_and_scanned_loads(
    tmp_path: Path, tiny_source: Path, keys: Keys
) -> None:
    src = remote_code_model(tmp_path / "src", tiny_source)
    model = release(src, tmp_path / "m", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub, extra=REVIEWED)
    loaded = load_pretrained(model, policy, trust_remote_code=True)
    assert type(loaded).__name__ == "TinyModel"


def test_remote_code_must_be_listed_in_the_policy(
    tmp_path: Path, tiny_source: Path, keys: Keys
) -> None:
    """Signed is not enough: code runs only when the user's policy lists it as reviewed."""
    src = remote_code_model(tmp_path / "src", tiny_source)
    model = release(src, tmp_path / "m", *_acme(keys))
    unlisted = write_policy(tmp_path / "p.toml", keys.acme_pub)
    with pytest.raises(TrustRefused, match=r"GBX-CODE-001.*modeling_tiny\.py"):
        load_pretrained(model, unlisted, trust_remote_code=True)
    other_version = write_policy(
        tmp_path / "q.toml", keys.acme_pub, extra=REVIEWED + f'sha256 = "{"0" * 64}"\n'
    )
    with pytest.raises(TrustRefused, match=r"GBX-CODE-001"):
        load_pretrained(model, other_version, trust_remote_code=True)
    digest = hashlib.sha256((model / "modeling_tiny.py").read_bytes()).hexdigest()
    this_version = write_policy(
        tmp_path / "r.toml", keys.acme_pub, extra=REVIEWED + f'sha256 = "{digest}"\n'
    )
    assert type(load_pretrained(model, this_version, trust_remote_code=True)).__name__ == (
        "TinyModel"
    )


def test_refusal_lists_every_reason(tmp_path: Path, tiny_source: Path, keys: Keys) -> None:
    model = release(tiny_source, tmp_path / "m", *_acme(keys))
    (model / "config.json").write_text("{}")
    model.with_name("m.proof.json").unlink()
    with pytest.raises(TrustRefused) as caught:
        load_pretrained(model, write_policy(tmp_path / "p.toml", keys.acme_pub))
    assert isinstance(caught.value, ChangedFiles)
    assert [r.link for r in caught.value.reasons] == ["files", "log"]


def test_tiny_model_helper_is_deterministic(tmp_path: Path) -> None:
    a = save_tiny_model(tmp_path / "a", seed=3)
    b = save_tiny_model(tmp_path / "b", seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def _acme(keys: Keys) -> tuple[Path, Path]:
    return keys.acme_key, keys.acme_pub


def test_scan_results_are_reused_only_for_the_same_bytes(
    model: Path, policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm loads reuse scan results by (name, signed SHA-256, scanner fingerprint)."""
    import glassbox.scan.scanner as scanner

    with open_verified(model, policy) as first:
        assert first.result.scan is not None
    calls: list[str] = []
    original = scanner.scan_file

    def counting(path, display, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(display)
        return original(path, display, *args, **kwargs)

    monkeypatch.setattr(scanner, "scan_file", counting)
    with open_verified(model, policy):
        pass
    assert calls == []  # every file's result came from the cache
    with open_verified(model, policy, use_cache=False):
        pass
    assert "model.safetensors" in calls
    # Changed bytes are refused before any scan result could be reused for them.
    (model / "config.json").write_text("{}")
    with pytest.raises(ChangedFiles):
        load_pretrained(model, policy)


def test_pickle_beside_safetensors_is_left_out(
    tmp_path: Path, tiny_source: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository shipping both formats loads its safetensors when pickles are refused;
    alone, the pickle weights are refused."""
    from transformers import BertModel

    src = tmp_path / "src"
    shutil.copytree(tiny_source, src)
    weights = BertModel.from_pretrained(tiny_source).state_dict()
    torch.save(weights, src / "pytorch_model.bin")
    model = release(src, tmp_path / "m", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub)
    assert load_pretrained(model, policy).config.hidden_size == 16
    (src / "model.safetensors").unlink()
    only_bin = release(src, tmp_path / "only-bin", *_acme(keys))
    with pytest.raises(PickleRefused, match=r"pytorch_model\.bin"):
        load_pretrained(only_bin, policy)
    # Allowed by the policy, pickle weights load through the allowlist unpickler.
    allowing = write_policy(tmp_path / "a.toml", keys.acme_pub, extra="[pickle]\nallow = true\n")

    def no_torch_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load must not read a model file")

    monkeypatch.setattr(torch, "load", no_torch_load)
    loaded = load_pretrained(only_bin, allowing)
    got = loaded.state_dict()
    assert all(torch.equal(got[k], v) for k, v in weights.items() if k in got)


def test_load_safetensors_from_a_cache_snapshot_file(
    tmp_path: Path, tiny_source: Path, keys: Keys
) -> None:
    """One file of a snapshot (a link into blobs/) loads with its signature beside it."""
    repo = add_to_hf_cache(tmp_path / "hub", "acme/tiny-bert", tiny_source)
    weights = repo.snapshot / "model.safetensors"
    assert weights.is_symlink()
    signature = tmp_path / "weights.sig"
    sign_model(weights, load_private_key(keys.acme_key), signature_path=signature)
    proof = log_release(tmp_path / "weights", signature, keys.acme_pub)
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub)
    loaded = load_safetensors(weights, policy, signature=signature, proofs=[proof])
    expected = load_file(tiny_source / "model.safetensors")
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_unpickle_to_data_or_one_error(data: bytes) -> None:
    """Hostile streams: the allowlist unpickler returns plain data or raises a Glassbox error."""
    from glassbox.errors import GlassboxError
    from glassbox.trust.unpickler import unpickle_restricted

    try:
        unpickle_restricted(data, "fuzz.pkl")
    except GlassboxError as exc:
        assert "\n" not in str(exc)


PROTO_OPS = [
    b"cos\nsystem\n",
    b"cbuiltins\neval\n",
    b"ccollections\nOrderedDict\n",
    b"cbuiltins\nlist\n",
    b"(",
    b")",
    b"t",
    b"R",
    b"N",
    b"K\x01",
    b"X\x02\x00\x00\x00ab",
    b"]",
    b"}",
    b"a",
    b"s",
    b"q\x00",
    b"h\x00",
    b"\x85",
    b"\x86",
    b"b",
    b"0",
]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(PROTO_OPS), min_size=1, max_size=30))
def test_opcode_soup_never_escapes(ops: list[bytes]) -> None:
    """Streams built from real opcodes (GLOBAL of dangerous names included) never run them."""
    from glassbox.errors import GlassboxError
    from glassbox.trust.unpickler import unpickle_restricted

    marker = Path("/tmp/glassbox-soup-ran")
    with contextlib.suppress(GlassboxError):
        unpickle_restricted(b"\x80\x02" + b"".join(ops) + b".", "soup.pkl")
    assert not marker.exists()


def test_remote_code_asked_for_a_model_that_names_none(
    tmp_path: Path, tiny_source: Path, keys: Keys
) -> None:
    model = release(tiny_source, tmp_path / "m", *_acme(keys))
    policy = write_policy(tmp_path / "p.toml", keys.acme_pub)
    with pytest.raises(RemoteCodeRefused, match=r"config\.json names no code"):
        load_pretrained(model, policy, trust_remote_code=True)
