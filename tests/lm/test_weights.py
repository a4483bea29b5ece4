"""Weight readers: formats, canonical names, and hostile inputs (one-line errors, no damage)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.errors import InputError
from glassbox.lm import canonical_role, open_weights
from glassbox.lm.align import align_residual, linear_cka, match_units, normalise


@pytest.mark.parametrize(
    ("name", "key", "axis"),
    [
        ("model.layers.3.self_attn.q_proj.weight", "layers.3.attn_q", 1),
        ("model.layers.0.mlp.down_proj.weight", "layers.0.mlp_down", 0),
        ("blk.3.attn_q.weight", "layers.3.attn_q", 1),
        ("blk.0.ffn_down.weight", "layers.0.mlp_down", 0),
        ("token_embd.weight", "embed", 1),
        ("model.embed_tokens.weight", "embed", 1),
        ("transformer.h.2.mlp.c_fc.weight", "layers.2.mlp_up", 0),
        ("transformer.h.2.attn.c_proj.weight", "layers.2.attn_o", 1),
    ],
)
def test_names_from_every_scheme_map_to_one_role(name: str, key: str, axis: int) -> None:
    role = canonical_role(name)
    assert role is not None and role.key == key and role.residual_axis == axis


def test_unknown_tensors_are_ignored() -> None:
    assert canonical_role("model.layers.0.self_attn.q_proj.bias") is None
    assert canonical_role("rotary.inv_freq") is None


def _tiny_safetensors(path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"model.embed_tokens.weight": torch.ones(4, 2)}, str(path))


def test_index_naming_a_shard_outside_the_model_is_refused(tmp_path: Path) -> None:
    _tiny_safetensors(tmp_path / "outside.safetensors")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "../outside.safetensors"}})
    )
    with pytest.raises(InputError, match="leaves the model directory"):
        open_weights(model)


def test_symlinked_shard_pointing_out_is_refused(tmp_path: Path) -> None:
    _tiny_safetensors(tmp_path / "outside.safetensors")
    model = tmp_path / "model"
    model.mkdir()
    (model / "shard.safetensors").symlink_to(tmp_path / "outside.safetensors")
    (model / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "shard.safetensors"}})
    )
    with pytest.raises(InputError, match="symlink out of the model directory"):
        open_weights(model)


@pytest.mark.parametrize(
    "index",
    ["not json", "[]", '{"weight_map": {}}', '{"weight_map": {"a": 3}}'],
)
def test_malformed_index_is_one_clear_error(tmp_path: Path, index: str) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(index)
    with pytest.raises(InputError) as info:
        open_weights(tmp_path)
    assert "model.safetensors.index.json" in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    _tiny_safetensors(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])
    with pytest.raises(InputError, match="not a readable safetensors file"):
        open_weights(path)


def test_huge_safetensors_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        open_weights(path)


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("executed",))


def test_pickle_with_code_is_refused_and_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.ones(2, 2), "x": Payload()}, path)
    with pytest.raises(InputError, match="refused by the weights-only loader"):
        open_weights(tmp_path)
    assert "executed" not in capsys.readouterr().out
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(InputError):
        open_weights(plain)


def test_truncated_gguf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 7)
    with pytest.raises(InputError, match="not a readable GGUF file"):
        open_weights(path)


def test_directory_without_weights_or_with_two_unindexed_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no weights found"):
        open_weights(tmp_path)
    _tiny_safetensors(tmp_path / "a.safetensors")
    _tiny_safetensors(tmp_path / "b.safetensors")
    with pytest.raises(InputError, match="2 safetensors files"):
        open_weights(tmp_path)
    with pytest.raises(InputError, match="model not found"):
        open_weights(tmp_path / "missing")


def test_nan_weights_are_an_input_error(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file(
        {"model.embed_tokens.weight": torch.full((2, 2), float("nan"))},
        str(tmp_path / "m.safetensors"),
    )
    with open_weights(tmp_path) as reader, pytest.raises(InputError, match="NaN"):
        reader.read("model.embed_tokens.weight")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), units=st.integers(8, 48), width=st.integers(8, 40))
def test_a_permuted_rescaled_copy_matches_perfectly(seed: int, units: int, width: int) -> None:
    """Property: any unit permutation and per-unit (sign-flipping) rescale is undone."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((units, width))
    perm = rng.permutation(units)
    scale = rng.uniform(0.1, 10, units) * rng.choice([-1, 1], units)
    copy = base[perm] * scale[:, None]
    match = match_units(copy, base, seed=seed)
    assert match.matched == pytest.approx(1.0, abs=1e-9)
    assert match.score == pytest.approx(1.0, abs=1e-9)
    unrelated = match_units(rng.standard_normal((units, width)), base, seed=seed)
    assert unrelated.score < 0.6


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(4, 40))
def test_residual_permutation_is_recovered(seed: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    embed = rng.standard_normal((200, width))
    perm = rng.permutation(width)
    alignment = align_residual(embed[:, perm], embed)
    assert np.array_equal(alignment.order, perm)
    units = rng.standard_normal((5, width))
    assert np.allclose(alignment.apply(units[:, perm]), units)


def test_cka_is_invariant_to_rotation_and_scale() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 16))
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)
    assert linear_cka(x, rng.standard_normal((100, 16))) < 0.5
    assert np.allclose(np.linalg.norm(normalise(x), axis=1), 1.0)


def test_wide_layers_match_every_unit_against_all_base_units() -> None:
    """A sampled candidate unit must find its partner among *all* base units (a wide MLP of
    a real model), and the greedy path above the solver's size still tells copy from noise."""
    from glassbox.lm import align

    rng = np.random.default_rng(1)
    base = rng.standard_normal((align.MAX_ASSIGN + 500, 24))
    perm = rng.permutation(base.shape[0])
    copy = base[perm] + 0.05 * rng.standard_normal(base.shape)
    assert match_units(copy, base).score > 0.9
    assert match_units(rng.standard_normal(base.shape), base).score < 0.3
