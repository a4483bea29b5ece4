"""Training-state digests and checkpoints: canonical, complete, and tamper-evident."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.errors import InputError, VerificationError
from glassbox.pipeline.trail import (
    DataIndexDigest,
    StateCapture,
    Trail,
    TrailEntry,
    TrainingState,
    capture_state,
    data_digest,
    data_digest_tensors,
    restore_state,
    tensors_digest,
    weights_digest,
)


def make(
    seed: int = 0,
) -> tuple[torch.nn.Module, torch.optim.Optimizer, dict[str, torch.Generator]]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss = model(torch.randn(5, 4)).sum()
    loss.backward()
    opt.step()
    return model, opt, {"main": torch.Generator().manual_seed(seed)}


def test_digest_is_stable_and_roundtrips_through_checkpoint(tmp_path: Path) -> None:
    model, opt, gens = make()
    state = capture_state(model, opt, gens, step=7)
    assert state.digest() == capture_state(model, opt, gens, step=7).digest()
    path = tmp_path / "c.safetensors"
    state.save(path)
    loaded = TrainingState.load(path)
    assert loaded.digest() == state.digest()
    assert loaded.meta["step"] == 7


def test_restore_reproduces_the_state_and_the_next_step() -> None:
    model, opt, gens = make(1)
    state = capture_state(model, opt, gens, step=3)
    expected_next = torch.randn(3)
    # A different model/optimizer/RNG history, then restore: everything must line up again.
    other, other_opt, other_gens = make(2)
    torch.randn(10)
    random.random()
    np.random.rand()
    assert restore_state(state, other, other_opt, other_gens) == 3
    assert capture_state(other, other_opt, other_gens, step=3).digest() == state.digest()
    assert torch.equal(torch.randn(3), expected_next)


@pytest.mark.parametrize(
    "part", ["weights", "optimizer", "torch_rng", "generator", "python_rng", "numpy_rng", "step"]
)
def test_every_part_of_the_state_is_in_the_digest(part: str) -> None:
    model, opt, gens = make()
    before = capture_state(model, opt, gens, step=1).digest()
    step = 1
    if part == "weights":
        with torch.no_grad():
            next(model.parameters())[0, 0] += 1e-7
    elif part == "optimizer":
        first = next(iter(opt.state.values()))
        first["exp_avg"].add_(1e-9)
    elif part == "torch_rng":
        torch.rand(1)
    elif part == "generator":
        torch.rand(1, generator=gens["main"])
    elif part == "python_rng":
        random.random()
    elif part == "numpy_rng":
        np.random.rand()
    else:
        step = 2
    assert capture_state(model, opt, gens, step=step).digest() != before


def test_weights_digest_matches_saved_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model, _, _ = make()
    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    assert weights_digest(load_file(str(path))) == weights_digest(model.state_dict())


def test_load_rejects_garbage_and_foreign_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(InputError, match="not a readable safetensors"):
        TrainingState.load(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(InputError, match="no Glassbox state metadata"):
        TrainingState.load(foreign)
    with pytest.raises(InputError, match="not found"):
        TrainingState.load(tmp_path / "missing.safetensors")
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    with pytest.raises(InputError, match="not a readable safetensors"):
        TrainingState.load(huge)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(foreign.read_bytes()[:-3])
    with pytest.raises(InputError, match="not a readable safetensors"):
        TrainingState.load(truncated)


def test_restore_into_wrong_architecture_is_a_verification_error() -> None:
    model, opt, gens = make()
    state = capture_state(model, opt, gens, step=0)
    other = torch.nn.Linear(4, 2)
    with pytest.raises(VerificationError, match="does not fit"):
        restore_state(state, other, torch.optim.SGD(other.parameters(), lr=0.1), gens)


def test_data_digest_depends_on_order_and_count() -> None:
    assert data_digest([1, 2, 3]) != data_digest([3, 2, 1])
    assert data_digest([1, 2])[1] == 2
    assert data_digest([])[0] != data_digest([0])[0]


def test_trail_roundtrip_and_malformed() -> None:
    entries = tuple(TrailEntry(s, "a" * 64, "b" * 64, "c" * 64, s) for s in (0, 10, 20))
    trail = Trail(10, entries)
    assert Trail.from_dict(json.loads(json.dumps(trail.to_dict()))) == trail
    assert [(a.step, b.step) for a, b in trail.segments()] == [(0, 10), (10, 20)]
    data = trail.to_dict()
    data["entries"][2]["step"] = 5
    with pytest.raises(InputError, match="strictly increasing"):
        Trail.from_dict(data)
    with pytest.raises(InputError, match="malformed"):
        Trail.from_dict({"interval": 1, "entries": [{"step": 0}]})


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=50))
def test_data_digest_is_injective_on_samples(indices: list[int]) -> None:
    digest, count = data_digest(indices)
    assert count == len(indices)
    # The tensor path used in training computes the same digest, however the indices are split.
    half = len(indices) // 2
    chunks = [
        torch.tensor(indices[:half], dtype=torch.int64),
        torch.tensor(indices[half:], dtype=torch.int64),
    ]
    assert data_digest_tensors(chunks) == (digest, count)
    if indices:
        changed = [*indices[:-1], indices[-1] ^ 1]
        assert data_digest(changed)[0] != digest


def test_digest_covers_every_dtype_and_layout() -> None:
    base = {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "bf16": torch.arange(4, dtype=torch.bfloat16),
        "i64": torch.arange(3),
        "bool": torch.tensor([True, False]),
        "empty": torch.zeros(0),
        "scalar": torch.tensor(1.5),
    }
    digest = tensors_digest(base)
    # A transposed (non-contiguous) view hashes as its logical contents.
    assert tensors_digest({**base, "f32": base["f32"].t().contiguous().t()}) == digest
    for name in ("bf16", "bool", "scalar"):
        changed = dict(base)
        changed[name] = base[name].clone()
        changed[name].view(-1)[0] = 7 if name != "bool" else False
        assert tensors_digest(changed) != digest, name
    # dtype and shape are part of the digest, not just the bytes.
    assert (
        tensors_digest({**base, "i64": base["i64"].to(torch.float64).view(torch.int64)}) != digest
    )
    assert tensors_digest({**base, "f32": base["f32"].reshape(3, 2)}) != digest


def _reference_rng(state_tensors: dict[str, torch.Tensor], meta: dict[str, object]) -> None:
    """The two global RNG parts of a capture equal a direct read of each generator."""
    version, py_state, gauss_next = random.getstate()
    assert state_tensors["rng/python"].tolist() == list(py_state)
    assert meta["python_rng"] == {"version": version, "gauss_next": gauss_next}
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    assert state_tensors["rng/numpy"].tolist() == [int(k) for k in keys]
    assert meta["numpy_rng"] == {
        "name": name,
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


RNG_MOVES = st.sampled_from(
    ["none", "random", "np_rand", "np_normal", "np_seed", "py_seed", "torch", "set_same"]
)


@settings(max_examples=40, deadline=None)
@given(st.lists(RNG_MOVES, min_size=1, max_size=12))
def test_repeated_capture_equals_a_fresh_capture(moves: list[str]) -> None:
    """``StateCapture`` re-uses unchanged RNG states; after any sequence of draws, reseeds and
    Gaussian draws (which use up a cached value without moving numpy's key) its capture is the
    same as a fresh ``capture_state`` and as a direct read of each generator."""
    model, opt, gens = make()
    capture = StateCapture()
    np.random.seed(3)
    random.seed(3)
    for step, move in enumerate(moves):
        if move == "random":
            random.random()
        elif move == "np_rand":
            np.random.rand()
        elif move == "np_normal":
            np.random.normal()
        elif move == "np_seed":
            np.random.seed(step)
        elif move == "py_seed":
            random.seed(step)
        elif move == "torch":
            torch.rand(1)
        elif move == "set_same":
            np.random.set_state(np.random.get_state())
        got = capture.capture(model, opt, gens, step)
        fresh = capture_state(model, opt, gens, step)
        _reference_rng(got.tensors, got.meta)
        assert got.digests() == fresh.digests()


def test_capture_survives_a_replaced_numpy_bit_generator() -> None:
    model, opt, gens = make()
    capture = StateCapture()
    capture.capture(model, opt, gens, 0)
    original = np.random.get_bit_generator()
    try:
        np.random.set_bit_generator(np.random.MT19937(11))
        np.random.rand()
        got = capture.capture(model, opt, gens, 1)
        _reference_rng(got.tensors, got.meta)
    finally:
        np.random.set_bit_generator(original)
    _reference_rng(
        capture.capture(model, opt, gens, 2).tensors, capture.capture(model, opt, gens, 2).meta
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("slice"), st.integers(0, 1), st.integers(0, 40), st.integers(0, 8)),
            st.tuples(st.just("add"), st.lists(st.integers(0, 2**40), max_size=5)),
            st.tuples(st.just("finish")),
        ),
        max_size=30,
    )
)
def test_incremental_data_digest_equals_the_reference(ops: list[tuple[object, ...]]) -> None:
    """Runs of consecutive slices, explicit indices and entry boundaries in any order: every
    entry's digest is ``data_digest`` of exactly the indices noted since the previous one."""
    perms = [torch.randperm(50, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    digest = DataIndexDigest()
    noted: list[int] = []
    for op in ops:
        if op[0] == "slice":
            _, which, start, length = op
            assert isinstance(which, int) and isinstance(start, int) and isinstance(length, int)
            digest.add_slice(perms[which], start, start + length)
            noted += perms[which][start : start + length].tolist()
        elif op[0] == "add":
            values = op[1]
            assert isinstance(values, list)
            digest.add(torch.tensor(values, dtype=torch.int64))
            noted += values
        else:
            assert digest.finish() == data_digest(noted)
            noted = []
    assert digest.finish() == data_digest(noted)


def test_incremental_data_digest_refuses_negative_indices() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        DataIndexDigest().add(torch.tensor([1, -2]))


DTYPES = [torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool, torch.bfloat16]
JSON_META = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=6),
        st.tuples(
            st.sampled_from(DTYPES),
            st.lists(st.integers(0, 3), max_size=3),
            st.sampled_from(["plain", "transposed", "grad"]),
        ),
        max_size=5,
    ),
    JSON_META,
)
def test_plain_tensor_digest_equals_the_reference(
    spec: dict[str, tuple[torch.dtype, list[int], str]], meta: object
) -> None:
    """The trail's fast digest (cached header layout, buffers straight from numpy) is the
    general one, for every dtype, shape, layout and metadata; twice, so the cache is used."""
    from glassbox.pipeline import trail

    tensors = {}
    for name, (dtype, shape, layout) in spec.items():
        tensor = (torch.arange(int(np.prod(shape)) if shape else 1) % 5).to(dtype).reshape(shape)
        if layout == "transposed" and tensor.dim() >= 2:
            tensor = tensor.transpose(0, 1)
        elif layout == "grad" and dtype in (torch.float32, torch.float64):
            tensor = tensor.clone().requires_grad_(True)
        tensors[name] = tensor
    for _ in range(2):
        assert trail.tensors_digest(tensors, meta) == trail._tensors_digest(
            tensors, meta, trail.STATE_DOMAIN
        )
