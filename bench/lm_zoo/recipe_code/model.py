"""Architecture factory of the LM zoo recipes (``model:build``): a tiny Llama-style causal LM.

The zoo's tokenizer is bytes (token id = byte value, vocabulary 256), declared in the saved
``config.json`` as ``"glassbox_tokenizer": "bytes"`` so lineage can run two members on the
same probe text. Kept self-contained: a recipe's code directory is hashed whole.
"""

from __future__ import annotations

from typing import Any

TOKENIZER = {"glassbox_tokenizer": "bytes"}


def config(**overrides: Any) -> Any:
    from transformers import LlamaConfig

    settings: dict[str, Any] = {
        "vocab_size": 256,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 128,
        "tie_word_embeddings": False,
        "rms_norm_eps": 1e-5,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "pad_token_id": 0,
    }
    settings.update(overrides)
    cfg = LlamaConfig(**settings)
    for key, value in TOKENIZER.items():
        setattr(cfg, key, value)
    return cfg


def build(**overrides: Any) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` (seeded by the build's torch seed)."""
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM(config(**overrides))
