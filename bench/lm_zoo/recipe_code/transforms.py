"""Changes to a Llama-style state dict: function-preserving ones (permutations, rescaling),
lossy ones (pruning, fp16/int8 round trips), a merge, and a GGUF export.

Each works on ``{name: tensor}`` as ``LlamaForCausalLM.state_dict()`` names it, with the
model's config for the shapes. The tests check that the function-preserving ones really
preserve the logits.
"""

from __future__ import annotations

from typing import Any

import torch

State = dict[str, torch.Tensor]


def _layers(cfg: Any) -> range:
    return range(int(cfg.num_hidden_layers))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def permute_mlp(state: State, cfg: Any, seed: int) -> State:
    """Permute each MLP's hidden units (gate/up rows with down columns)."""
    out = dict(state)
    for i in _layers(cfg):
        p = f"model.layers.{i}.mlp."
        perm = torch.randperm(state[p + "up_proj.weight"].shape[0], generator=_gen(seed + i))
        out[p + "gate_proj.weight"] = state[p + "gate_proj.weight"][perm].clone()
        out[p + "up_proj.weight"] = state[p + "up_proj.weight"][perm].clone()
        out[p + "down_proj.weight"] = state[p + "down_proj.weight"][:, perm].clone()
    return out


def permute_heads(state: State, cfg: Any, seed: int) -> State:
    """Reorder attention heads (q/k/v row blocks with o_proj column blocks; MHA only)."""
    heads = int(cfg.num_attention_heads)
    if int(cfg.num_key_value_heads) != heads:
        raise ValueError("head reordering here assumes multi-head attention (kv heads == heads)")
    dim = int(cfg.hidden_size) // heads
    out = dict(state)
    for i in _layers(cfg):
        p = f"model.layers.{i}.self_attn."
        order = torch.randperm(heads, generator=_gen(seed + 100 + i))
        rows = (order[:, None] * dim + torch.arange(dim)[None, :]).reshape(-1)
        for name in ("q_proj", "k_proj", "v_proj"):
            out[p + name + ".weight"] = state[p + name + ".weight"][rows].clone()
        out[p + "o_proj.weight"] = state[p + "o_proj.weight"][:, rows].clone()
    return out


def permute_residual(state: State, cfg: Any, seed: int) -> State:
    """Permute the residual stream's coordinates everywhere (exact with RMSNorm)."""
    perm = torch.randperm(int(cfg.hidden_size), generator=_gen(seed + 200))
    out: State = {}
    for name, w in state.items():
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            out[name] = w[:, perm].clone()
        elif name.endswith("norm.weight"):
            out[name] = w[perm].clone()
        elif name.endswith(
            (
                "q_proj.weight",
                "k_proj.weight",
                "v_proj.weight",
                "gate_proj.weight",
                "up_proj.weight",
            )
        ):
            out[name] = w[:, perm].clone()
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            out[name] = w[perm].clone()
        else:
            out[name] = w.clone()
    return out


def rescale(state: State, cfg: Any, seed: int) -> State:
    """Rescale between layers: each MLP unit's up row by ``a`` and down column by ``1/a``; each
    norm's scale by ``s`` with the next projections' input columns by ``1/s``."""
    out = dict(state)
    for i in _layers(cfg):
        gen = _gen(seed + 300 + i)
        p = f"model.layers.{i}."
        up = state[p + "mlp.up_proj.weight"]
        a = torch.exp(torch.randn(up.shape[0], generator=gen))
        out[p + "mlp.up_proj.weight"] = up * a[:, None]
        out[p + "mlp.down_proj.weight"] = state[p + "mlp.down_proj.weight"] / a[None, :]
        s = torch.exp(torch.randn(int(cfg.hidden_size), generator=gen))
        out[p + "input_layernorm.weight"] = state[p + "input_layernorm.weight"] * s
        for name in ("q_proj", "k_proj", "v_proj"):
            key = p + f"self_attn.{name}.weight"
            out[key] = state[key] / s[None, :]
    return out


def prune(state: State, fraction: float) -> State:
    """Magnitude pruning: zero the smallest ``fraction`` of each weight matrix."""
    out = dict(state)
    for name, w in state.items():
        if w.ndim == 2 and "embed" not in name:
            k = int(w.numel() * fraction)
            if k:
                threshold = w.abs().flatten().kthvalue(k).values
                out[name] = torch.where(w.abs() <= threshold, torch.zeros_like(w), w)
    return out


def fp16(state: State) -> State:
    return {k: v.half().float() for k, v in state.items()}


def int8(state: State) -> State:
    """Symmetric per-row int8 quantisation and back."""
    out = {}
    for name, w in state.items():
        if w.ndim == 2:
            scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
            out[name] = (torch.round(w / scale).clamp(-127, 127) * scale).float()
        else:
            out[name] = w.clone()
    return out


def merge(a: State, b: State, weight: float = 0.5) -> State:
    """Linear merge of two fine-tunes of one base (model soup)."""
    return {k: weight * a[k] + (1.0 - weight) * b[k] for k in a}


_GGUF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_GGUF_LAYER = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _rope_permute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's converter reorders q/k rows within each head for its RoPE layout."""
    return (
        w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )


def to_gguf(state: State, cfg: Any, path: str, quant: str = "Q8_0") -> None:
    """Write a llama-architecture GGUF as llama.cpp's converter would (names, q/k row order,
    2-D weights quantised with ``quant``, norms in F32)."""
    import gguf
    import numpy as np

    qtype = getattr(gguf.GGMLQuantizationType, quant)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(int(cfg.num_hidden_layers))
    writer.add_context_length(int(cfg.max_position_embeddings))
    writer.add_embedding_length(int(cfg.hidden_size))
    writer.add_feed_forward_length(int(cfg.intermediate_size))
    writer.add_head_count(int(cfg.num_attention_heads))
    writer.add_head_count_kv(int(cfg.num_key_value_heads))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_vocab_size(int(cfg.vocab_size))
    for name, w in state.items():
        if name in _GGUF_NAMES:
            out_name = _GGUF_NAMES[name]
        else:
            parts = name.split(".")
            inner = ".".join(parts[3:-1])
            out_name = f"blk.{parts[2]}.{_GGUF_LAYER[inner]}.weight"
            if inner == "self_attn.q_proj":
                w = _rope_permute(w, int(cfg.num_attention_heads))
            elif inner == "self_attn.k_proj":
                w = _rope_permute(w, int(cfg.num_key_value_heads))
        data = w.detach().float().numpy()
        if data.ndim == 2 and data.shape[1] % gguf.GGML_QUANT_SIZES[qtype][0] == 0:
            writer.add_tensor(out_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(out_name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
