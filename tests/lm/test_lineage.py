"""Lineage on the miniature zoo: what derives from the base is found, what does not is not."""

from __future__ import annotations

import json

import pytest
import torch

from glassbox.lm import DERIVED, NOT_DERIVED, compare_weights, lineage, models_in, rank
from tests.lm.conftest import MiniZoo, mini


@pytest.mark.parametrize("member", ["ft", "lora", "permuted", "rescaled", "pruned", "fp16", "int8"])
def test_derived_members_are_found_derived(zoo: MiniZoo, member: str) -> None:
    result = compare_weights(zoo[member], zoo["base"])
    assert result.verdict == DERIVED, result.reason
    assert result.score >= 0.5


def test_unrelated_model_on_the_same_data_is_not_derived(zoo: MiniZoo) -> None:
    result = compare_weights(zoo["other"], zoo["base"])
    assert result.verdict == NOT_DERIVED, result.reason
    assert result.score < 0.2
    # ... and the reverse direction agrees.
    assert compare_weights(zoo["base"], zoo["other"]).verdict == NOT_DERIVED


def test_permuted_copy_scores_as_its_source_and_the_permutation_is_solved(zoo: MiniZoo) -> None:
    plain = compare_weights(zoo["ft"], zoo["base"])
    permuted = compare_weights(zoo["permuted"], zoo["base"])
    assert permuted.residual["coordinatesMoved"] > zoo.config.hidden_size // 2
    assert permuted.score == pytest.approx(plain.score, abs=0.02)
    # Against the unpermuted fine-tune it is a copy.
    assert compare_weights(zoo["permuted"], zoo["ft"]).score > 0.97


def test_function_preserving_transforms_preserve_function(zoo: MiniZoo) -> None:
    """The zoo's permuted and rescaled members really compute what the fine-tune computes,
    so lineage is tested on changes a forger could make for free."""
    ids = torch.tensor([list(b"Q: Where does the boat go? A: It goes")])
    outputs = {}
    for name in ("ft", "permuted", "rescaled"):
        model = mini.zoo_model.build(**mini._overrides_from(zoo.config))
        model.load_state_dict(zoo.states[name])
        with torch.no_grad():
            outputs[name] = model(input_ids=ids).logits
    assert torch.allclose(outputs["ft"], outputs["permuted"], atol=1e-4)
    assert torch.allclose(outputs["ft"], outputs["rescaled"], atol=1e-3)


def test_plain_cosine_misses_the_permuted_copy(zoo: MiniZoo) -> None:
    """Without alignment, a permuted copy looks unrelated: why the permutation is solved."""
    import numpy as np

    from glassbox.lm import open_weights

    def flat(path: object) -> np.ndarray:
        with open_weights(path) as r:  # type: ignore[arg-type]
            arrays = [r.read(n) for n in sorted(r.names())]
            return np.concatenate([a.ravel() for a in arrays if a.ndim == 2])

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    ft = flat(zoo["ft"])
    assert cosine(flat(zoo["base"]), ft) > 0.9
    assert abs(cosine(flat(zoo["permuted"]), ft)) < 0.3


def test_gguf_quantisation_of_a_fine_tune_is_checked_against_its_base(zoo: MiniZoo) -> None:
    result = compare_weights(zoo["ft.gguf"], zoo["base"])
    assert result.verdict == DERIVED
    assert result.formats["candidate"].startswith("gguf")
    assert "Q8_0" in result.formats["candidate"]
    assert compare_weights(zoo["ft.gguf"], zoo["other"]).verdict == NOT_DERIVED


def test_sharded_safetensors_and_torch_state_dicts_read_the_same(zoo: MiniZoo, tmp_path) -> None:
    from safetensors.torch import save_file

    state = zoo.states["ft"]
    names = sorted(state)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    weight_map = {}
    for i, part in enumerate((names[::2], names[1::2])):
        file = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({n: state[n].contiguous() for n in part}, str(sharded / file))
        weight_map.update({n: file for n in part})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    torch_dir = tmp_path / "torch"
    torch_dir.mkdir()
    torch.save(state, torch_dir / "pytorch_model.bin")
    reference = compare_weights(zoo["ft"], zoo["base"]).score
    for path in (sharded, torch_dir):
        result = compare_weights(path, zoo["base"])
        assert result.score == pytest.approx(reference, abs=1e-6)
    assert "2 shards" in compare_weights(sharded, zoo["base"]).formats["candidate"]


def test_representation_evidence_is_reported_where_models_can_run(zoo: MiniZoo) -> None:
    same = lineage(zoo["ft"], zoo["ft"])
    assert same.representation is not None and same.representation["available"]
    assert same.representation["meanCka"] == pytest.approx(1.0, abs=1e-6)
    assert same.representation["top1Agreement"] == 1.0
    other = lineage(zoo["other"], zoo["base"])
    assert other.representation is not None and other.representation["meanCka"] < 0.99
    # Evidence only: behaviour never turns unrelated weights into "derived".
    assert other.verdict == NOT_DERIVED
    gguf = lineage(zoo["ft.gguf"], zoo["base"])
    assert gguf.representation == {
        "available": False,
        "reason": "no config.json beside the weights of both models",
    }


def test_rank_puts_the_true_base_first(zoo: MiniZoo, tmp_path) -> None:
    pool = tmp_path / "known"
    pool.mkdir()
    for name in ("base", "other"):
        (pool / name).symlink_to(zoo[name], target_is_directory=True)
    ranking = rank(zoo["lora"], models_in(pool))
    assert ranking[0].base.endswith("base")
    assert ranking[0].derived and not ranking[1].derived


def test_evidence_names_every_layer(zoo: MiniZoo) -> None:
    result = compare_weights(zoo["ft"], zoo["base"]).to_dict()
    layers = [layer["layer"] for layer in result["layers"]]
    assert layers == [None, 0, 1]
    kinds = set(result["layers"][1]["tensors"])
    assert {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_gate", "mlp_down"} <= kinds
    for tensor in result["tensors"]:
        assert 0.0 <= tensor["score"] <= 1.0
        assert tensor["nullCorrelation"] < tensor["matchedCorrelation"]


def test_gpt2_checkpoints_with_conv1d_weights(tmp_path) -> None:
    """GPT-2's Conv1D weights are stored [in, out] and its attention is one fused matrix: a
    perturbed, unit-permuted copy is derived, another initialisation is not."""
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=256, n_positions=64, n_embd=32, n_layer=2, n_head=4)
    torch.manual_seed(0)
    base = {k: v.clone() for k, v in GPT2LMHeadModel(cfg).state_dict().items()}
    torch.manual_seed(1)
    other = {k: v.clone() for k, v in GPT2LMHeadModel(cfg).state_dict().items()}
    gen = torch.Generator().manual_seed(2)
    tuned = {k: v + 0.3 * v.std() * torch.randn(v.shape, generator=gen) for k, v in base.items()}
    for i in range(cfg.n_layer):  # permute MLP hidden units: c_fc columns with c_proj rows
        perm = torch.randperm(4 * cfg.n_embd, generator=gen)
        p = f"transformer.h.{i}.mlp."
        tuned[p + "c_fc.weight"] = tuned[p + "c_fc.weight"][:, perm]
        tuned[p + "c_fc.bias"] = tuned[p + "c_fc.bias"][perm]
        tuned[p + "c_proj.weight"] = tuned[p + "c_proj.weight"][perm]
    for name, state in (("base", base), ("tuned", tuned), ("other", other)):
        (tmp_path / name).mkdir()
        state = {k: v.contiguous() for k, v in state.items() if k != "lm_head.weight"}
        save_file(state, str(tmp_path / name / "model.safetensors"))
    derived = compare_weights(tmp_path / "tuned", tmp_path / "base")
    assert derived.verdict == DERIVED, derived.reason
    assert {t.kind for t in derived.tensors} >= {
        "attn_qkv",
        "attn_o",
        "mlp_up",
        "mlp_down",
        "embed",
    }
    assert compare_weights(tmp_path / "other", tmp_path / "base").verdict == NOT_DERIVED
